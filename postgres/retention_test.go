package postgres

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// partitions returns the names of the partitions of a table of the store's
// schema, from the catalog (pg_inherits).
func partitions(t *testing.T, s *Store, table string) []string {
	t.Helper()
	rows, err := connect(t).Query(context.Background(), `
SELECT c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
JOIN pg_namespace n ON n.oid = p.relnamespace
WHERE n.nspname = $1 AND p.relname = $2 ORDER BY c.relname`, s.schema, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestDeleteSlicesDropsPartitions checks that retention drops whole slice
// partitions, that DropNamespace drops the namespace's table, and that a
// store that still remembers a dropped partition writes to its slice again.
func TestDeleteSlicesDropsPartitions(t *testing.T) {
	ctx := context.Background()
	url := serverURL(t)
	schema := freshSchema(t, url)
	s := openStore(t, Options{Schema: schema})
	other := openStore(t, Options{Schema: schema}) // another node
	ns := createNamespace(t, s, "ret")
	var evs []abacus.Event
	for _, slice := range []int{-1, 0, 1, 3} {
		evs = append(evs, ev("c", time.Duration(slice)*time.Minute+time.Second, fmt.Sprint("e", slice), 1))
	}
	if err := s.Append(ctx, write(ns, evs...)); err != nil {
		t.Fatal(err)
	}
	nsTable := fmt.Sprintf("events_n%d", ns.ID)
	slice := func(x int64) string { return fmt.Sprintf("events_n%d_s%d", ns.ID, x) }
	base := t0.UnixNano() / int64(time.Minute)
	want := []string{slice(base - 1), slice(base), slice(base + 1), slice(base + 3)}
	slices.Sort(want)
	if got := partitions(t, s, nsTable); !slices.Equal(got, want) {
		t.Fatalf("partitions %v, want %v", got, want)
	}
	if got := partitions(t, s, "events"); !slices.Equal(got, []string{nsTable}) {
		t.Fatalf("namespace partitions %v, want [%s]", got, nsTable)
	}
	// The other node writes to slice base+1, so it remembers that partition.
	if err := other.Append(ctx, write(ns, ev("d", time.Minute+2*time.Second, "x", 1))); err != nil {
		t.Fatal(err)
	}

	n, err := s.DeleteSlices(ctx, ns, t0.Add(2*time.Minute))
	if err != nil || n != 3 {
		t.Fatalf("DeleteSlices = %d, %v; want 3", n, err)
	}
	if got := partitions(t, s, nsTable); !slices.Equal(got, []string{slice(base + 3)}) {
		t.Fatalf("partitions after DeleteSlices %v, want [%s]", got, slice(base+3))
	}
	if got := scan(t, s, ns, "c"); len(got) != 1 || got[0].ID != "e3" {
		t.Fatalf("events after DeleteSlices: %v", got)
	}

	// The other node's memory of slice base+1 is stale: its write fails on
	// the missing partition, and the group creates it again.
	if err := other.Append(ctx, write(ns, ev("d", time.Minute+3*time.Second, "y", 1))); err != nil {
		t.Fatalf("append to a slice another node dropped: %v", err)
	}
	if got := scan(t, s, ns, "d"); len(got) != 1 || got[0].ID != "y" {
		t.Fatalf("events of d: %v", got)
	}

	if err := other.DropNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if got := partitions(t, s, "events"); len(got) != 0 {
		t.Fatalf("partitions after DropNamespace: %v", got)
	}
	if got := partitions(t, s, nsTable); len(got) != 0 {
		t.Fatalf("slice partitions after DropNamespace: %v", got)
	}
	var slicesLeft int
	if err := connect(t).QueryRow(ctx, s.sql(`SELECT count(*) FROM {{S}}.slices`)).Scan(&slicesLeft); err != nil || slicesLeft != 0 {
		t.Fatalf("slice registry after DropNamespace: %d rows, %v", slicesLeft, err)
	}
	// The first node still remembers the namespace's partitions.
	if err := s.Append(ctx, write(ns, ev("c", 3*time.Minute+5*time.Second, "z", 1))); err != nil {
		t.Fatalf("append after another node dropped the namespace: %v", err)
	}
}

// TestFenceAcrossStores checks that a fence raised through one node refuses
// late writes through another: the fence is in the database, not in memory.
func TestFenceAcrossStores(t *testing.T) {
	ctx := context.Background()
	url := serverURL(t)
	schema := freshSchema(t, url)
	a := openStore(t, Options{Schema: schema})
	b := openStore(t, Options{Schema: schema})
	ns := createNamespace(t, a, "fence")
	if err := a.Append(ctx, write(ns, ev("c", time.Second, "early", 1))); err != nil {
		t.Fatal(err)
	}
	if err := b.Fence(ctx, ns, "c", t0.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := a.Append(ctx, write(ns, ev("c", 20*time.Second, "late", 1))); abacus.ErrorCode(err) != abacus.FailedPrecondition {
		t.Fatalf("append behind another node's fence = %v, want FailedPrecondition", err)
	}
	if err := a.Append(ctx, write(ns, ev("c", time.Second, "early", 1))); err != nil {
		t.Fatalf("retry of an event stored before the fence: %v", err)
	}
	st, err := b.RollupState(ctx, ns, "c")
	if err != nil || !st.LastWrite.Equal(t0.Add(time.Second)) {
		t.Fatalf("rollup state = %+v, %v; want the last write of the early event", st, err)
	}
}
