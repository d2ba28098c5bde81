package embedded

import (
	"testing"
	"time"
)

func TestFences(t *testing.T) {
	f := newFences(0)
	a, b := f.id([]byte("c\x00a")), f.id([]byte("c\x00b"))
	if a == b {
		t.Fatal("two keys share a fence id")
	}
	if f.id([]byte("c\x00a")) != a {
		t.Fatal("a key's fence id changed")
	}
	steps := []struct {
		id      uint64
		raise   int64
		wantA   int64
		wantAOK bool
	}{
		{b, 7, 0, false},
		{a, 10, 10, true},
		{a, 5, 10, true}, // a fence never moves back
		{a, 20, 20, true},
	}
	for i, st := range steps {
		f.raise(st.id, st.raise)
		if got, ok := f.end(a); got != st.wantA || ok != st.wantAOK {
			t.Fatalf("step %d: end(a) = %d, %v; want %d, %v", i, got, ok, st.wantA, st.wantAOK)
		}
	}
	if got, ok := f.end(b); got != 7 || !ok {
		t.Fatalf("end(b) = %d, %v; want 7", got, ok)
	}
	// Eviction drops fences older than the horizon once a stripe's map has
	// grown, and keeps young ones.
	now := time.Now()
	old := now.Add(-2 * fenceHorizon).UnixNano()
	i := fenceStripe(a)
	for n := uint64(0); len(f.ends[i]) < 2000; n++ {
		if id := n*numStripes + uint64(i); id != a {
			f.ends[i][id] = old
		}
	}
	f.raise(a, now.UnixNano())
	if len(f.ends[i]) != 1 {
		t.Fatalf("%d fences left in the stripe after eviction, want 1 (a's)", len(f.ends[i]))
	}
}
