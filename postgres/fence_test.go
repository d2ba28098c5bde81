package postgres

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/storetest"
)

func TestFenceArgs(t *testing.T) {
	req := func(ns int64, counter string, end int64) *fenceRequest {
		return &fenceRequest{item: fence{fenceKey{ns, counter}, end}}
	}
	tests := []struct {
		name     string
		reqs     []*fenceRequest
		ns       []int64
		counters []string
		ends     []int64
	}{
		{"one", []*fenceRequest{req(1, "a", 5)}, []int64{1}, []string{"a"}, []int64{5}},
		{"sorted by namespace, then counter in byte order",
			[]*fenceRequest{req(2, "a", 1), req(1, "b", 2), req(1, "B", 3), req(1, "a", 4)},
			[]int64{1, 1, 1, 2}, []string{"B", "a", "b", "a"}, []int64{3, 4, 2, 1}},
		{"a counter once, with its highest fence",
			[]*fenceRequest{req(1, "a", 5), req(1, "b", 1), req(1, "a", 9), req(1, "a", 7)},
			[]int64{1, 1}, []string{"a", "b"}, []int64{9, 1}},
		{"the same name in two namespaces is two counters",
			[]*fenceRequest{req(2, "a", 5), req(1, "a", 6)},
			[]int64{1, 2}, []string{"a", "a"}, []int64{6, 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns, counters, ends := fenceArgs(tc.reqs)
			if !slices.Equal(ns, tc.ns) || !slices.Equal(counters, tc.counters) || !slices.Equal(ends, tc.ends) {
				t.Errorf("fenceArgs = %v %q %v, want %v %q %v", ns, counters, ends, tc.ns, tc.counters, tc.ends)
			}
		})
	}
}

func TestLockOrder(t *testing.T) {
	tests := []struct {
		counters []string
		want     []int
	}{
		{nil, []int{}},
		{[]string{"a"}, []int{0}},
		{[]string{"c", "a", "b"}, []int{1, 2, 0}},
		{[]string{"b", "B", "é", "e"}, []int{1, 0, 3, 2}}, // byte order, as COLLATE "C"
	}
	for _, tc := range tests {
		if got := lockOrder(tc.counters); !slices.Equal(got, tc.want) {
			t.Errorf("lockOrder(%q) = %v, want %v", tc.counters, got, tc.want)
		}
	}
}

// TestFencesShareACommit holds one counter's row locked, so that a Fence of
// it waits in the only fencer, queues more Fences behind it, and checks that
// they are all raised by one more transaction when the row is released, with
// the highest fence of each counter, and that each holds for its counter.
func TestFencesShareACommit(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{Committers: 1, Timeout: 10 * time.Second})
	ns := createNamespace(t, s, "fences")
	b := block(t, s, ns, "held")
	first := make(chan error, 1)
	go func() { first <- s.Fence(ctx, ns, "held", t0.Add(10*time.Second)) }()
	waitQueued(t, s.fencer, "fences", 0)
	fences := []struct {
		counter string
		end     time.Duration
	}{{"a", 20 * time.Second}, {"b", 30 * time.Second}, {"a", 25 * time.Second}, {"a", 5 * time.Second}, {"held", 40 * time.Second}}
	done := make([]chan error, len(fences))
	for i, f := range fences {
		done[i] = make(chan error, 1)
		go func() { done[i] <- s.Fence(ctx, ns, f.counter, t0.Add(f.end)) }()
		waitQueued(t, s.fencer, "fences", i+1)
	}
	b.release(t)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, c := range done {
		if err := <-c; err != nil {
			t.Errorf("Fence %v: %v", fences[i], err)
		}
	}
	if st := s.Stats(); st.FenceCommits != 2 || st.Fences != int64(len(fences)+1) {
		t.Errorf("stats %+v: want %d fences in 2 commits", st, len(fences)+1)
	}
	for _, c := range []struct {
		counter string
		fence   time.Duration
	}{{"a", 25 * time.Second}, {"b", 30 * time.Second}, {"held", 40 * time.Second}} {
		late := ev(c.counter, c.fence-time.Nanosecond, "late", 1)
		if err := s.Append(ctx, write(ns, late)); abacus.ErrorCode(err) != abacus.FailedPrecondition {
			t.Errorf("append to %s just behind its fence = %v, want FailedPrecondition", c.counter, err)
		}
		if err := s.Append(ctx, write(ns, ev(c.counter, c.fence, "at", 1))); err != nil {
			t.Errorf("append to %s at its fence: %v", c.counter, err)
		}
	}
}

// TestScanManyAgreesWithScan checks that ScanMany returns, for each request,
// exactly what Scan returns for it: more requests than one statement takes,
// a counter with more events than a statement returns for it, counters in
// and out of order and repeated, ranges across slices, empty and inverted
// ranges, a counter without events, clears.
func TestScanManyAgreesWithScan(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Options{})
	ns := createNamespace(t, s, "scanmany")
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
	// hot: 3 × scanManyPage events, some sharing a time.
	for k := range 3 * scanManyPage {
		ws = append(ws, abacus.Write{NS: ns, Event: ev("hot", time.Duration(k/3)*time.Second, fmt.Sprintf("h%03d", k), 1)})
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
		{Counter: "d", Range: abacus.Range{From: at(140), To: at(130)}},
		{Counter: "hot", Range: abacus.Range{}},
		{Counter: "b", Range: abacus.Range{From: at(119), To: at(241)}},
		{Counter: "hot", Range: abacus.Range{From: at(20), To: at(100)}},
	}
	for i := range 2 * scanManyChunk {
		reqs = append(reqs, abacus.ScanRequest{Counter: []string{"a", "b", "hot", "none"}[i%4], Range: abacus.Range{From: at(i), To: at(3 * i)}})
	}
	got := storetest.ScanManyAgrees(t, s, ns, reqs)
	if len(got[1]) != 40 || len(got[2]) != 0 || len(got[6]) != 3*scanManyPage {
		t.Errorf("a: %d events, zzz: %d, hot: %d; want 40, 0 and %d", len(got[1]), len(got[2]), len(got[6]), 3*scanManyPage)
	}

	tests := []struct {
		name string
		reqs []abacus.ScanRequest
		want abacus.Code
	}{
		{"reverse", []abacus.ScanRequest{{Counter: "a", Range: abacus.Range{Reverse: true}}}, abacus.InvalidArgument},
		{"no counter", []abacus.ScanRequest{{Counter: "a"}, {Counter: ""}}, abacus.InvalidArgument},
		{"NUL in a counter", []abacus.ScanRequest{{Counter: "a\x00"}}, abacus.InvalidArgument},
	}
	for _, tc := range tests {
		err := s.ScanMany(ctx, ns, tc.reqs, func(int, abacus.Event) error { return nil })
		if abacus.ErrorCode(err) != tc.want {
			t.Errorf("%s: ScanMany = %v, want %v", tc.name, err, tc.want)
		}
	}
	stop := fmt.Errorf("stop")
	if err := s.ScanMany(ctx, ns, reqs[6:7], func(int, abacus.Event) error { return stop }); err != stop {
		t.Errorf("ScanMany with a failing callback = %v, want its error", err)
	}
}
