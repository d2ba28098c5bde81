package memlimit

import (
	"context"
	"math"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	c := Config{Floor: 2 << 30, Ratio: 2}
	tests := []struct {
		name string
		live uint64
		want int64
	}{
		{"no heap", 0, 2 << 30},
		{"below the floor", 512 << 20, 2 << 30},
		{"at the floor", 1 << 30, 2 << 30},
		{"above it", 3 << 30, 6 << 30},
		{"overflow", math.MaxUint64, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Limit(tt.live); got != tt.want {
				t.Errorf("Limit(%d) = %d, want %d", tt.live, got, tt.want)
			}
		})
	}
}

// TestRun: Run sets the process's limit from its live heap, and keeps it
// after its context ends.
func TestRun(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	// A floor far above this test's heap, so the limit is the floor.
	c := Config{Floor: 3 << 40, Ratio: 2, Every: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, c); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for debug.SetMemoryLimit(-1) != int64(c.Floor) {
		if time.Now().After(deadline) {
			t.Fatalf("limit %d after 5 s, want the floor %d", debug.SetMemoryLimit(-1), c.Floor)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if got := debug.SetMemoryLimit(-1); got != int64(c.Floor) {
		t.Errorf("limit %d after Run returned, want %d", got, c.Floor)
	}
}
