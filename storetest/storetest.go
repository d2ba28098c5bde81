// Package storetest is the conformance suite for abacus store backends: every
// backend (the embedded Pebble store, PostgreSQL) runs the same tests against
// the contracts documented on abacus.EventStore, abacus.RollupStore and
// abacus.NamespaceStore, from its own _test.go:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Backend {
//			s, err := embedded.Open(t.TempDir(), embedded.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite creates its namespaces through the backend's NamespaceStore, with
// small partitions (10 s time buckets, 60 s slices, 4 event buckets) so that a
// few events already span several slices, time buckets and event buckets.
// Event times are compared to the nanosecond: a backend must keep event_time
// at nanosecond precision, as it is part of the idempotency key.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// Backend is a store under test: one value serving all three store interfaces.
type Backend interface {
	abacus.EventStore
	abacus.RollupStore
	abacus.NamespaceStore
}

// Run runs the suite, one subtest per contract. newBackend is called once per
// subtest and must return an empty backend; it should release it with
// t.Cleanup.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b Backend)
	}{
		{"AppendScanOrder", testAppendScanOrder},
		{"ScanRangeBoundaries", testScanRangeBoundaries},
		{"ScanAcrossPartitions", testScanAcrossPartitions},
		{"ScanStopsOnCallbackError", testScanCallbackError},
		{"NegativeAndExtremeDeltas", testExtremeDeltas},
		{"IdempotentReappend", testIdempotentReappend},
		{"DuplicatesWithinBatch", testDuplicatesWithinBatch},
		{"ConcurrentSameKey", testConcurrentSameKey},
		{"ConcurrentAppendsAllKept", testConcurrentAppendsAllKept},
		{"LastWriteIsMaxEventTime", testLastWrite},
		{"Model", testModel},
		{"CheckpointMonotonic", testCheckpointMonotonic},
		{"CheckpointConcurrent", testCheckpointConcurrent},
		{"Fence", testFence},
		{"FenceConcurrent", testFenceConcurrent},
		{"BehindCounters", testBehindCounters},
		{"BatchRollupStore", testBatchRollupStore},
		{"ListCounters", testListCounters},
		{"RepairCheckpoint", testRepairCheckpoint},
		{"RepairCheckpointConcurrent", testRepairConcurrent},
		{"AdvanceAfterRepair", testAdvanceAfterRepair},
		{"RetainedBase", testRetainedBase},
		{"MultiScanner", testMultiScanner},
		{"Counters", testCounters},
		{"DeleteSlices", testDeleteSlices},
		{"DropNamespaceIsolates", testDropNamespace},
		{"DeleteNamespaceDropsData", testDeleteNamespaceDrops},
		{"CanceledContext", testCanceledContext},
		{"NamespaceCRUD", testNamespaceCRUD},
		{"NamespaceIDsNeverReused", testNamespaceIDsNeverReused},
		{"NamespaceConcurrentCreate", testNamespaceConcurrentCreate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newBackend(t)) })
	}
}

// tb is what the helpers need from *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// t0 is the suite's base time; it is on a slice boundary.
var t0 = time.Date(2024, 10, 5, 14, 48, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// Partition widths of the suite's namespaces.
const (
	bucketWidth = 10 * time.Second
	sliceWidth  = time.Minute
)

func testPartition() abacus.TimePartition {
	return abacus.TimePartition{BucketsPerID: 4, BucketWidth: bucketWidth, SliceWidth: sliceWidth}
}

// newNamespace creates a namespace with the suite's partition.
func newNamespace(t tb, b Backend, name string) *abacus.Namespace {
	t.Helper()
	ns, err := b.CreateNamespace(context.Background(), namespaceConfig(name))
	if err != nil {
		t.Fatalf("CreateNamespace(%q): %v", name, err)
	}
	if ns.Partition != testPartition() {
		t.Fatalf("CreateNamespace(%q) returned partition %+v, want %+v", name, ns.Partition, testPartition())
	}
	return ns
}

func namespaceConfig(name string) *abacus.Namespace {
	return &abacus.Namespace{
		Name:             name,
		Type:             abacus.Accurate,
		Cardinality:      abacus.Low,
		TTL:              time.Minute,
		AcceptLimit:      10 * time.Second,
		Partition:        testPartition(),
		Queue:            abacus.QueueConfig{NumQueues: 2, Coalesce: 100 * time.Millisecond, CapacityBytes: 1 << 20},
		RollupBatchCount: 8,
		Retention:        abacus.Retention{CloseAfter: time.Hour, DeleteAfter: 2 * time.Hour},
		Description:      "storetest " + name,
	}
}

func add(counter string, off time.Duration, id string, delta int64) abacus.Event {
	return abacus.Event{Counter: counter, Time: at(off), ID: id, Delta: delta}
}

func clr(counter string, off time.Duration, id string) abacus.Event {
	return abacus.Event{Counter: counter, Time: at(off), ID: id, Clear: true}
}

func writes(ns *abacus.Namespace, evs ...abacus.Event) []abacus.Write {
	ws := make([]abacus.Write, len(evs))
	for i, e := range evs {
		ws[i] = abacus.Write{NS: ns, Event: e}
	}
	return ws
}

func mustAppend(t tb, b Backend, ns *abacus.Namespace, evs ...abacus.Event) {
	t.Helper()
	if err := b.Append(context.Background(), writes(ns, evs...)); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

func scanAll(t tb, b abacus.EventStore, ns *abacus.Namespace, counter string, r abacus.Range) []abacus.Event {
	t.Helper()
	var got []abacus.Event
	err := b.Scan(context.Background(), ns, counter, r, func(e abacus.Event) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q, %s): %v", counter, fmtRange(r), err)
	}
	return got
}

// rec is an event in a form that compares with == (time.Time does not).
type rec struct {
	Counter string
	Nanos   int64
	ID      string
	Delta   int64
	Clear   bool
}

func (r rec) String() string {
	op := fmt.Sprintf("%+d", r.Delta)
	if r.Clear {
		op = "clear"
	}
	return fmt.Sprintf("%s@%s/%s:%s", r.Counter, time.Duration(r.Nanos-t0.UnixNano()), r.ID, op)
}

func recs(evs []abacus.Event) []rec {
	out := make([]rec, len(evs))
	for i, e := range evs {
		out[i] = rec{e.Counter, e.Time.UnixNano(), e.ID, e.Delta, e.Clear}
	}
	return out
}

// sorted returns evs in Event.Before order, reversed if reverse.
func sorted(evs []abacus.Event, reverse bool) []abacus.Event {
	out := slices.Clone(evs)
	slices.SortStableFunc(out, abacus.CompareEvents)
	if reverse {
		slices.Reverse(out)
	}
	return out
}

func checkEvents(t tb, what string, got, want []abacus.Event) {
	t.Helper()
	g, w := recs(got), recs(want)
	if !slices.Equal(g, w) {
		t.Fatalf("%s:\n got  %v\n want %v", what, g, w)
	}
}

func checkCode(t tb, what string, err error, want abacus.Code) {
	t.Helper()
	if got := abacus.ErrorCode(err); got != want {
		t.Fatalf("%s: error %v has code %v, want %v", what, err, got, want)
	}
}

func fmtRange(r abacus.Range) string {
	f := func(x time.Time) string {
		if x.IsZero() {
			return "∞"
		}
		return x.Sub(t0).String()
	}
	s := "[" + f(r.From) + ", " + f(r.To) + ")"
	if r.Reverse {
		s += " reverse"
	}
	return s
}

func sortedStrings(s []string) string {
	s = slices.Clone(s)
	slices.Sort(s)
	return strings.Join(s, ",")
}
