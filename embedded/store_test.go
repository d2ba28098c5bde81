package embedded_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"

	"github.com/abacus-dev/abacus/embedded"
	"github.com/abacus-dev/abacus/storetest"
)

func open(t testing.TB, dir string, opts embedded.Options) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		return open(t, t.TempDir(), embedded.Options{})
	})
}

// TestConformanceWritingOut runs the suite with the in-memory event log
// written out after every append, in the background: events are read while
// some are in memory, some being ingested and some in Pebble's tables.
func TestConformanceWritingOut(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		return open(t, t.TempDir(), embedded.Options{EventLogFlushBytes: 1})
	})
}

var t0 = time.Date(2024, 10, 5, 14, 48, 0, 0, time.UTC)

// newStoreNS opens a store in a fresh temp dir with namespace name in it.
func newStoreNS(t *testing.T, name string) (*embedded.Store, *abacus.Namespace) {
	t.Helper()
	s := open(t, t.TempDir(), embedded.Options{Logger: testLogger(t)})
	ns, err := s.CreateNamespace(context.Background(), nsConfig(name))
	if err != nil {
		t.Fatal(err)
	}
	return s, ns
}

func nsConfig(name string) *abacus.Namespace {
	return &abacus.Namespace{
		Name:      name,
		Type:      abacus.Accurate,
		Partition: abacus.TimePartition{BucketsPerID: 4, BucketWidth: 10 * time.Second, SliceWidth: time.Minute},
	}
}

// writesAt returns a maker of one-event appends to ns at base+off.
func writesAt(ns *abacus.Namespace, base time.Time) func(counter string, off time.Duration, id string, delta int64) []abacus.Write {
	return func(counter string, off time.Duration, id string, delta int64) []abacus.Write {
		return []abacus.Write{{NS: ns, Event: abacus.Event{Counter: counter, Time: base.Add(off), ID: id, Delta: delta}}}
	}
}

// mustOK fails the test on err.
func mustOK(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ev(counter string, off time.Duration, id string, delta int64) abacus.Event {
	return abacus.Event{Counter: counter, Time: t0.Add(off), ID: id, Delta: delta}
}

func scan(t testing.TB, s *embedded.Store, ns *abacus.Namespace, counter string) []abacus.Event {
	t.Helper()
	var out []abacus.Event
	if err := s.Scan(context.Background(), ns, counter, abacus.Range{}, func(e abacus.Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// AdvanceCheckpoints writes only the checkpoints advanced from the stored
// ones, returns what is stored afterwards in the callers' order, and agrees
// with RollupStates and AdvanceCheckpoint.
func TestAdvanceCheckpoints(t *testing.T) {
	ctx := context.Background()
	s, ns := newStoreNS(t, "ns")
	cp := func(n int64, off time.Duration) abacus.Checkpoint {
		return abacus.Checkpoint{Count: abacus.SumOf(n), Through: t0.Add(off)}
	}
	if _, err := s.AdvanceCheckpoint(ctx, ns, "b", abacus.Checkpoint{}, cp(7, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdvanceCheckpoint(ctx, ns, "d", abacus.Checkpoint{}, cp(2, time.Second)); err != nil {
		t.Fatal(err)
	}
	counters := []string{"c", "b", "a", "d"}
	froms := []abacus.Checkpoint{{}, {}, {}, cp(2, time.Second)}
	got, err := s.AdvanceCheckpoints(ctx, ns, counters, froms, []abacus.Checkpoint{cp(3, time.Second), cp(5, 2*time.Minute), cp(1, 2*time.Second), cp(4, 3*time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	want := []abacus.Checkpoint{cp(3, time.Second), cp(7, time.Minute), cp(1, 2*time.Second), cp(4, 3*time.Second)}
	states, err := s.RollupStates(ctx, ns, counters)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range counters {
		if !got[i].Equal(want[i]) {
			t.Errorf("%s: returned %+v, want %+v", c, got[i], want[i])
		}
		st, err := s.RollupState(ctx, ns, c)
		if err != nil || !st.Checkpoint.Equal(want[i]) {
			t.Errorf("%s: stored %+v, %v; want %+v", c, st, err, want[i])
		}
		if states[i] != st {
			t.Errorf("%s: RollupStates %+v, RollupState %+v", c, states[i], st)
		}
	}
	if _, err := s.AdvanceCheckpoints(ctx, ns, counters, froms, nil); abacus.ErrorCode(err) != abacus.InvalidArgument {
		t.Errorf("mismatched lengths: %v, want InvalidArgument", err)
	}
	if _, err := s.AdvanceCheckpoints(ctx, ns, counters, nil, froms); abacus.ErrorCode(err) != abacus.InvalidArgument {
		t.Errorf("mismatched lengths: %v, want InvalidArgument", err)
	}
}

// ScanMany returns, for each request, exactly what Scan returns for it:
// counters in and out of order, ranges across slices and time buckets,
// empty ranges, a counter without events, clears.
func TestScanManyAgreesWithScan(t *testing.T) {
	ctx := context.Background()
	s, ns := newStoreNS(t, "ns")
	var ws []abacus.Write
	for i, c := range []string{"a", "b", "c", "d"} {
		for k := range 40 {
			e := ev(c, time.Duration(k*7+i)*time.Second, fmt.Sprintf("%s%d", c, k), int64(k+1))
			if k%13 == 5 {
				e.Delta, e.Clear = 0, true
			}
			ws = append(ws, abacus.Write{NS: ns, Event: e})
		}
	}
	if err := s.Append(ctx, ws); err != nil {
		t.Fatal(err)
	}
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	reqs := []abacus.ScanRequest{
		{Counter: "c", Range: abacus.Range{From: at(10), To: at(200)}},
		{Counter: "a", Range: abacus.Range{To: at(1000)}},
		{Counter: "zzz", Range: abacus.Range{From: at(0), To: at(100)}},
		{Counter: "b", Range: abacus.Range{From: at(61), To: at(62)}},
		{Counter: "d", Range: abacus.Range{From: at(130), To: at(130)}},
		{Counter: "b", Range: abacus.Range{From: at(119), To: at(241)}},
	}
	got := storetest.ScanManyAgrees(t, s, ns, reqs)
	if len(got[1]) != 40 || len(got[2]) != 0 {
		t.Errorf("a: %d events, zzz: %d; want 40 and 0", len(got[1]), len(got[2]))
	}
	err := s.ScanMany(ctx, ns, []abacus.ScanRequest{{Counter: "a", Range: abacus.Range{Reverse: true}}}, func(int, abacus.Event) error { return nil })
	if abacus.ErrorCode(err) != abacus.InvalidArgument {
		t.Errorf("reverse ScanMany: %v, want InvalidArgument", err)
	}
}
