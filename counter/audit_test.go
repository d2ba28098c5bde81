package counter_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/embedded"
	"github.com/abacus-dev/abacus/rollup"
)

// writeEvents adds the given deltas to ns/c, every two events at the same
// time (so that pages split runs of one time), with a clear among them.
func writeEvents(t *testing.T, f *fixture, ns, c string, n int) []abacus.Event {
	t.Helper()
	ctx := context.Background()
	var want []abacus.Event
	for i := range n {
		at := f.clk.t.Add(time.Duration(i/2) * time.Millisecond)
		id := fmt.Sprintf("e%03d", i)
		if i == n/2 {
			if _, err := f.svc.Clear(ctx, abacus.Ref{Namespace: ns, Counter: c}, abacus.Token{ID: id, Time: at}); err != nil {
				t.Fatal(err)
			}
			want = append(want, abacus.Event{Counter: c, Time: at, ID: id, Clear: true})
			continue
		}
		if _, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: ns, Counter: c, Delta: int64(i + 1), Token: abacus.Token{ID: id, Time: at}}); err != nil {
			t.Fatal(err)
		}
		want = append(want, abacus.Event{Counter: c, Time: at, ID: id, Delta: int64(i + 1)})
	}
	slices.SortFunc(want, abacus.CompareEvents)
	return want
}

func sameEvents(a, b []abacus.Event) bool {
	return slices.EqualFunc(a, b, func(x, y abacus.Event) bool {
		return x.Time.Equal(y.Time) && x.ID == y.ID && x.Delta == y.Delta && x.Clear == y.Clear
	})
}

// TestListEventsPages: every page size and order returns the events of the
// range in rollup order (or reversed), each once, and events written
// between pages show up once or not at all, never twice.
func TestListEventsPages(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, t.TempDir(), testNamespace("ev", abacus.Eventual), testNamespace("be", abacus.BestEffort))
	all := writeEvents(t, f, "ev", "c", 11)
	mid := all[3].Time
	tests := []struct {
		name    string
		r       abacus.Range
		want    []abacus.Event
		reverse bool
	}{
		{"all", abacus.Range{}, all, false},
		{"from a time", abacus.Range{From: mid}, slices.DeleteFunc(slices.Clone(all), func(e abacus.Event) bool { return e.Time.Before(mid) }), false},
		{"to a time", abacus.Range{To: mid}, slices.DeleteFunc(slices.Clone(all), func(e abacus.Event) bool { return !e.Time.Before(mid) }), false},
		{"newest first", abacus.Range{Reverse: true}, all, true},
	}
	for _, tt := range tests {
		for _, size := range []int{1, 2, 3, 100} {
			t.Run(fmt.Sprintf("%s/%d", tt.name, size), func(t *testing.T) {
				var got []abacus.Event
				tok := ""
				for pages := 0; ; pages++ {
					if pages > 100 {
						t.Fatal("paging does not end")
					}
					p, err := f.svc.ListEvents(ctx, abacus.EventQuery{Ref: abacus.Ref{Namespace: "ev", Counter: "c"}, Range: tt.r, PageSize: size, PageToken: tok})
					if err != nil {
						t.Fatal(err)
					}
					if len(p.Events) > size {
						t.Fatalf("page of %d events, size %d", len(p.Events), size)
					}
					got = append(got, p.Events...)
					if tok = p.NextPageToken; tok == "" {
						break
					}
				}
				want := slices.Clone(tt.want)
				if tt.reverse {
					slices.Reverse(want)
				}
				if !sameEvents(got, want) {
					t.Fatalf("got %v\nwant %v", got, want)
				}
			})
		}
	}

	// Writes between pages: no event twice.
	p, err := f.svc.ListEvents(ctx, abacus.EventQuery{Ref: abacus.Ref{Namespace: "ev", Counter: "c"}, PageSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range p.Events {
		seen[e.ID]++
	}
	for i, at := range []time.Time{p.Events[1].Time, p.Events[3].Time, f.clk.t.Add(time.Second)} {
		if _, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: "ev", Counter: "c", Delta: 1, Token: abacus.Token{ID: fmt.Sprint("late", i), Time: at}}); err != nil {
			t.Fatal(err)
		}
	}
	for tok := p.NextPageToken; tok != ""; {
		p, err := f.svc.ListEvents(ctx, abacus.EventQuery{Ref: abacus.Ref{Namespace: "ev", Counter: "c"}, PageSize: 4, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			seen[e.ID]++
		}
		tok = p.NextPageToken
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("event %s listed %d times", id, n)
		}
	}

	errs := []struct {
		name string
		q    abacus.EventQuery
		code abacus.Code
	}{
		{"best effort keeps no events", abacus.EventQuery{Ref: abacus.Ref{Namespace: "be", Counter: "c"}}, abacus.FailedPrecondition},
		{"bad token", abacus.EventQuery{Ref: abacus.Ref{Namespace: "ev", Counter: "c"}, PageToken: "!!"}, abacus.InvalidArgument},
		{"page too large", abacus.EventQuery{Ref: abacus.Ref{Namespace: "ev", Counter: "c"}, PageSize: abacus.MaxPageSize + 1}, abacus.InvalidArgument},
		{"unknown namespace", abacus.EventQuery{Ref: abacus.Ref{Namespace: "nope", Counter: "c"}}, abacus.NotFound},
	}
	for _, e := range errs {
		if _, err := f.svc.ListEvents(ctx, e.q); abacus.ErrorCode(err) != e.code {
			t.Errorf("%s: %v, want %v", e.name, err, e.code)
		}
	}
}

// TestExportResumes: an export of a whole namespace is every counter's
// events by counter name, and one resumed after any event is the rest.
func TestExportResumes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, t.TempDir(), testNamespace("ev", abacus.Eventual))
	var all []abacus.Event
	for _, c := range []string{"a", "b", "c"} {
		all = append(all, writeEvents(t, f, "ev", c, 5)...)
	}
	export := func(after *abacus.Event) []abacus.Event {
		var got []abacus.Event
		err := f.svc.ExportEvents(ctx, abacus.ExportQuery{Namespace: "ev", ResumeAfter: after}, func(_ time.Time, es []abacus.Event) error {
			got = append(got, es...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := export(nil); !sameEvents(got, all) || got[0].Counter != "a" || got[len(got)-1].Counter != "c" {
		t.Fatalf("export: %v\nwant %v", got, all)
	}
	for i := range all {
		after := all[i]
		if got := export(&after); !sameEvents(got, all[i+1:]) {
			t.Fatalf("resumed after %d: %v\nwant %v", i, got, all[i+1:])
		}
	}
}

// TestRecountFindsAndRepairs: a checkpoint made wrong in the store is
// found by a recount, left alone without repair, and fixed with it; reads
// then give the right count.
func TestRecountFindsAndRepairs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, t.TempDir(), testNamespace("ev", abacus.Eventual))
	ref := abacus.Ref{Namespace: "ev", Counter: "c"}
	// A clear at e004 (2ms) wipes e005 (2ms too: deltas go before clears
	// at one time), so the count is 7+8+9.
	writeEvents(t, f, "ev", "c", 9)
	f.clk.t = f.clk.t.Add(time.Minute)
	ns := mustNamespace(t, f, "ev")
	if _, err := f.rollup(ctx, ns, "c"); err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.Recount(ctx, ref, false)
	if err != nil || !res.Match || res.Recounted != 24 || res.EventsScanned != 9 {
		t.Fatalf("recount of a good checkpoint: %+v, %v", res, err)
	}
	st, err := f.store.RollupState(ctx, ns, "c")
	if err != nil {
		t.Fatal(err)
	}
	bad := abacus.Checkpoint{Count: abacus.SumOf(25), Through: st.Through}
	if _, ok, err := f.store.RepairCheckpoint(ctx, ns, "c", st.Checkpoint, bad); err != nil || !ok {
		t.Fatalf("corrupting the checkpoint: %v %v", ok, err)
	}
	if res, err := f.svc.Recount(ctx, ref, false); err != nil || res.Match || res.Repaired || res.Recounted != 24 {
		t.Fatalf("recount of a bad checkpoint: %+v, %v", res, err)
	}
	if res, err := f.svc.Recount(ctx, ref, true); err != nil || res.Match || !res.Repaired {
		t.Fatalf("repair: %+v, %v", res, err)
	}
	if res, err := f.svc.Recount(ctx, ref, false); err != nil || !res.Match {
		t.Fatalf("after repair: %+v, %v", res, err)
	}
	if _, err := f.rollup(ctx, ns, "c"); err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.Get(ctx, ref); err != nil || n != 24 {
		t.Fatalf("count after repair: %d, %v", n, err)
	}
}

// TestRepairRacingWrites: repairs while writes and rollups go on still end
// with the exact count, and never move a checkpoint back.
func TestRepairRacingWrites(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, t.TempDir(), testNamespace("ev", abacus.Accurate))
	ns := mustNamespace(t, f, "ev")
	ref := abacus.Ref{Namespace: "ev", Counter: "c"}
	const writes = 200
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range writes {
			if _, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: "ev", Counter: "c", Delta: 1, Token: abacus.Token{ID: fmt.Sprint(i), Time: f.clk.now()}}); err != nil {
				t.Error(err)
				return
			}
			if i%20 == 0 {
				f.clk.advance(3 * time.Second) // past the accept limit: rollups move
			}
		}
	})
	last := time.Time{}
	for range 50 {
		if _, err := f.rollup(ctx, ns, "c"); err != nil {
			t.Fatal(err)
		}
		st, err := f.store.RollupState(ctx, ns, "c")
		if err != nil {
			t.Fatal(err)
		}
		if st.Through.Before(last) {
			t.Fatalf("checkpoint moved back from %v to %v", last, st.Through)
		}
		last = st.Through
		// Corrupt, then repair, while writes go on.
		if !st.Through.IsZero() {
			_, _, _ = f.store.RepairCheckpoint(ctx, ns, "c", st.Checkpoint, abacus.Checkpoint{Count: st.Count.Add(7), Through: st.Through})
		}
		if _, err := f.svc.Recount(ctx, ref, true); err != nil && abacus.ErrorCode(err) != abacus.Unavailable {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if _, err := f.svc.Recount(ctx, ref, true); err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.Get(ctx, ref); err != nil || n != writes {
		t.Fatalf("count %d, %v; want %d", n, err, writes)
	}
}

// advanceHook is the embedded store with a call made before its next
// checkpoint advance: what happens between a rollup's read of a checkpoint
// and its advance.
type advanceHook struct {
	*embedded.Store
	before func()
}

func (h *advanceHook) hook() {
	if f := h.before; f != nil {
		h.before = nil
		f()
	}
}

func (h *advanceHook) AdvanceCheckpoint(ctx context.Context, ns *abacus.Namespace, counter string, from, to abacus.Checkpoint) (abacus.Checkpoint, error) {
	h.hook()
	return h.Store.AdvanceCheckpoint(ctx, ns, counter, from, to)
}

func (h *advanceHook) AdvanceCheckpoints(ctx context.Context, ns *abacus.Namespace, counters []string, froms, tos []abacus.Checkpoint) ([]abacus.Checkpoint, error) {
	h.hook()
	return h.Store.AdvanceCheckpoints(ctx, ns, counters, froms, tos)
}

// TestRepairBetweenRollupReadAndAdvance: a rollup reads a wrong checkpoint,
// a recount repairs it, and the rollup then advances from what it read. The
// advance must fail rather than carry the old error forward past the
// repair: the rollup reports the counter not caught up, and the rollup the
// pipeline then runs again ends with the exact count. One counter, and a
// batch where the other counter advances.
func TestRepairBetweenRollupReadAndAdvance(t *testing.T) {
	for _, typ := range []abacus.CounterType{abacus.Accurate, abacus.Eventual} {
		for _, batched := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/batched=%v", typ, batched), func(t *testing.T) {
				ctx := context.Background()
				f := newFixture(t, t.TempDir(), testNamespace("ns", typ))
				ns := mustNamespace(t, f, "ns")
				counters := []string{"c"}
				if batched {
					counters = append(counters, "d")
				}
				add := func(n int) {
					t.Helper()
					for range n {
						for _, c := range counters {
							if _, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: "ns", Counter: c, Delta: 1}); err != nil {
								t.Fatal(err)
							}
						}
						f.clk.t = f.clk.t.Add(time.Millisecond)
					}
					f.clk.t = f.clk.t.Add(time.Minute)
				}
				add(5)
				for _, c := range counters {
					if caughtUp, err := f.rollup(ctx, ns, c); err != nil || !caughtUp {
						t.Fatalf("first rollup of %s: caught up %v, %v", c, caughtUp, err)
					}
				}
				st, err := f.store.RollupState(ctx, ns, "c")
				if err != nil {
					t.Fatal(err)
				}
				if _, ok, err := f.store.RepairCheckpoint(ctx, ns, "c", st.Checkpoint, abacus.Checkpoint{Count: st.Count.Add(100), Through: st.Through}); err != nil || !ok {
					t.Fatalf("corrupting the checkpoint: %v, %v", ok, err)
				}
				add(3)

				ref := abacus.Ref{Namespace: "ns", Counter: "c"}
				hooked := &advanceHook{Store: f.store, before: func() {
					if res, err := f.svc.Recount(ctx, ref, true); err != nil || !res.Repaired {
						t.Errorf("recount between the rollup's read and its advance: %+v, %v", res, err)
					}
				}}
				router := *f.backends
				router.Rollups = map[string]abacus.RollupStore{abacus.StorageEmbedded: hooked}
				roll := &rollup.Roller{Stores: &router, Now: f.clk.now}
				var outs []rollup.Outcome
				if batched {
					var errs []error
					outs, errs = roll.RollupBatch(ctx, ns, counters, 2)
					for i, err := range errs {
						if err != nil {
							t.Fatalf("rollup of %s: %v", counters[i], err)
						}
					}
				} else {
					out, err := roll.RollupCounter(ctx, ns, "c")
					if err != nil {
						t.Fatal(err)
					}
					outs = []rollup.Outcome{out}
				}
				if hooked.before != nil {
					t.Fatal("the rollup advanced no checkpoint")
				}
				if outs[0].CaughtUp {
					t.Errorf("the rollup whose advance a repair made fail reports c caught up")
				}
				if batched && !outs[1].CaughtUp {
					t.Errorf("the rollup of d, which no repair raced, is not caught up: %+v", outs[1])
				}
				if got, err := f.store.RollupState(ctx, ns, "c"); err != nil || !got.Checkpoint.Equal(abacus.Checkpoint{Count: abacus.SumOf(5), Through: st.Through}) {
					t.Fatalf("checkpoint after the raced rollup = %+v, %v; want the repaired 5 at %v", got.Checkpoint, err, st.Through)
				}

				// Reads give the exact count already: the checkpoint the
				// rollup found stored, and the events after it.
				if n, err := f.svc.Get(ctx, ref); err != nil || n != 8 {
					t.Errorf("count of c after the raced rollup: %d, %v; want 8", n, err)
				}

				// The pipeline rolls c up again, from the repaired count.
				if caughtUp, err := f.rollup(ctx, ns, "c"); err != nil || !caughtUp {
					t.Fatalf("rollup after the repair: caught up %v, %v", caughtUp, err)
				}
				for _, c := range counters {
					ref := abacus.Ref{Namespace: "ns", Counter: c}
					if n, err := f.svc.Get(ctx, ref); err != nil || n != 8 {
						t.Errorf("count of %s: %d, %v; want 8", c, n, err)
					}
					if res, err := f.svc.Recount(ctx, ref, false); err != nil || !res.Match || res.Recounted != 8 {
						t.Errorf("recount of %s: %+v, %v; want a match of 8", c, res, err)
					}
				}
			})
		}
	}
}

// TestRetentionKeepsRecountable: after retention deletes a counter's old
// events, the count stays, the events are gone from ListEvents, which says
// from when events are kept, and a recount still matches.
func TestRetentionKeepsRecountable(t *testing.T) {
	ctx := context.Background()
	ns := testNamespace("ev", abacus.Eventual)
	ns.Retention = abacus.Retention{CloseAfter: 5 * time.Second, DeleteAfter: 10 * time.Second}
	f := newFixture(t, t.TempDir(), ns)
	ref := abacus.Ref{Namespace: "ev", Counter: "c"}
	for i := range 20 {
		if _, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: "ev", Counter: "c", Delta: int64(i + 1), Token: abacus.Token{ID: fmt.Sprint(i), Time: f.clk.t}}); err != nil {
			t.Fatal(err)
		}
		f.clk.t = f.clk.t.Add(time.Second)
	}
	f.clk.t = f.clk.t.Add(5 * time.Second)
	if n, err := f.svc.Retain(ctx); err != nil || n == 0 {
		t.Fatalf("retention deleted %d slices, %v", n, err)
	}
	p, err := f.svc.ListEvents(ctx, abacus.EventQuery{Ref: ref, PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if p.RetainedFrom.IsZero() || len(p.Events) == 0 || len(p.Events) >= 20 {
		t.Fatalf("after retention: %d events, retained from %v", len(p.Events), p.RetainedFrom)
	}
	for _, e := range p.Events {
		if e.Time.Before(p.RetainedFrom) {
			t.Errorf("event at %v listed, before retained_from %v", e.Time, p.RetainedFrom)
		}
	}
	res, err := f.svc.Recount(ctx, ref, false)
	if err != nil || !res.Match || res.RetainedFrom.IsZero() {
		t.Fatalf("recount after retention: %+v, %v", res, err)
	}
	f.clk.t = f.clk.t.Add(time.Minute)
	if _, err := f.rollup(ctx, mustNamespace(t, f, "ev"), "c"); err != nil {
		t.Fatal(err)
	}
	if res, err := f.svc.Recount(ctx, ref, false); err != nil || !res.Match || res.Recounted != 210 {
		t.Fatalf("recount after the last rollup: %+v, %v", res, err)
	}
	if n, err := f.svc.Get(ctx, ref); err != nil || n != 210 {
		t.Fatalf("count %d, %v; want 210", n, err)
	}
}

// TestPageTokenNeverWidensRange: a page token from another query, reused
// with a later start_time, brings back no event before it.
func TestPageTokenNeverWidensRange(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, t.TempDir(), testNamespace("ev", abacus.Eventual))
	all := writeEvents(t, f, "ev", "c", 10)
	from, to := all[6].Time, all[2].Time.Add(time.Nanosecond)
	ref := abacus.Ref{Namespace: "ev", Counter: "c"}
	first, err := f.svc.ListEvents(ctx, abacus.EventQuery{Ref: ref, PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.ListEvents(ctx, abacus.EventQuery{Ref: ref, Range: abacus.Range{From: from}, PageSize: 100, PageToken: first.NextPageToken})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Events {
		if e.Time.Before(from) {
			t.Errorf("event %s at %v is before start_time %v", e.ID, e.Time, from)
		}
	}
	last, err := f.svc.ListEvents(ctx, abacus.EventQuery{Ref: ref, Range: abacus.Range{Reverse: true}, PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, err = f.svc.ListEvents(ctx, abacus.EventQuery{Ref: ref, Range: abacus.Range{To: to, Reverse: true}, PageSize: 100, PageToken: last.NextPageToken})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Events {
		if !e.Time.Before(to) {
			t.Errorf("newest first: event %s at %v is not before end_time %v", e.ID, e.Time, to)
		}
	}
}

// TestRecountAfterUnrecordedRetention: events that retention deleted
// before retained bases were recorded (a store written by an older abacusd)
// leave their count only in the checkpoint. A recount then takes their
// count from the checkpoint, records it as the base, and never repairs a
// right count down; later events are still checked.
func TestRecountAfterUnrecordedRetention(t *testing.T) {
	ctx := context.Background()
	ns := testNamespace("ev", abacus.Eventual)
	ns.Retention = abacus.Retention{CloseAfter: 5 * time.Second, DeleteAfter: 10 * time.Second}
	f := newFixture(t, t.TempDir(), ns)
	// The namespace was created (by the store's clock) long before the
	// retention boundary of this test's clock.
	f.clk.t = time.Now().Add(365 * 24 * time.Hour)
	ref := abacus.Ref{Namespace: "ev", Counter: "c"}
	add := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: "ev", Counter: "c", Delta: int64(i + 1), Token: abacus.Token{ID: fmt.Sprint(i), Time: f.clk.t}}); err != nil {
				t.Fatal(err)
			}
			f.clk.t = f.clk.t.Add(time.Second)
		}
	}
	add(0, 20)
	f.clk.t = f.clk.t.Add(time.Minute)
	nsv := mustNamespace(t, f, "ev")
	if _, err := f.rollup(ctx, nsv, "c"); err != nil {
		t.Fatal(err)
	}
	// What retention did before bases: delete, and record nothing.
	if n, err := f.store.DeleteSlices(ctx, nsv, f.clk.t.Add(-ns.Retention.DeleteAfter-30*time.Second)); err != nil || n == 0 {
		t.Fatalf("deleting slices the old way: %d, %v", n, err)
	}
	res, err := f.svc.Recount(ctx, ref, true)
	if err != nil || !res.Match || res.Repaired || res.Recounted != 210 || res.RetainedFrom.IsZero() {
		t.Fatalf("recount --repair with unrecorded deletions: %+v, %v", res, err)
	}
	if n, err := f.svc.Get(ctx, ref); err != nil || n != 210 {
		t.Fatalf("count %d, %v; want 210", n, err)
	}
	// Later events are checked on top of the base.
	add(20, 22)
	f.clk.t = f.clk.t.Add(time.Minute)
	if _, err := f.rollup(ctx, nsv, "c"); err != nil {
		t.Fatal(err)
	}
	st, err := f.store.RollupState(ctx, nsv, "c")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := f.store.RepairCheckpoint(ctx, nsv, "c", st.Checkpoint, abacus.Checkpoint{Count: st.Count.Add(5), Through: st.Through}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if res, err := f.svc.Recount(ctx, ref, true); err != nil || res.Match || !res.Repaired || res.Recounted != 210+21+22 {
		t.Fatalf("recount of a corrupted checkpoint on top of the base: %+v, %v", res, err)
	}
}

// TestRetentionRacingRepair: a repair that lands between retention's
// rollup read and its checkpoint write makes that write fail; retention
// then rolls up again instead of deleting events no checkpoint covers.
func TestRetentionRacingRepair(t *testing.T) {
	ctx := context.Background()
	nsc := testNamespace("ev", abacus.Accurate)
	nsc.Retention = abacus.Retention{CloseAfter: 5 * time.Second, DeleteAfter: 10 * time.Second}
	f := newFixture(t, t.TempDir(), nsc)
	ref := abacus.Ref{Namespace: "ev", Counter: "c"}
	n := 0
	add := func(k int) {
		for range k {
			n++
			if _, err := f.svc.Add(ctx, abacus.AddRequest{Namespace: "ev", Counter: "c", Delta: 1, Token: abacus.Token{ID: fmt.Sprint(n), Time: f.clk.t}}); err != nil {
				t.Fatal(err)
			}
			f.clk.t = f.clk.t.Add(time.Second)
		}
	}
	add(10)
	f.clk.t = f.clk.t.Add(time.Minute)
	ns := mustNamespace(t, f, "ev")
	if _, err := f.rollup(ctx, ns, "c"); err != nil {
		t.Fatal(err)
	}
	add(10) // after the checkpoint, not rolled up yet
	st, err := f.store.RollupState(ctx, ns, "c")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := f.store.RepairCheckpoint(ctx, ns, "c", st.Checkpoint, abacus.Checkpoint{Count: st.Count.Add(100), Through: st.Through}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	f.clk.t = f.clk.t.Add(30 * time.Second)
	once := false
	f.backends.Rollups[abacus.StorageEmbedded] = &advanceHook{Store: f.store, before: func() {
		if !once {
			once = true
			if _, err := f.svc.Recount(ctx, ref, true); err != nil {
				t.Errorf("recount --repair during retention's rollup: %v", err)
			}
		}
	}}
	if _, err := f.svc.Retain(ctx); err != nil {
		t.Fatal(err)
	}
	f.clk.t = f.clk.t.Add(time.Minute)
	if _, err := f.rollup(ctx, ns, "c"); err != nil {
		t.Fatal(err)
	}
	if got, err := f.svc.Get(ctx, ref); err != nil || got != 20 {
		t.Fatalf("count %d, %v; want 20", got, err)
	}
}
