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
func TestLastWritesPlan(t *testing.T) {
	g := lastWriteGrid
	lw := newLastWrites()
	steps := []struct {
		name    string
		key     string
		nanos   int64
		apply   bool
		want    bool  // whether the batch must carry a merge
		wantVal int64 // the value it carries
	}{
		{"first write of a", "a", 5, false, true, g},
		{"not applied: still needed", "a", 5, true, true, g},
		{"same grid step: left out", "a", g - 1, true, false, g},
		{"exactly the stored value: left out", "a", g, true, false, g},
		{"next step", "a", g + 1, true, true, 2 * g},
		{"another key", "b", 7, true, true, g},
		{"older write of a: left out", "a", 3, true, false, g},
	}
	for _, st := range steps {
		ups := lw.plan(map[string]int64{st.key: st.nanos})
		if ups[0].need != st.want || (st.want && ups[0].nanos != st.wantVal) {
			t.Fatalf("%s: need %v value %d, want %v %d", st.name, ups[0].need, ups[0].nanos, st.want, st.wantVal)
		}
		if st.apply {
			lw.applied(ups)
		}
	}
}

// TestLastWritesSlotCollision: a key whose slot another key took merges
// again instead of trusting the other key's time.
func TestLastWritesSlotCollision(t *testing.T) {
	lw := newLastWrites()
	ups := lw.plan(map[string]int64{"a": 10})
	lw.applied(ups)
	// Another key takes a's slot.
	lw.slots[ups[0].slot].key = "b"
	if ups := lw.plan(map[string]int64{"a": 10}); !ups[0].need {
		t.Fatal("a merge was left out although the slot holds another key")
	}
}
