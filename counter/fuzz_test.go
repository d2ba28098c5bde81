package counter_test

import (
	"context"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// FuzzService feeds arbitrary names, tokens, deltas and times through the real
// service and embedded store: nothing may panic, every refusal must carry a
// client error code (never Internal or Unavailable), and an acknowledged
// write must leave the counter readable.
func FuzzService(f *testing.F) {
	fx := newFixture(f, f.TempDir(), testNamespace("acc", abacus.Accurate), testNamespace("be", abacus.BestEffort))
	f.Add("acc", "counter123", "some_event_id", int64(2), int64(0), false)
	f.Add("acc", "a\x00b", "tok", int64(-5), int64(-1500), false)
	f.Add("be", "c", "", int64(1<<62), int64(0), false)
	f.Add("acc", "c", "t", int64(0), int64(9000), true)
	f.Add("nope", "", "\xff", int64(-1<<63), int64(-1<<40), false)
	allowed := map[abacus.Code]bool{
		abacus.InvalidArgument: true, abacus.NotFound: true, abacus.FailedPrecondition: true,
		abacus.AlreadyExists: true, abacus.OutOfRange: true,
	}
	f.Fuzz(func(t *testing.T, ns, name, token string, delta, offsetMs int64, clear bool) {
		ctx := context.Background()
		tok := abacus.Token{ID: token}
		if token != "" {
			tok.Time = fx.clk.t.Add(time.Duration(offsetMs%100000) * time.Millisecond)
		}
		var err error
		if clear {
			_, err = fx.svc.Clear(ctx, abacus.Ref{Namespace: ns, Counter: name}, tok)
		} else {
			_, err = fx.svc.Add(ctx, abacus.AddRequest{Namespace: ns, Counter: name, Delta: delta, Token: tok})
		}
		if err != nil {
			if !allowed[abacus.ErrorCode(err)] {
				t.Fatalf("write refused with %v: %v", abacus.ErrorCode(err), err)
			}
			return
		}
		if _, err := fx.svc.Get(ctx, abacus.Ref{Namespace: ns, Counter: name}); err != nil && abacus.ErrorCode(err) != abacus.OutOfRange {
			t.Fatalf("read after an acknowledged write: %v", err)
		}
	})
}
