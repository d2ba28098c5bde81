package embedded

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestHighMark(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Merger: maxTimeMerger})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := highMark{key: maxEventTimeKey}
	m.stored.Store(minNanos)
	steps := []struct {
		name     string
		n        int64 // a batch's latest time
		applied  bool  // whether its batch is applied
		wantMark int64 // minNanos: the batch carries none
	}{
		{"first batch carries one", 10, true, 10 + markAhead},
		{"under the mark: none", 10 + markAhead/2, true, minNanos},
		{"at the mark: none", 10 + markAhead, true, minNanos},
		{"past the mark: one", 11 + markAhead, false, 11 + 2*markAhead},
		{"a failed batch raised nothing", 11 + markAhead, true, 11 + 2*markAhead},
		{"an older time: none", 5, true, minNanos},
	}
	for _, st := range steps {
		b := db.NewBatch()
		mark := m.add(b, st.n)
		if mark != st.wantMark || b.Empty() != (st.wantMark == minNanos) {
			t.Fatalf("%s: add(%d) = %d with %d entries; want %d", st.name, st.n, mark, b.Count(), st.wantMark)
		}
		_ = b.Close()
		if st.applied {
			m.applied(mark)
		}
	}
	m.applied(3)
	if got := m.stored.Load(); got != 11+2*markAhead {
		t.Fatalf("stored %d after applying an older mark, want %d", got, 11+2*markAhead)
	}
}
