package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/node"
)

// nodeNamespaces are the namespaces of the in-process node: an EVENTUAL one
// that converges quickly and an ACCURATE one whose reads are exact, for
// tests, and an EVENTUAL one with the default settings, for benchmarks. The
// EVENTUAL one's accept limit leaves room for a call delayed on a loaded CI
// machine (a retry keeps its first generation time; 1s was once too short).
const nodeNamespaces = `
namespaces:
  - {name: ev, counter_type: EVENTUAL, accept_limit: 3s, queue_config: {coalesce_ms: 10}}
  - {name: acc, counter_type: ACCURATE}
  - {name: views, counter_type: EVENTUAL}
  - {name: be, counter_type: BEST_EFFORT}
`

// startNode starts a real node on loopback ports, with an embedded store in
// a temporary directory, until the test or benchmark ends.
func startNode(tb testing.TB) *node.Node {
	tb.Helper()
	dir := tb.TempDir()
	nsFile := filepath.Join(dir, "namespaces.yaml")
	if err := os.WriteFile(nsFile, []byte(nodeNamespaces), 0o600); err != nil {
		tb.Fatal(err)
	}
	n, err := node.Start(context.Background(), node.Config{
		DataDir: filepath.Join(dir, "data"), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		NamespacesFile: nsFile, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// TestNode drives a real node through the client: 64 goroutines × 100 adds
// give the exact ACCURATE count, and the EVENTUAL count converges to it.
func TestNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	n := startNode(t)
	c := newClient(t, n.GRPCAddr())
	ctx := context.Background()
	const goroutines, adds = 64, 100
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range adds {
				for _, ns := range []string{"acc", "ev"} {
					if err := c.AddCount(ctx, ns, "hits", 1); err != nil {
						t.Errorf("goroutine %d, add %d to %s: %v", g, i, ns, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if got, err := c.GetCount(ctx, "acc", "hits"); err != nil || got != goroutines*adds {
		t.Fatalf("ACCURATE count = %d, %v; want %d", got, err, goroutines*adds)
	}
	eventually(t, "the EVENTUAL count to converge", func() bool {
		got, err := c.GetCount(ctx, "ev", "hits")
		return err == nil && got == goroutines*adds
	})
	s := c.Stats()
	t.Logf("%d adds in %d RPCs (%.1f per RPC)", s.AddItems, s.AddRPCs, float64(s.AddItems)/float64(s.AddRPCs))

	if err := c.AddCounts(ctx, []Add{{"acc", "x", 5}, {"acc", "y", -2}}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetCounts(ctx, []Ref{{"acc", "x"}, {"acc", "y"}, {"acc", "hits"}}); err != nil ||
		fmt.Sprint(got) != fmt.Sprint([]int64{5, -2, goroutines * adds}) {
		t.Fatalf("GetCounts = %v, %v", got, err)
	}
	if got, err := c.AddAndGetCount(ctx, "acc", "x", 1); err != nil || got != 6 {
		t.Fatalf("AddAndGetCount = %d, %v; want 6", got, err)
	}
	if err := c.ClearCount(ctx, "acc", "x"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetCount(ctx, "acc", "x"); err != nil || got != 0 {
		t.Fatalf("GetCount after ClearCount = %d, %v; want 0", got, err)
	}
}

// TestNodeService drives a real node through Service, batching on and off:
// a write with the caller's token is applied once however often it is
// sent, every method answers as the counter service does, and an invalid
// request gets the same error whether the client or the node refuses it.
func TestNodeService(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	n := startNode(t)
	ctx := context.Background()
	for _, batching := range []bool{true, false} {
		t.Run(fmt.Sprintf("batching=%v", batching), func(t *testing.T) {
			s := newClient(t, n.GRPCAddr(), WithBatching(batching)).Service()
			ctr := fmt.Sprint("svc-", batching)
			add := abacus.AddRequest{Namespace: "acc", Counter: ctr, Delta: 2, Token: abacus.Token{ID: "evt-" + ctr, Time: time.Now()}}
			for range 2 {
				if tok, err := s.Add(ctx, add); err != nil || tok != add.Token {
					t.Fatalf("Add = %+v, %v; want the caller's token", tok, err)
				}
			}
			got, tok, err := s.AddAndGet(ctx, abacus.AddRequest{Namespace: "acc", Counter: ctr, Delta: 1})
			if err != nil || got != 3 || tok.ID == "" {
				t.Fatalf("AddAndGet = %d, %+v, %v; want 3 (the first add counted once) and a token", got, tok, err)
			}
			toks, err := s.AddBatch(ctx, []abacus.AddRequest{{Namespace: "acc", Counter: ctr + "-b", Delta: 5}, add})
			if err != nil || len(toks) != 2 || toks[1] != add.Token {
				t.Fatalf("AddBatch = %+v, %v", toks, err)
			}
			counts, err := s.GetBatch(ctx, []abacus.Ref{{Namespace: "acc", Counter: ctr}, {Namespace: "acc", Counter: ctr + "-b"}})
			if err != nil || fmt.Sprint(counts) != "[3 5]" {
				t.Fatalf("GetBatch = %v, %v; want [3 5]", counts, err)
			}
			if _, err := s.Clear(ctx, abacus.Ref{Namespace: "acc", Counter: ctr}, abacus.Token{}); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Get(ctx, abacus.Ref{Namespace: "acc", Counter: ctr}); err != nil || got != 0 {
				t.Fatalf("Get after Clear = %d, %v; want 0", got, err)
			}

			for _, bad := range []abacus.AddRequest{
				{Namespace: "acc", Counter: ctr},
				{Namespace: "a b", Counter: ctr, Delta: 1},
				{Namespace: "acc", Counter: ctr, Delta: 1, Token: abacus.Token{ID: "t"}},
			} {
				_, err := s.Add(ctx, bad)
				want := bad.Check()
				if abacus.ErrorCode(err) != abacus.InvalidArgument || abacus.ErrorMessage(err) != abacus.ErrorMessage(want) {
					t.Errorf("Add(%+v) = %v, want %v", bad, err, want)
				}
			}
			_, err = s.Get(ctx, abacus.Ref{Namespace: "nope", Counter: ctr})
			if e, ok := errors.AsType[*abacus.Error](err); !ok || e.Code != abacus.NotFound {
				t.Errorf("Get of an unknown namespace = %#v, want a NotFound *abacus.Error", err)
			}
		})
	}
}

// BenchmarkAddCountParallel measures AddCount on an EVENTUAL namespace from
// about 64 goroutines, with natural batching on and off. ns/op is the time
// per AddCount across all goroutines; adds/rpc is the mean batch size. Each
// run starts its own node, so that one run's events do not slow the next.
func BenchmarkAddCountParallel(b *testing.B) {
	for _, bench := range []struct {
		name string
		opts []Option
	}{
		{"batching=on", nil},
		{"batching=off", []Option{WithBatching(false)}},
	} {
		b.Run(bench.name, func(b *testing.B) { benchAdds(b, "views", bench.opts...) })
	}
}

// BenchmarkAddCountTuning measures the choices behind the defaults: how many
// batches in flight, and whether a lone call goes out as the unary AddCount
// or as an AddCounts of one, on a durable (fsynced) namespace and on a
// BEST_EFFORT one (the RPC and CPU floor).
func BenchmarkAddCountTuning(b *testing.B) {
	for _, ns := range []string{"views", "be"} {
		for _, bench := range []struct {
			name string
			opts []Option
		}{
			{"inflight=1", []Option{WithBatchesInFlight(1)}},
			{"inflight=2", []Option{WithBatchesInFlight(2)}},
			{"inflight=4", []Option{WithBatchesInFlight(4)}},
			{"inflight=2/lone=AddCounts", []Option{WithBatchesInFlight(2), withDirectBatch(true)}},
			{"inflight=2/conns=2", []Option{WithBatchesInFlight(2), WithConns(2)}},
		} {
			b.Run(ns+"/"+bench.name, func(b *testing.B) { benchAdds(b, ns, bench.opts...) })
		}
	}
}

// benchAdds runs AddCount from about 64 goroutines, over 16 counters, on a
// node of its own.
func benchAdds(b *testing.B, ns string, opts ...Option) {
	n := startNode(b)
	c := newClient(b, n.GRPCAddr(), opts...)
	before := c.Stats()
	var ids atomic.Int64
	b.SetParallelism((64 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		counter := fmt.Sprint("c", ids.Add(1)%16)
		for pb.Next() {
			if err := c.AddCount(context.Background(), ns, counter, 1); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	after := c.Stats()
	b.ReportMetric(float64(after.AddItems-before.AddItems)/float64(after.AddRPCs-before.AddRPCs), "adds/rpc")
}
