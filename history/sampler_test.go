package history

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestTally(t *testing.T) {
	var ta Tally
	ta.Count("a", 1, 1) // before any namespace is known: ignored
	ta.SetNamespaces([]string{"a", "b"})
	ta.Count("a", 1, 3)
	ta.Count("b", 2, 0)
	ta.Count("ghost", 5, 5) // unknown namespaces must not grow the tally
	ta.SetNamespaces([]string{"a", "c"})
	ta.Count("c", 1, 1)
	got := ta.Totals()
	want := map[string][2]uint64{"a": {1, 3}, "c": {1, 1}}
	if len(got) != len(want) {
		t.Fatalf("totals %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestSampler(t *testing.T) {
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "abacus_requests_total"}, []string{"transport", "method", "code"})
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "abacus_rollup_lag_seconds"}, []string{"namespace"})
	depth := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "abacus_rollup_queue_depth"}, []string{"namespace"})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "abacus_rollup_signals_dropped_total"}, []string{"namespace"})
	fsync := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "abacus_embedded_wal_fsync_seconds", Buckets: []float64{.001, .01, .1}})
	reg.MustRegister(requests, lag, depth, dropped, fsync)

	h := New(Options{})
	tally := new(Tally)
	s := &Sampler{
		History: h, Gatherer: reg, Tally: tally,
		Namespaces: func(context.Context) ([]string, error) { return []string{"views", "clicks"}, nil },
		StoreBytes: func() (int64, bool) { return 4096, true },
	}
	ctx := context.Background()
	s.Sample(ctx, t0)

	// Two seconds of traffic.
	requests.WithLabelValues("grpc", "abacus.v1.CounterService/AddCount", "ok").Add(10)
	requests.WithLabelValues("http", "abacus.v1.CounterService/AddCount", "ok").Add(10)
	requests.WithLabelValues("grpc", "abacus.v1.CounterService/GetCount", "not_found").Add(4)
	tally.Count("views", 6, 8)
	tally.Count("clicks", 2, 0)
	lag.WithLabelValues("views").Set(3)
	lag.WithLabelValues("clicks").Set(7)
	depth.WithLabelValues("views").Set(5)
	depth.WithLabelValues("clicks").Set(1)
	dropped.WithLabelValues("views").Add(2)
	for range 99 {
		fsync.Observe(0.0005)
	}
	fsync.Observe(0.05)
	s.Sample(ctx, t0.Add(2*time.Second))

	last := map[ID]float64{}
	for _, sr := range h.Snapshot(1, nil).Series {
		last[sr.ID] = sr.Values[0]
	}
	tests := []struct {
		id   ID
		want float64
	}{
		{ID{GroupRequests, "CounterService/AddCount ok", ""}, 10}, // both transports
		{ID{GroupRequests, "CounterService/GetCount not_found", ""}, 2},
		{ID{GroupIncrements, "all", ""}, 4},
		{ID{GroupNSRequests, "", "views"}, 3},
		{ID{GroupNSIncrements, "", "views"}, 4},
		{ID{GroupNSRequests, "", "clicks"}, 1},
		{ID{GroupLag, "max", ""}, 7},
		{ID{GroupNSLag, "", "views"}, 3},
		{ID{GroupQueue, "counters", ""}, 6},
		{ID{GroupDrops, LabelDropped, ""}, 1},
		{ID{GroupFsync, "mean", ""}, (99*0.0005 + 0.05) / 100 * 1e3},
		{ID{GroupFsync, "p99", ""}, 1},
		{ID{GroupStore, "bytes", ""}, 4096},
	}
	for _, tt := range tests {
		got, ok := last[tt.id]
		if !ok || math.Abs(got-tt.want) > 1e-6*math.Max(1, tt.want) {
			t.Errorf("%v = %v (present %v), want %v", tt.id, got, ok, tt.want)
		}
	}

	// An idle interval: rates go to zero, the fsync figures have no value.
	s.Sample(ctx, t0.Add(3*time.Second))
	last = map[ID]float64{}
	for _, sr := range h.Snapshot(1, nil).Series {
		last[sr.ID] = sr.Values[0]
	}
	if v := last[ID{GroupRequests, "CounterService/AddCount ok", ""}]; v != 0 {
		t.Errorf("idle request rate %v, want 0", v)
	}
	if v := last[ID{GroupFsync, "mean", ""}]; !math.IsNaN(v) {
		t.Errorf("idle fsync mean %v, want no value", v)
	}
}

// benchRegistry is a registry shaped like a busy node's: 12 methods × 3
// codes × 2 transports of requests, 20 namespaces of rollup metrics, and
// the Go and process collectors.
func benchRegistry() (*prometheus.Registry, []string) {
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "abacus_requests_total"}, []string{"transport", "method", "code"})
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "abacus_rollup_lag_seconds"}, []string{"namespace"})
	depth := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "abacus_rollup_queue_depth"}, []string{"namespace"})
	reg.MustRegister(requests, lag, depth)
	for _, tr := range []string{"grpc", "http"} {
		for m := range 12 {
			for _, c := range []string{"ok", "not_found", "invalid_argument"} {
				requests.WithLabelValues(tr, fmt.Sprintf("abacus.v1.CounterService/M%d", m), c).Add(1)
			}
		}
	}
	var names []string
	for i := range 20 {
		ns := fmt.Sprintf("ns%d", i)
		names = append(names, ns)
		lag.WithLabelValues(ns).Set(1)
		depth.WithLabelValues(ns).Set(1)
	}
	return reg, names
}

// BenchmarkSample is the history's cost per interval: one Sample a second.
func BenchmarkSample(b *testing.B) {
	reg, names := benchRegistry()
	s := &Sampler{History: New(Options{}), Gatherer: reg, Tally: new(Tally),
		Namespaces: func(context.Context) ([]string, error) { return names, nil }}
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Sample(context.Background(), now.Add(time.Duration(i)*time.Second))
	}
}

// BenchmarkTallyCount is the history's cost per request.
func BenchmarkTallyCount(b *testing.B) {
	t := new(Tally)
	t.SetNamespaces([]string{"views", "clicks", "impressions"})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t.Count("views", 1, 1)
		}
	})
}
