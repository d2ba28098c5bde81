package e2e

import (
	"testing"
	"time"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// TestAddAndGetCountSignalsItsWrite writes with AddAndGetCount to an
// EVENTUAL counter whose count is cached and whose checkpoint waits for a
// one-hour accept window (parked): the write must bring the counter back
// for a rollup within about a coalesce window, as AddCount does, not leave
// it parked for the hour, as a read does.
func TestAddAndGetCountSignalsItsWrite(t *testing.T) {
	d := newDaemon(t, writeFile(t, "ns.yaml", `
namespaces:
  - name: parked
    counter_type: EVENTUAL
    accept_limit: 1h
    queue_config: {coalesce_ms: 200}
    retention: {close_after: 2h, delete_after: 3h}
`))
	d.start()
	c, _ := client(t, d.grpcAddr)
	ctx := ctxT(t, time.Minute)
	waitFor := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, err := c.GetCount(ctx, &abacusv1.GetCountRequest{Namespace: "parked", CounterName: "c"})
			if err != nil {
				t.Fatal(err)
			}
			if got.Count == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("count %d after 30s, want %d", got.Count, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if _, err := c.AddAndGetCount(ctx, &abacusv1.AddCountRequest{Namespace: "parked", CounterName: "c", Delta: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(1) // rolled up once quiet, cached, parked for the hour
	if _, err := c.AddAndGetCount(ctx, &abacusv1.AddCountRequest{Namespace: "parked", CounterName: "c", Delta: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(2)
}
