package history

import (
	"context"
	"log/slog"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The groups of series a Sampler records. Node-wide series have an empty
// Namespace; the ns_* groups have one series per namespace.
const (
	// GroupRequests: requests/s by method and code (label "Service/Method code").
	GroupRequests = "requests"
	// GroupIncrements: increments/s over every namespace (label "all").
	GroupIncrements = "increments"
	// GroupLag: the age of the oldest pending rollup, in seconds (label "max").
	GroupLag = "lag"
	// GroupQueue: counters held by the rollup queues (label "counters").
	GroupQueue = "queue"
	// GroupDrops: per second, rollup signals dropped for a full queue,
	// parked counters evicted, and calls refused by rate limits.
	GroupDrops = "drops"
	// GroupFsync: the embedded store's WAL fsync latency in milliseconds
	// over each interval (labels "mean" and "p99").
	GroupFsync = "fsync"
	// GroupStore: the store's size on disk in bytes (label "bytes").
	GroupStore = "store"

	GroupNSRequests   = "ns_requests"   // requests/s of one namespace
	GroupNSIncrements = "ns_increments" // increments/s of one namespace
	GroupNSLag        = "ns_lag"        // oldest pending rollup of one namespace, s
	GroupNSQueue      = "ns_queue"      // counters queued for rollup in one namespace
)

// The labels of GroupDrops.
const (
	LabelDropped     = "dropped signals"
	LabelEvicted     = "evicted parked"
	LabelRateLimited = "rate limited"
)

// Sampler records a sample into History every History.Interval, from the
// node's Prometheus registry (requests, rollup queues, drops, WAL fsyncs),
// a Tally (per-namespace requests and increments) and the store's size.
// Counters become per-second rates between two samples; histograms become
// the mean and 99th percentile of the interval's observations.
type Sampler struct {
	History *History
	// Gatherer is the node's registry.
	Gatherer prometheus.Gatherer
	// Tally, if set, gives the per-namespace rates.
	Tally *Tally
	// Namespaces, if set, lists the namespaces the Tally should count; it
	// is called every interval.
	Namespaces func(context.Context) ([]string, error)
	// StoreBytes, if set, returns the store's size on disk.
	StoreBytes func() (int64, bool)
	// Logger; default slog.Default().
	Logger *slog.Logger

	prev     map[ID]float64 // counters' totals at prevTime
	prevHist map[string]hist
	prevTime time.Time
}

// hist is a histogram's cumulative state.
type hist struct {
	count   uint64
	sum     float64
	buckets []bucket
}

type bucket struct {
	upper float64
	count uint64
}

// Run samples until ctx ends.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.History.Interval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.Sample(ctx, now)
		}
	}
}

// Sample takes one sample at now and records it. The first sample has no
// rates (it only sets their baseline).
func (s *Sampler) Sample(ctx context.Context, now time.Time) {
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	if s.Namespaces != nil && s.Tally != nil {
		if names, err := s.Namespaces(ctx); err == nil {
			s.Tally.SetNamespaces(names)
		} else if ctx.Err() == nil {
			log.Debug("history: listing namespaces failed", "err", err)
		}
	}
	totals := make(map[ID]float64) // counters, cumulative
	gauges := make(Sample)
	hists := make(map[string]hist)
	if s.Gatherer != nil {
		fams, err := s.Gatherer.Gather()
		if err != nil {
			// Gather returns what it could gather along with the error.
			log.Debug("history: gathering metrics", "err", err)
		}
		for _, f := range fams {
			readFamily(f, totals, gauges, hists)
		}
	}
	if s.Tally != nil {
		for ns, c := range s.Tally.Totals() {
			totals[ID{GroupNSRequests, "", ns}] = float64(c[0])
			totals[ID{GroupNSIncrements, "", ns}] = float64(c[1])
			totals[ID{GroupIncrements, "all", ""}] += float64(c[1])
		}
	}
	if s.StoreBytes != nil {
		if b, ok := s.StoreBytes(); ok {
			gauges[ID{GroupStore, "bytes", ""}] = float64(b)
		}
	}

	sample := gauges
	if s.prev != nil {
		dt := now.Sub(s.prevTime).Seconds()
		for id, v := range totals {
			// A series missing from the previous sample is new, and
			// counters start at zero.
			p := s.prev[id]
			if v >= p && dt > 0 { // v < p: the counter was reset
				sample[id] = (v - p) / dt
			}
		}
		for name, h := range hists {
			if p, ok := s.prevHist[name]; ok {
				addHistogram(sample, name, h, p)
			}
		}
	}
	s.prev, s.prevHist, s.prevTime = totals, hists, now
	s.History.Record(now, sample)
}

// readFamily adds the series of the metric families the history shows.
func readFamily(f *dto.MetricFamily, totals map[ID]float64, gauges Sample, hists map[string]hist) {
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	for _, m := range f.GetMetric() {
		ns := label(m, "namespace")
		switch f.GetName() {
		case "abacus_requests_total":
			method := strings.TrimPrefix(label(m, "method"), "abacus.v1.")
			totals[ID{GroupRequests, method + " " + label(m, "code"), ""}] += m.GetCounter().GetValue()
		case "abacus_rollup_lag_seconds":
			v := m.GetGauge().GetValue()
			gauges[ID{GroupNSLag, "", ns}] = v
			id := ID{GroupLag, "max", ""}
			gauges[id] = math.Max(gauges[id], v)
		case "abacus_rollup_queue_depth":
			v := m.GetGauge().GetValue()
			gauges[ID{GroupNSQueue, "", ns}] = v
			gauges[ID{GroupQueue, "counters", ""}] += v
		case "abacus_rollup_signals_dropped_total":
			totals[ID{GroupDrops, LabelDropped, ""}] += m.GetCounter().GetValue()
		case "abacus_rollup_evicted_total":
			totals[ID{GroupDrops, LabelEvicted, ""}] += m.GetCounter().GetValue()
		case "abacus_rate_limited_total":
			totals[ID{GroupDrops, LabelRateLimited, ""}] += m.GetCounter().GetValue()
		case "abacus_embedded_wal_fsync_seconds":
			h := m.GetHistogram()
			bs := make([]bucket, 0, len(h.GetBucket()))
			for _, b := range h.GetBucket() {
				bs = append(bs, bucket{b.GetUpperBound(), b.GetCumulativeCount()})
			}
			hists[GroupFsync] = hist{count: h.GetSampleCount(), sum: h.GetSampleSum(), buckets: bs}
		}
	}
	// The node-wide series exist from the start, so that their charts draw
	// zeros rather than nothing on an idle node.
	switch f.GetName() {
	case "abacus_rollup_lag_seconds":
		gauges[ID{GroupLag, "max", ""}] += 0
	case "abacus_rollup_queue_depth":
		gauges[ID{GroupQueue, "counters", ""}] += 0
	}
}

// addHistogram adds the mean and 99th percentile, in milliseconds, of the
// observations between p and h; nothing if there were none.
func addHistogram(sample Sample, group string, h, p hist) {
	n := h.count - p.count
	if h.count < p.count || n == 0 {
		return
	}
	sample[ID{group, "mean", ""}] = (h.sum - p.sum) / float64(n) * 1e3
	prevAt := make(map[float64]uint64, len(p.buckets))
	for _, b := range p.buckets {
		prevAt[b.upper] = b.count
	}
	bs := append([]bucket(nil), h.buckets...)
	sort.Slice(bs, func(i, j int) bool { return bs[i].upper < bs[j].upper })
	want := uint64(math.Ceil(0.99 * float64(n)))
	for _, b := range bs {
		if pc := prevAt[b.upper]; b.count >= pc && b.count-pc >= want {
			// The bucket's upper bound: a histogram cannot say more.
			sample[ID{group, "p99", ""}] = b.upper * 1e3
			return
		}
	}
	// Beyond the last finite bucket: report that bucket's bound, the
	// largest value the histogram can name.
	if len(bs) > 0 {
		sample[ID{group, "p99", ""}] = bs[len(bs)-1].upper * 1e3
	}
}
