package abacus

import (
	"testing"
	"time"
)

func TestRollupEndAndCovers(t *testing.T) {
	ns := &Namespace{AcceptLimit: 5 * time.Second}
	base := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		now  time.Time
		end  time.Time
	}{
		{"on a grain", base, base.Add(-6 * time.Second)},
		{"just after", base.Add(time.Nanosecond), base.Add(-6 * time.Second)},
		{"just before the next", base.Add(RollupGrain - time.Nanosecond), base.Add(-6 * time.Second)},
		{"mid grain", base.Add(250 * time.Millisecond), base.Add(-6*time.Second + 200*time.Millisecond)},
		{"before the epoch", time.Unix(0, -150_000_000).Add(6 * time.Second), time.Unix(0, -200_000_000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ns.RollupEnd(tt.now); !got.Equal(tt.end) {
				t.Errorf("RollupEnd(%v) = %v, want %v", tt.now, got, tt.end)
			}
			// An event at the end is covered exactly from RollupCovers on.
			at := ns.RollupCovers(tt.end)
			if !ns.RollupEnd(at).After(tt.end) || ns.RollupEnd(at.Add(-time.Nanosecond)).After(tt.end) {
				t.Errorf("RollupCovers(%v) = %v: RollupEnd there %v, a nanosecond before %v",
					tt.end, at, ns.RollupEnd(at), ns.RollupEnd(at.Add(-time.Nanosecond)))
			}
			off := tt.end.Add(37 * time.Millisecond)
			at = ns.RollupCovers(off)
			if !ns.RollupEnd(at).After(off) || ns.RollupEnd(at.Add(-time.Nanosecond)).After(off) {
				t.Errorf("RollupCovers(%v) = %v is not the earliest cover", off, at)
			}
		})
	}
}
