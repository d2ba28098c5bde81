package bench

import (
	"math"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// maxTrackable is the largest latency a histogram holds; longer ones are
// recorded as this value and counted in Histogram.Clamped. An hour is far
// beyond any per-op timeout, so in practice nothing is clamped.
const maxTrackable = time.Hour

// sigFigs is the histogram precision: 3 significant digits, i.e. every
// recorded latency is within 0.1% of the true one (values under 2,048 ns are
// exact), which is what HdrHistogram's authors recommend for latency.
const sigFigs = 3

// Histogram is a latency histogram safe for concurrent use. It records
// nanoseconds into HdrHistogram buckets, so percentiles are exact to 0.1%
// however skewed the distribution, and memory is fixed (no samples kept).
//
// Concurrency: HdrHistogram itself is not safe for concurrent writers, and
// one lock around one histogram would serialise every caller of a load
// generator on it. Instead the histogram is split into shards, each with its
// own lock; a caller records into the shard of its caller index, so callers
// rarely meet, and readers merge the shards.
type Histogram struct {
	shards []histShard
}

type histShard struct {
	mu      sync.Mutex
	h       *hdrhistogram.Histogram
	max     int64 // exact maximum, in ns (the HDR one is rounded up to its bucket)
	clamped int64
	// pad keeps two shards' locks off one cache line.
	_ [64]byte
}

// NewHistogram returns an empty histogram with the given number of shards
// (at least 1). Use about as many shards as there are CPUs times two: more
// only costs memory (about 250 KB each).
func NewHistogram(shards int) *Histogram {
	shards = max(shards, 1)
	h := &Histogram{shards: make([]histShard, shards)}
	for i := range h.shards {
		h.shards[i].h = newHDR()
	}
	return h
}

func newHDR() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(maxTrackable), sigFigs)
}

// Record adds one latency. hint picks the shard (the caller's index), so
// that concurrent callers with different hints do not contend.
func (h *Histogram) Record(hint int, d time.Duration) {
	s := &h.shards[uint(hint)%uint(len(h.shards))]
	v := max(int64(d), 0)
	s.mu.Lock()
	if v > int64(maxTrackable) {
		s.clamped++
		v = int64(maxTrackable)
	}
	// Cannot fail: v is within [0, maxTrackable].
	_ = s.h.RecordValue(v)
	s.max = max(s.max, v)
	s.mu.Unlock()
}

// Snapshot returns a summary of everything recorded so far.
func (h *Histogram) Snapshot() Latency {
	all := newHDR()
	var maxV, clamped int64
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		all.Merge(s.h)
		maxV = max(maxV, s.max)
		clamped += s.clamped
		s.mu.Unlock()
	}
	return summarize(all, maxV, clamped)
}

// Latency summarises a latency distribution. Values are microseconds (as
// floats, so sub-microsecond precision survives JSON).
type Latency struct {
	// Count is how many latencies were recorded.
	Count int64 `json:"count"`
	// MeanUS is the arithmetic mean.
	MeanUS float64 `json:"mean_us"`
	// P50US, P90US, P99US and P999US are the 50th, 90th, 99th and 99.9th
	// percentiles: the smallest recorded value (to 0.1%) that at least that
	// share of the ops did not exceed.
	P50US  float64 `json:"p50_us"`
	P90US  float64 `json:"p90_us"`
	P99US  float64 `json:"p99_us"`
	P999US float64 `json:"p999_us"`
	// MaxUS is the exact maximum.
	MaxUS float64 `json:"max_us"`
	// Clamped counts latencies longer than an hour, recorded as an hour.
	Clamped int64 `json:"clamped,omitempty"`
}

func summarize(h *hdrhistogram.Histogram, maxV, clamped int64) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	// The HDR percentile is the highest value equivalent to the bucket the
	// rank falls in, so it can exceed the true maximum by the bucket width;
	// capping keeps p99.9 <= max, which readers rightly expect.
	at := func(p float64) float64 { return us(min(h.ValueAtPercentile(p), maxV)) }
	return Latency{
		Count:   h.TotalCount(),
		MeanUS:  math.Round(h.Mean()) / 1e3,
		P50US:   at(50),
		P90US:   at(90),
		P99US:   at(99),
		P999US:  at(99.9),
		MaxUS:   us(maxV),
		Clamped: clamped,
	}
}
