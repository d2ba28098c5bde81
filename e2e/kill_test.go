package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

const killNamespaces = `
namespaces:
  - name: kill_ev
    counter_type: EVENTUAL
    accept_limit: 5s
    queue_config: {coalesce_ms: 100}
    time_partition: {buckets_per_id: 4, seconds_per_bucket: 1, seconds_per_slice: 2}
  - name: kill_acc
    counter_type: ACCURATE
    accept_limit: 5s
    queue_config: {coalesce_ms: 100}
    time_partition: {buckets_per_id: 2, seconds_per_bucket: 1, seconds_per_slice: 4}
`

// write is one acknowledged write, as the client saw it.
type write struct {
	ns, counter string
	token       string
	at          time.Time
	delta       int64
	clear       bool
}

// expected folds acknowledged writes the way abacus defines a count: in event
// time order, deltas before clears at equal times, a clear resets to zero.
func expected(ws []write) map[string]int64 {
	sorted := append([]write(nil), ws...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if !a.at.Equal(b.at) {
			return a.at.Before(b.at)
		}
		if a.clear != b.clear {
			return !a.clear
		}
		return a.token < b.token
	})
	out := map[string]int64{}
	for _, w := range sorted {
		k := w.ns + "/" + w.counter
		if w.clear {
			out[k] = 0
		} else {
			out[k] += w.delta
		}
	}
	return out
}

// TestKillNine writes from retrying clients (same token on every retry) while
// abacusd is killed with SIGKILL and restarted several times, then checks that
// every counter has exactly the count of the acknowledged writes: nothing lost,
// nothing counted twice.
func TestKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	d := newDaemon(t, writeFile(t, "ns.yaml", killNamespaces))
	d.start()
	cc, _ := client(t, d.grpcAddr)

	const writers = 8
	counters := []string{"c0", "c1", "c2", "c3", "c4"}
	stop := make(chan struct{})
	var (
		mu       sync.Mutex
		acked    []write
		retries  int
		failures []string
		wg       sync.WaitGroup
	)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				w := write{
					ns:      []string{"kill_ev", "kill_acc"}[rng.IntN(2)],
					counter: counters[rng.IntN(len(counters))],
					token:   fmt.Sprintf("w%d-%d", g, i),
					at:      time.Now(),
					delta:   rng.Int64N(20) - 5,
					clear:   rng.IntN(50) == 0,
				}
				if w.delta == 0 {
					w.delta = 7
				}
				tok := &abacusv1.IdempotencyToken{Token: w.token, GenerationTime: timestamppb.New(w.at)}
				for attempt := 0; ; attempt++ {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					var err error
					if w.clear {
						_, err = cc.ClearCount(ctx, &abacusv1.ClearCountRequest{Namespace: w.ns, CounterName: w.counter, IdempotencyToken: tok})
					} else {
						_, err = cc.AddCount(ctx, &abacusv1.AddCountRequest{Namespace: w.ns, CounterName: w.counter, Delta: w.delta, IdempotencyToken: tok})
					}
					cancel()
					if err == nil {
						mu.Lock()
						acked = append(acked, w)
						retries += attempt
						mu.Unlock()
						break
					}
					c := status.Code(err)
					if c != codes.Unavailable && c != codes.DeadlineExceeded && c != codes.Canceled {
						// Not retryable: the outcome of earlier attempts is unknown,
						// which would make the expected count unknowable.
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%s after %d attempts: %v", w.token, attempt+1, err))
						mu.Unlock()
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}

	for range 4 {
		time.Sleep(time.Duration(600+rand.IntN(800)) * time.Millisecond)
		d.kill()
		d.start()
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d writes failed with a non-retryable error, e.g. %s", len(failures), failures[0])
	}
	want := expected(acked)
	t.Logf("%d acknowledged writes, %d retries across 4 kills", len(acked), retries)

	// ACCURATE counts are exact at once.
	for _, c := range counters {
		resp, err := cc.GetCount(ctxT(t, 5*time.Second), &abacusv1.GetCountRequest{Namespace: "kill_acc", CounterName: c})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count != want["kill_acc/"+c] {
			t.Errorf("kill_acc/%s = %d, want %d", c, resp.Count, want["kill_acc/"+c])
		}
	}

	// Kill once more right after the last writes, so that rollups must be
	// recovered from the store; then wait past the convergence bound
	// (accept_limit + skew + coalesce) without reading: the first read must be
	// exact, which only the start-up recovery can make true.
	d.kill()
	d.start()
	time.Sleep(5*time.Second + time.Second + 100*time.Millisecond + 3*time.Second)
	for _, c := range counters {
		resp, err := cc.GetCount(ctxT(t, 5*time.Second), &abacusv1.GetCountRequest{Namespace: "kill_ev", CounterName: c})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count != want["kill_ev/"+c] {
			t.Errorf("kill_ev/%s = %d, want %d (first read after recovery)", c, resp.Count, want["kill_ev/"+c])
		}
		resp, err = cc.GetCount(ctxT(t, 5*time.Second), &abacusv1.GetCountRequest{Namespace: "kill_acc", CounterName: c})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count != want["kill_acc/"+c] {
			t.Errorf("kill_acc/%s after restart = %d, want %d", c, resp.Count, want["kill_acc/"+c])
		}
	}
	if t.Failed() {
		t.Logf("daemon output:\n%s", d.output())
	}
}
