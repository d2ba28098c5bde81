package embedded

import (
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// stallStats counts Pebble's write stalls (too many memtables or L0
// sublevels), which block every write until a flush or compaction catches up.
type stallStats struct {
	count   atomic.Int64
	nanos   atomic.Int64
	started atomic.Int64 // UnixNano of the open stall, 0 if none
}

func (st *stallStats) begin() { st.count.Add(1); st.started.Store(time.Now().UnixNano()) }

func (st *stallStats) end() {
	if t := st.started.Swap(0); t != 0 {
		st.nanos.Add(time.Now().UnixNano() - t)
	}
}

var (
	descFsync = prometheus.NewDesc("abacus_embedded_wal_fsync_seconds",
		"Latency of the embedded store's WAL fsyncs; a durable write waits for one.", nil, nil)
	descL0Sublevels = prometheus.NewDesc("abacus_embedded_l0_sublevels",
		"L0 sublevels of the embedded store: every read merges one iterator per sublevel, and writes stall when there are too many.", nil, nil)
	descL0Tables = prometheus.NewDesc("abacus_embedded_l0_tables",
		"Tables in L0 of the embedded store.", nil, nil)
	descDebt = prometheus.NewDesc("abacus_embedded_compaction_debt_bytes",
		"Bytes the embedded store estimates it must compact to reach a stable shape.", nil, nil)
	descMemTables = prometheus.NewDesc("abacus_embedded_memtables",
		"Memtables of the embedded store, the mutable one and those waiting to be flushed.", nil, nil)
	descStalls = prometheus.NewDesc("abacus_embedded_write_stalls_total",
		"Write stalls of the embedded store: every write waited for a flush or compaction.", nil, nil)
	descStallSeconds = prometheus.NewDesc("abacus_embedded_write_stall_seconds_total",
		"Time the embedded store spent in write stalls.", nil, nil)
	descLogEvents = prometheus.NewDesc("abacus_embedded_event_log_events",
		"Events the embedded store holds in memory: durable in its log and not yet written out to a table.", nil, nil)
	descLogFlushes = prometheus.NewDesc("abacus_embedded_event_log_flushes_total",
		"Write-outs of the embedded store's in-memory events to a table.", nil, nil)
	descLogFlushSeconds = prometheus.NewDesc("abacus_embedded_event_log_flush_seconds_total",
		"Time the embedded store spent writing out its in-memory events (sorting, writing and ingesting tables).", nil, nil)
)

// Describe implements prometheus.Collector.
func (s *Store) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFsync, descL0Sublevels, descL0Tables, descDebt, descMemTables, descStalls, descStallSeconds, descLogEvents, descLogFlushes, descLogFlushSeconds} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the store's health as the
// latency of a durable write sees it (fsyncs, stalls, the L0 backlog).
func (s *Store) Collect(ch chan<- prometheus.Metric) {
	// Counted in flight, as calls are, so that Close waits for it; not
	// through begin, so that a failed store still reports.
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	if s.closed.Load() {
		return
	}
	m := s.db.Metrics()
	if h, ok := fsyncHistogram(m); ok {
		ch <- h
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	gauge(descL0Sublevels, float64(m.Levels[0].Sublevels))
	gauge(descL0Tables, float64(m.Levels[0].TablesCount))
	gauge(descDebt, float64(m.Compact.EstimatedDebt))
	gauge(descMemTables, float64(m.MemTable.Count))
	ch <- prometheus.MustNewConstMetric(descStalls, prometheus.CounterValue, float64(s.stalls.count.Load()))
	ch <- prometheus.MustNewConstMetric(descStallSeconds, prometheus.CounterValue, time.Duration(s.stalls.nanos.Load()).Seconds())
	held := 0
	for _, t := range s.memTables() {
		t.mu.Lock()
		held += t.events
		t.mu.Unlock()
	}
	gauge(descLogEvents, float64(held))
	ch <- prometheus.MustNewConstMetric(descLogFlushes, prometheus.CounterValue, float64(s.memFlushes.Load()))
	ch <- prometheus.MustNewConstMetric(descLogFlushSeconds, prometheus.CounterValue, s.memFlushSeconds.seconds())
}

// fsyncHistogram re-exports Pebble's WAL fsync histogram, which is unnamed
// and observes nanoseconds, under an abacus name in seconds.
func fsyncHistogram(m *pebble.Metrics) (prometheus.Metric, bool) {
	h := m.LogWriter.FsyncLatency
	if h == nil {
		return nil, false
	}
	var pb dto.Metric
	if err := h.Write(&pb); err != nil || pb.Histogram == nil {
		return nil, false
	}
	buckets := make(map[float64]uint64, len(pb.Histogram.Bucket))
	for _, b := range pb.Histogram.Bucket {
		buckets[b.GetUpperBound()/1e9] = b.GetCumulativeCount()
	}
	return prometheus.MustNewConstHistogram(descFsync, pb.Histogram.GetSampleCount(), pb.Histogram.GetSampleSum()/1e9, buckets), true
}
