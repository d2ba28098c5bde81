package counter_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/counter"
)

// TestRetentionKeepsCounts writes events over many slices, lets them age past
// delete_after and runs retention: the slices go, and every count stays the
// same, including counters that were never rolled up before retention ran.
func TestRetentionKeepsCounts(t *testing.T) {
	ctx := context.Background()
	acc := testNamespace("acc", abacus.Accurate)
	ev := testNamespace("ev", abacus.Eventual)
	for _, ns := range []*abacus.Namespace{acc, ev} {
		ns.Retention = abacus.Retention{CloseAfter: 5 * time.Second, DeleteAfter: 10 * time.Second}
	}
	f := newFixture(t, t.TempDir(), acc, ev)
	want := map[string]int64{}
	for i := range 40 {
		for _, ns := range []string{"acc", "ev"} {
			c := fmt.Sprintf("c%d", i%3)
			tok := abacus.Token{ID: fmt.Sprintf("t%d", i), Time: f.clk.t}
			if _, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: ns, Counter: c, Delta: int64(i + 1), Token: tok}); err != nil {
				t.Fatal(err)
			}
			want[ns+"/"+c] += int64(i + 1)
		}
		f.clk.t = f.clk.t.Add(500 * time.Millisecond)
	}
	// 20 s of events in 4 s slices; after 30 s more, every slice has ended
	// more than delete_after (10 s) ago.
	f.clk.t = f.clk.t.Add(30 * time.Second)
	n, err := f.svc.Retain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n < 8 {
		t.Fatalf("retention deleted %d slices, want at least 8 (5 per namespace)", n)
	}
	for _, ns := range []string{"acc", "ev"} {
		nsObj, _ := f.svc.GetNamespace(ctx, ns)
		events := 0
		for i := range 3 {
			c := fmt.Sprintf("c%d", i)
			_ = f.store.Scan(ctx, nsObj, c, abacus.Range{}, func(abacus.Event) error { events++; return nil })
			got, err := f.svc.Get(ctx, abacus.Ref{Namespace: ns, Counter: c})
			if err != nil {
				t.Fatal(err)
			}
			if got != want[ns+"/"+c] {
				t.Errorf("%s/%s after retention = %d, want %d", ns, c, got, want[ns+"/"+c])
			}
		}
		if events != 0 {
			t.Errorf("%s: %d events survived retention", ns, events)
		}
	}
	// A second pass finds nothing to do.
	if n, err := f.svc.Retain(ctx); err != nil || n != 0 {
		t.Fatalf("second retention pass: %d, %v", n, err)
	}
}

// TestRetentionGoesOnPastAFailedNamespace gives retention many namespaces
// whose event store is down and one that works: every broken namespace is
// reported, and the working one is still retained whatever the order.
func TestRetentionGoesOnPastAFailedNamespace(t *testing.T) {
	ctx := context.Background()
	good := testNamespace("good", abacus.Eventual)
	good.Retention = abacus.Retention{CloseAfter: 5 * time.Second, DeleteAfter: 10 * time.Second}
	nss := []*abacus.Namespace{good}
	for i := range 8 {
		bad := testNamespace(fmt.Sprintf("bad%d", i), abacus.Eventual)
		bad.Storage.Events.Type = abacus.StoragePostgres // a store this fixture lacks: Unavailable
		nss = append(nss, bad)
	}
	f := newFixture(t, t.TempDir(), nss...)
	failed := map[string]error{}
	f.svc = counter.New(counter.Config{Namespaces: f.store, Backends: f.backends, Now: f.clk.now,
		Logger:          slog.New(slog.DiscardHandler),
		RetentionFailed: func(ns string, err error) { failed[ns] = err }})
	if err := f.svc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		tok := abacus.Token{ID: fmt.Sprintf("t%d", i), Time: f.clk.t}
		if _, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: "good", Counter: "c", Delta: 1, Token: tok}); err != nil {
			t.Fatal(err)
		}
		f.clk.t = f.clk.t.Add(time.Second)
	}
	f.clk.t = f.clk.t.Add(30 * time.Second)
	n, err := f.svc.Retain(ctx)
	if n < 5 {
		t.Errorf("retention deleted %d slices of the working namespace, want at least 5", n)
	}
	for i := range 8 {
		name := fmt.Sprintf("bad%d", i)
		if abacus.ErrorCode(failed[name]) != abacus.Unavailable {
			t.Errorf("%s: reported %v, want an Unavailable failure", name, failed[name])
		}
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("namespace %q", name)) {
			t.Errorf("Retain's error does not name %s: %v", name, err)
		}
	}
	if _, ok := failed["good"]; ok || strings.Contains(fmt.Sprint(err), `"good"`) {
		t.Errorf("the working namespace was reported failed: %v", err)
	}
	if got, err := f.svc.Get(ctx, abacus.Ref{Namespace: "good", Counter: "c"}); err != nil || got != 20 {
		t.Errorf("count after retention = %d, %v; want 20", got, err)
	}
}
