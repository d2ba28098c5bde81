package embedded

import "testing"

func TestHighMark(t *testing.T) {
	var m highMark
	m.stored.Store(minNanos)
	steps := []struct {
		name      string
		n         int64 // a batch's latest time
		applied   bool  // whether its batch is applied
		wantMark  int64
		wantRaise bool
	}{
		{"first batch raises", 10, true, 10 + markAhead, true},
		{"under the mark: none", 10 + markAhead/2, true, 0, false},
		{"at the mark: none", 10 + markAhead, true, 0, false},
		{"past the mark raises", 11 + markAhead, false, 11 + 2*markAhead, true},
		{"a failed batch raised nothing", 11 + markAhead, true, 11 + 2*markAhead, true},
		{"an older applied mark does not lower it", 5, true, 0, false},
	}
	for _, st := range steps {
		mark, raise := m.need(st.n)
		if mark != st.wantMark || raise != st.wantRaise {
			t.Fatalf("%s: need(%d) = %d, %v; want %d, %v", st.name, st.n, mark, raise, st.wantMark, st.wantRaise)
		}
		if raise && st.applied {
			m.applied(mark)
		}
	}
	m.applied(3)
	if got := m.stored.Load(); got != 11+2*markAhead {
		t.Fatalf("stored %d after applying an older mark, want %d", got, 11+2*markAhead)
	}
}
