package rollup

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics exports the pipeline's state as abacus_rollup_* metrics, labelled
// by namespace name. Queue depths, lag and counts are read from the queues
// when scraped rather than kept in prometheus types, so Signal pays for no
// metric on its hot path and Stats and the metrics never disagree.
type metrics struct {
	pipeline *Pipeline // nil until registered
	batch    *prometheus.HistogramVec

	depth, bytes, lag                    *prometheus.Desc
	received, dropped, rollups, failures *prometheus.Desc
	requeued, abandoned, evicted         *prometheus.Desc
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return &metrics{}, nil
	}
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("abacus_rollup_"+name, help, []string{"namespace"}, nil)
	}
	return &metrics{
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "abacus_rollup_batch_duration_seconds",
			Help:    "Time to roll up one batch of counters.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"namespace"}),
		depth:     desc("queue_depth", "Counters held by the rollup queues: pending or running."),
		bytes:     desc("queue_bytes", "Estimated memory of the rollup queues."),
		lag:       desc("lag_seconds", "Age of the oldest pending rollup signal; a failing rollup keeps its age, so the lag grows while the stores are out."),
		received:  desc("signals_total", "Rollup signals received."),
		dropped:   desc("signals_dropped_total", "Rollup signals dropped because a queue was full."),
		rollups:   desc("rollups_total", "Rollups that succeeded."),
		failures:  desc("failures_total", "Rollups that failed."),
		requeued:  desc("requeues_total", "Counters put back for another window: behind, signalled while running, or failed."),
		abandoned: desc("abandoned_total", "Counters let go while behind: at drain, at stop, or after a permanent error."),
		evicted:   desc("evicted_total", "Parked counters (count rolled up, checkpoint waiting for its window) let go to make room in a full queue."),
	}, nil
}

// batchObserver returns the batch-duration observer of a namespace.
func (m *metrics) batchObserver(ns string) prometheus.Observer {
	if m.batch == nil {
		return prometheus.ObserverFunc(func(float64) {})
	}
	return m.batch.WithLabelValues(ns)
}

// forget drops the series of a namespace that no longer has queues.
func (m *metrics) forget(ns string) {
	if m.batch != nil {
		m.batch.DeleteLabelValues(ns)
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.depth, m.bytes, m.lag, m.received, m.dropped, m.rollups, m.failures, m.requeued, m.abandoned, m.evicted} {
		ch <- d
	}
	m.batch.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	// A namespace deleted and created again may briefly have two sets of
	// queues under one name; a name must be reported once.
	byName := make(map[string]Stats)
	for _, nq := range *m.pipeline.spaces.Load() {
		s := byName[nq.name]
		s.add(nq.stats())
		byName[nq.name] = s
	}
	now := time.Now()
	for name, s := range byName {
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), name)
		}
		gauge(m.depth, float64(s.Pending))
		gauge(m.bytes, float64(s.Bytes))
		lag := 0.0
		if !s.OldestPending.IsZero() {
			lag = now.Sub(s.OldestPending).Seconds()
		}
		gauge(m.lag, lag)
		counter(m.received, s.Received)
		counter(m.dropped, s.Dropped)
		counter(m.rollups, s.Rollups)
		counter(m.failures, s.Failures)
		counter(m.requeued, s.Requeued)
		counter(m.abandoned, s.Abandoned)
		counter(m.evicted, s.Evicted)
	}
	m.batch.Collect(ch)
}
