package rollup

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gather returns the value of each metric of the registry, by name and
// namespace label; histograms give their sample count.
func gather(t *testing.T, reg *prometheus.Registry) map[string]map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]map[string]float64)
	for _, f := range families {
		byNS := make(map[string]float64)
		for _, m := range f.GetMetric() {
			var ns string
			for _, l := range m.GetLabel() {
				if l.GetName() == "namespace" {
					ns = l.GetValue()
				}
			}
			byNS[ns] = value(f.GetType(), m)
		}
		out[f.GetName()] = byNS
	}
	return out
}

func value(typ dto.MetricType, m *dto.Metric) float64 {
	switch typ {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := quiet()
	opts.Registerer = reg
	release := make(chan struct{})
	p := start(t, func(ctx context.Context, k Key) (Outcome, error) {
		if k.Counter == "slow" {
			<-release
		}
		return Outcome{CaughtUp: true}, nil
	}, opts)

	if _, err := New(func(context.Context, Key) (Outcome, error) { return Outcome{CaughtUp: true}, nil }, opts); err == nil {
		t.Fatal("second pipeline registered the same metrics")
	}

	held := namespace(1, 1, time.Hour, 3*entrySize("c0"), 4) // capacity is per queue
	for _, c := range []string{"c0", "c1", "c2", "c3", "c0"} {
		p.Signal(Key{NS: held, Counter: c})
	}
	fast := namespace(2, 1, 0, 1<<20, 4)
	p.Signal(Key{NS: fast, Counter: "slow"})
	eventually(t, "slow to start", func() bool {
		s := stats(t, p, fast)
		return s.Pending == 1 && !s.OldestPending.IsZero()
	})
	time.Sleep(2 * time.Millisecond) // so that the lag is above zero

	m := gather(t, reg)
	for name, want := range map[string]float64{
		"abacus_rollup_signals_total":         5,
		"abacus_rollup_signals_dropped_total": 1,
		"abacus_rollup_queue_depth":           3,
		"abacus_rollup_queue_bytes":           float64(3 * entrySize("c0")),
		"abacus_rollup_rollups_total":         0,
	} {
		if got := m[name][held.Name]; got != want {
			t.Errorf("%s{namespace=%q} = %v, want %v", name, held.Name, got, want)
		}
	}
	for _, ns := range []string{held.Name, fast.Name} {
		if lag := m["abacus_rollup_lag_seconds"][ns]; lag <= 0 {
			t.Errorf("lag of %s = %v, want > 0", ns, lag)
		}
	}
	close(release)
	eventually(t, "slow to finish", func() bool { return stats(t, p, fast).Pending == 0 })
	m = gather(t, reg)
	if got := m["abacus_rollup_rollups_total"][fast.Name]; got != 1 {
		t.Errorf("rollups of %s = %v, want 1", fast.Name, got)
	}
	if got := m["abacus_rollup_lag_seconds"][fast.Name]; got != 0 {
		t.Errorf("lag of an empty queue = %v, want 0", got)
	}
	if got := m["abacus_rollup_batch_duration_seconds"][fast.Name]; got != 1 {
		t.Errorf("batches of %s = %v, want 1", fast.Name, got)
	}
	for _, name := range []string{"abacus_rollup_failures_total", "abacus_rollup_requeues_total", "abacus_rollup_abandoned_total"} {
		if _, ok := m[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}

	// A removed namespace's series go away.
	p.RemoveNamespace(fast.ID)
	m = gather(t, reg)
	if _, ok := m["abacus_rollup_queue_depth"][fast.Name]; ok {
		t.Error("removed namespace still reported")
	}
	if _, ok := m["abacus_rollup_batch_duration_seconds"][fast.Name]; ok {
		t.Error("removed namespace's batch histogram still reported")
	}
}

// Two namespaces with one name (deleted and created again) are reported once.
func TestMetricsSameName(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := quiet()
	opts.Registerer = reg
	p := start(t, func(context.Context, Key) (Outcome, error) { return Outcome{CaughtUp: true}, nil }, opts)
	old, recreated := namespace(1, 1, time.Hour, 1<<20, 1), namespace(27, 1, time.Hour, 1<<20, 1)
	if old.Name != recreated.Name {
		t.Fatal("test namespaces should share a name")
	}
	p.Signal(Key{NS: old, Counter: "a"})
	p.Signal(Key{NS: recreated, Counter: "b"})
	if got := gather(t, reg)["abacus_rollup_queue_depth"][old.Name]; got != 2 {
		t.Fatalf("depth %v, want 2", got)
	}
}
