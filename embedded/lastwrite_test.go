package embedded

import (
	"math"
	"testing"
)

func TestCeilGrid(t *testing.T) {
	g := lastWriteGrid
	for _, c := range []struct{ in, want int64 }{
		{0, 0},
		{1, g},
		{g, g},
		{g + 1, 2 * g},
		{-1, 0},
		{-g, -g},
		{-g - 1, -g},
		{math.MaxInt64, math.MaxInt64},
		{math.MaxInt64 - g + 1, math.MaxInt64},
		{math.MinInt64, math.MinInt64 - math.MinInt64%g},
	} {
		if got := ceilGrid(c.in); got != c.want {
			t.Errorf("ceilGrid(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestLastWritesPlan: a merge is left out only when an applied batch
// carries at least the time needed for the same key.
