package e2e

import (
	"strings"
	"testing"
	"time"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// TestSIGTERM checks the graceful shutdown: the process exits 0 after draining,
// and everything acknowledged before is there after a restart.
func TestSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	d := newDaemon(t, writeFile(t, "ns.yaml", killNamespaces))
	d.start()
	cc, _ := client(t, d.grpcAddr)
	ctx := ctxT(t, 60*time.Second)
	for i := range 50 {
		ns := []string{"kill_ev", "kill_acc"}[i%2]
		if _, err := cc.AddCount(ctx, &abacusv1.AddCountRequest{Namespace: ns, CounterName: "term", Delta: 2}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.stop(); err != nil {
		t.Fatalf("abacusd exit after SIGTERM: %v\n%s", err, d.output())
	}
	if out := d.output(); !strings.Contains(out, "stopped") {
		t.Fatalf("no clean stop in the log:\n%s", out)
	}
	d.start()
	r, err := cc.GetCount(ctx, &abacusv1.GetCountRequest{Namespace: "kill_acc", CounterName: "term"})
	if err != nil || r.Count != 50 {
		t.Fatalf("accurate after restart = %v, %v; want 50", r, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := cc.GetCount(ctx, &abacusv1.GetCountRequest{Namespace: "kill_ev", CounterName: "term"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Count == 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("eventual after restart = %d, want 50", r.Count)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
