package counter_test

import (
	"context"
	"sync"
	"testing"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/counter"
)

// TestApplyRacingNodes: nodes sharing a store start together with the same
// namespaces file; every one must start, whoever creates the namespace.
func TestApplyRacingNodes(t *testing.T) {
	f := newFixture(t, t.TempDir())
	ns := &abacus.Namespace{Name: "shared", Type: abacus.Eventual}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			svc := counter.New(counter.Config{Namespaces: f.store, Backends: f.backends, Signaler: f.sig, Now: f.clk.now})
			errs[i] = svc.Apply(context.Background(), []*abacus.Namespace{ns})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
}
