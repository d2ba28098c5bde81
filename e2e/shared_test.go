package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/internal/testservers"
)

const sharedNamespaces = `
namespaces:
  - name: sh_ev
    counter_type: EVENTUAL
    accept_limit: 15s
    queue_config: {coalesce_ms: 200}
    time_partition: {buckets_per_id: 4, seconds_per_bucket: 1, seconds_per_slice: 5}
  - name: sh_acc
    counter_type: ACCURATE
    accept_limit: 15s
    queue_config: {coalesce_ms: 200}
    time_partition: {buckets_per_id: 2, seconds_per_bucket: 2, seconds_per_slice: 10}
`

// startRedis starts a private redis-server for one test, so its keys cannot
// meet another test's.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testservers.Env(t, "ABACUS_TEST_REDIS") // skips or fails by the project's rule
		t.Skip("redis-server not installed")
	}
	addr := freeAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return addr
}

// TestSharedNodes runs three abacusd nodes over one PostgreSQL and one Redis.
// Retrying clients (the same token on every retry) write through all of
// them while nodes are killed with SIGKILL and restarted and PostgreSQL is
// stopped for a few seconds; afterwards every node must return the exact count
// of every counter, for EVENTUAL and ACCURATE namespaces.
func TestSharedNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	pg := testservers.StartPostgres(t)
	redisAddr := startRedis(t)
	nsFile := writeFile(t, "ns.yaml", sharedNamespaces)
	nodes := make([]*daemon, 3)
	for i := range nodes {
		nodes[i] = newDaemon(t, nsFile)
		nodes[i].extra = []string{"--postgres", pg.URL(), "--redis", redisAddr, "--namespace-refresh", "500ms"}
		nodes[i].start()
	}
	clients := make([]abacusv1.CounterServiceClient, len(nodes))
	nsClients := make([]abacusv1.NamespaceServiceClient, len(nodes))
	for i, d := range nodes {
		clients[i], nsClients[i] = client(t, d.grpcAddr)
	}

	// A namespace created through one node is served by every node.
	ctx := ctxT(t, 5*time.Minute)
	if _, err := nsClients[0].CreateNamespace(ctx, &abacusv1.CreateNamespaceRequest{Namespace: &abacusv1.Namespace{
		Name: "sh_new", CounterType: abacusv1.CounterType_ACCURATE}}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(nodes); i++ {
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := clients[i].AddCount(ctx, &abacusv1.AddCountRequest{Namespace: "sh_new", CounterName: "x", Delta: 1})
			if err == nil {
				break
			}
			if status.Code(err) != codes.NotFound || time.Now().After(deadline) {
				t.Fatalf("node %d does not serve a namespace created on node 0: %v", i, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	r, err := clients[0].GetCount(ctx, &abacusv1.GetCountRequest{Namespace: "sh_new", CounterName: "x"})
	if err != nil || r.Count != 2 {
		t.Fatalf("sh_new/x on node 0 = %v, %v; want 2 (one add through each other node)", r, err)
	}

	counters := []string{"c0", "c1", "c2", "c3"}
	var (
		mu       sync.Mutex
		acked    []write
		failures []string
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				w := write{
					ns:      []string{"sh_ev", "sh_acc"}[rng.IntN(2)],
					counter: counters[rng.IntN(len(counters))],
					token:   fmt.Sprintf("g%d-%d", g, i),
					at:      time.Now(),
					delta:   rng.Int64N(9) + 1,
					clear:   rng.IntN(80) == 0,
				}
				tok := &abacusv1.IdempotencyToken{Token: w.token, GenerationTime: timestamppb.New(w.at)}
				for attempt := 0; ; attempt++ {
					c := clients[rng.IntN(len(clients))]
					actx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
					var err error
					if w.clear {
						_, err = c.ClearCount(actx, &abacusv1.ClearCountRequest{Namespace: w.ns, CounterName: w.counter, IdempotencyToken: tok})
					} else {
						_, err = c.AddCount(actx, &abacusv1.AddCountRequest{Namespace: w.ns, CounterName: w.counter, Delta: w.delta, IdempotencyToken: tok})
					}
					cancel()
					if err == nil {
						mu.Lock()
						acked = append(acked, w)
						mu.Unlock()
						break
					}
					if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%s attempt %d: %v", w.token, attempt+1, err))
						mu.Unlock()
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}

	chaos := rand.New(rand.NewPCG(1, 2))
	killSome := func(rounds int) {
		for range rounds {
			time.Sleep(time.Duration(400+chaos.IntN(600)) * time.Millisecond)
			d := nodes[chaos.IntN(len(nodes))]
			d.kill()
			time.Sleep(200 * time.Millisecond)
			d.start()
		}
	}
	killSome(3)

	// PostgreSQL goes away: writes fail fast with UNAVAILABLE, cached
	// eventual counts are still served.
	for _, c := range counters {
		_, _ = clients[0].GetCount(ctx, &abacusv1.GetCountRequest{Namespace: "sh_ev", CounterName: c}, grpc.WaitForReady(true))
	}
	pg.Stop()
	outage := time.Now()
	time.Sleep(500 * time.Millisecond)
	for i, c := range clients {
		actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		// WaitForReady: the answer must come from the node, not from a
		// client still reconnecting after an earlier kill.
		_, err := c.AddCount(actx, &abacusv1.AddCountRequest{Namespace: "sh_acc", CounterName: "probe", Delta: 1}, grpc.WaitForReady(true))
		cancel()
		if status.Code(err) != codes.Unavailable {
			t.Errorf("node %d: AddCount with PostgreSQL down: %v, want Unavailable", i, err)
		}
		t.Logf("node %d answered %v in %v with PostgreSQL down", i, status.Code(err), time.Since(start).Round(time.Millisecond))
		if _, err := c.GetCount(ctx, &abacusv1.GetCountRequest{Namespace: "sh_ev", CounterName: counters[0]}, grpc.WaitForReady(true)); err != nil {
			t.Errorf("node %d: cached eventual read with PostgreSQL down: %v", i, err)
		}
	}
	time.Sleep(3*time.Second - time.Since(outage))
	pg.Start()
	killSome(3)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d writes failed with a non-retryable error, e.g. %s", len(failures), failures[0])
	}
	want := expected(acked)
	t.Logf("%d acknowledged writes", len(acked))

	check := func(ns string, deadline time.Time) {
		for i, c := range clients {
			for _, ctr := range counters {
				for {
					r, err := c.GetCount(ctx, &abacusv1.GetCountRequest{Namespace: ns, CounterName: ctr})
					if err == nil && r.Count == want[ns+"/"+ctr] {
						break
					}
					if time.Now().After(deadline) {
						t.Errorf("node %d %s/%s = %v (%v), want %d", i, ns, ctr, r.GetCount(), err, want[ns+"/"+ctr])
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
		}
	}
	// ACCURATE is exact at once (a short grace only for a node reconnecting
	// to PostgreSQL); EVENTUAL within accept_limit + skew + coalesce.
	check("sh_acc", time.Now().Add(5*time.Second))
	check("sh_ev", time.Now().Add(15*time.Second+time.Second+200*time.Millisecond+10*time.Second))
	if t.Failed() {
		for i, d := range nodes {
			t.Logf("node %d output:\n%s", i, lastLines(d.output(), 40))
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
