package rollup

import (
	"context"
	"testing"
	"time"
)

// State follows a counter from queued to running to parked to let go.
func TestState(t *testing.T) {
	release := make(chan struct{})
	parkUntil := time.Now().Add(time.Hour)
	calls := 0
	p := start(t, func(ctx context.Context, k Key) (Outcome, error) {
		calls++
		if calls == 1 {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return Outcome{NotBefore: parkUntil}, nil
		}
		return Outcome{CaughtUp: true}, nil
	}, quiet())
	ns := namespace(1, 1, 50*time.Millisecond, 0, 1)
	if got := p.State(ns.ID, "c"); got.Held {
		t.Fatalf("before any signal: %+v", got)
	}
	p.Signal(Key{NS: ns, Counter: "c"})
	if got := p.State(ns.ID, "c"); !got.Held || got.Running || got.Since.IsZero() {
		t.Fatalf("queued: %+v", got)
	}
	eventually(t, "running", func() bool { return p.State(ns.ID, "c").Running })
	close(release)
	eventually(t, "parked", func() bool { return p.State(ns.ID, "c").Parked })
	if got := p.State(ns.ID, "c"); !got.NotBefore.Equal(parkUntil) {
		t.Errorf("parked until %v, want %v", got.NotBefore, parkUntil)
	}
	p.Signal(Key{NS: ns, Counter: "c"}) // a write: back to the next window, then caught up
	eventually(t, "let go", func() bool { return !p.State(ns.ID, "c").Held })
	if got := p.State(99, "c"); got.Held {
		t.Errorf("unknown namespace: %+v", got)
	}
}
