package counter

import (
	"testing"
	"time"
)

func TestOverflowMemo(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 500_000_000, time.UTC)
	tests := []struct {
		name    string
		ns      uint64
		counter string
		at      time.Time
		forget  bool
		want    bool
	}{
		{"marked, same second", 1, "c", now.Add(400 * time.Millisecond), false, true},
		{"next second", 1, "c", now.Add(500 * time.Millisecond), false, false},
		{"another counter", 1, "d", now, false, false},
		{"another namespace", 2, "c", now, false, false},
		{"forgotten", 1, "c", now, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &overflowMemo{}
			m.mark(1, "c", now)
			if tt.forget {
				m.forget(1, "c")
			}
			if got := m.safe(tt.ns, tt.counter, tt.at); got != tt.want {
				t.Errorf("safe(%d, %q, %v) = %v, want %v", tt.ns, tt.counter, tt.at, got, tt.want)
			}
		})
	}
	// Forgetting another counter in the same slot leaves the verdict.
	m := &overflowMemo{}
	m.mark(1, "c", now)
	m.forget(1, "x")
	if !m.safe(1, "c", now) {
		t.Error("forgetting another counter dropped c's verdict")
	}
}
