package memory

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

func TestAdd(t *testing.T) {
	tests := []struct {
		name   string
		start  int64
		delta  int64
		want   int64
		failed bool
	}{
		{"from zero", 0, 5, 5, false},
		{"negative", 3, -10, -7, false},
		{"to max", math.MaxInt64 - 1, 1, math.MaxInt64, false},
		{"past max", math.MaxInt64, 1, math.MaxInt64, true},
		{"past min", math.MinInt64, -1, math.MinInt64, true},
		{"min plus", math.MinInt64, 1, math.MinInt64 + 1, false},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Options{})
			if tt.start != 0 {
				if _, err := c.Add(ctx, "k", tt.start, time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			got, err := c.Add(ctx, "k", tt.delta, time.Hour)
			if tt.failed {
				if abacus.ErrorCode(err) != abacus.OutOfRange {
					t.Fatalf("err = %v, want OutOfRange", err)
				}
				got, _ = c.Get(ctx, "k")
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("count = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestConcurrentAdds(t *testing.T) {
	c := New(Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				_, _ = c.Add(ctx, "hot", 1, time.Hour)
			}
		}()
	}
	wg.Wait()
	if n, _ := c.Get(ctx, "hot"); n != 8000 {
		t.Fatalf("count = %d, want 8000", n)
	}
	_ = c.Delete(ctx, "hot")
	if n, _ := c.Get(ctx, "hot"); n != 0 {
		t.Fatalf("after delete count = %d", n)
	}
}

func TestCheckpointKeepsNewer(t *testing.T) {
	c := New(Options{})
	ctx := context.Background()
	t0 := time.Unix(1000, 0)
	newer := abacus.Checkpoint{Count: abacus.SumOf(7), Through: t0.Add(time.Second)}
	older := abacus.Checkpoint{Count: abacus.SumOf(3), Through: t0}
	_ = c.PutCheckpoint(ctx, "k", newer, time.Hour)
	_ = c.PutCheckpoint(ctx, "k", older, time.Hour)
	got, ok, _ := c.GetCheckpoint(ctx, "k")
	if !ok || got != newer {
		t.Fatalf("got %+v %v, want %+v", got, ok, newer)
	}
}
