package rollup

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abacus-dev/abacus"
)

// Roller rolls counters up over their stores [ROLL-1]: it is how the
// pipeline's work is done. Its Rollup is the pipeline's Func, its Batch the
// pipeline's BatchFunc (see New and Options.Batch). A Roller holds no state
// of its own: every rollup reads the counter's checkpoint from the rollup
// store, folds the events after it and writes the new checkpoint only if
// the stored one is still the one it read (a compare-and-swap, see
// abacus.RollupStore.AdvanceCheckpoint), so rollups are safe to run more
// than once and concurrently, on one node or many, and with recounts that
// repair a checkpoint meanwhile.
type Roller struct {
	// Stores gives each namespace's stores. Required.
	Stores abacus.Backends
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (r *Roller) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// Rollup is a Func: it rolls up k.Counter of k.NS (see RollupCounter).
func (r *Roller) Rollup(ctx context.Context, k Key) (Outcome, error) {
	return r.RollupCounter(ctx, k.NS, k.Counter)
}

// RollupCounter aggregates one counter's immutable window into its
// checkpoint: it reads the checkpoint, folds the events in [checkpoint,
// now − accept_limit − skew margin) (a clear resets the count), writes the
// new checkpoint if the stored one is still the one it read (so concurrent
// rollups converge, and a repair that lands meanwhile is not undone) and
// caches it. Outcome.CaughtUp is false while the counter has
// events the checkpoint does not cover yet, and Outcome.NotBefore then says
// when a further rollup can finish it (when the window will have passed its
// last write, or for an EVENTUAL counter not quiet yet, when it will be, for
// its provisional count).
//
// For an EVENTUAL namespace it also caches the provisional count: the new
// checkpoint plus the events after it that the window does not cover yet
// (late events may still join them), once the counter has been quiet for
// half a coalesce window. EVENTUAL reads answer from the cache, so a count
// is usually exact as soon as a rollup ran after the last write, instead of
// only once the accept window has passed it; every write signals a rollup,
// so a late event refreshes the provisional count too. The checkpoint
// itself, which ACCURATE reads and retention rely on, only ever covers the
// immutable window.
func (r *Roller) RollupCounter(ctx context.Context, ns *abacus.Namespace, counter string) (Outcome, error) {
	st, err := r.Stores.RollupStore(ns).RollupState(ctx, ns, counter)
	if err != nil {
		return Outcome{}, err
	}
	return r.rollupFrom(ctx, ns, counter, st)
}

// Batch is a BatchFunc. A batch is of one namespace (queues are per
// namespace), but a configuration update may leave its keys with different
// versions of it: each version's counters are rolled up with their own.
func (r *Roller) Batch(ctx context.Context, keys []Key, parallelism int) ([]Outcome, []error) {
	outs, errs := make([]Outcome, len(keys)), make([]error, len(keys))
	for start := 0; start < len(keys); {
		end := start + 1
		for end < len(keys) && keys[end].NS == keys[start].NS {
			end++
		}
		counters := make([]string, end-start)
		for i, k := range keys[start:end] {
			counters[i] = k.Counter
		}
		os, es := r.RollupBatch(ctx, keys[start].NS, counters, parallelism)
		copy(outs[start:], os)
		copy(errs[start:], es)
		start = end
	}
	return outs, errs
}

// RollupBatch is RollupCounter for many counters of ns, on at most
// parallelism goroutines. When the rollup store reads and writes many
// checkpoints at once (abacus.BatchRollupStore), the batch's states are read
// together first and its new checkpoints written together, which spares
// each rollup its point reads and its own write; when the event store scans
// many counters at once (abacus.MultiScanner), their windows are read
// together too. It returns an outcome and an error per counter, in order.
func (r *Roller) RollupBatch(ctx context.Context, ns *abacus.Namespace, counters []string, parallelism int) ([]Outcome, []error) {
	out := make([]Outcome, len(counters))
	errs := make([]error, len(counters))
	bs, batched := r.Stores.RollupStore(ns).(abacus.BatchRollupStore)
	if !batched || len(counters) < 2 {
		r.parallel(len(counters), parallelism, func(i int) {
			out[i], errs[i] = r.RollupCounter(ctx, ns, counters[i])
		}, setErr(errs))
		return out, errs
	}
	states, err := bs.RollupStates(ctx, ns, counters)
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return out, errs
	}
	var plans []rollupPlan
	if ms, ok := r.Stores.EventStore(ns).(abacus.MultiScanner); ok {
		plans, errs = r.planMany(ctx, ns, counters, states, ms, parallelism)
	} else {
		plans = make([]rollupPlan, len(counters))
		r.parallel(len(counters), parallelism, func(i int) {
			plans[i], errs[i] = r.plan(ctx, ns, counters[i], states[i])
		}, setErr(errs))
	}
	var idx []int
	var names []string
	var froms, tos []abacus.Checkpoint
	for i, pl := range plans {
		if errs[i] == nil && pl.advance {
			idx, names = append(idx, i), append(names, counters[i])
			froms, tos = append(froms, pl.st.Checkpoint), append(tos, pl.want)
		}
	}
	if len(idx) > 0 {
		stored, err := bs.AdvanceCheckpoints(ctx, ns, names, froms, tos)
		if err != nil {
			for _, i := range idx {
				errs[i] = err
			}
		} else {
			for k, i := range idx {
				plans[i].advanced(stored[k])
			}
		}
	}
	r.parallel(len(counters), parallelism, func(i int) {
		if errs[i] == nil {
			out[i], errs[i] = r.finish(ctx, ns, counters[i], plans[i])
		}
	}, setErr(errs))
	return out, errs
}

// setErr returns a parallel failure handler that records err as errs[i].
func setErr(errs []error) func(i int, err error) {
	return func(i int, err error) { errs[i] = err }
}

// parallel calls f(i) for every i in [0, n) on at most parallelism
// goroutines. A panic in f(i) is recovered on its goroutine (where the
// pipeline's own recover cannot reach) and passed to failed(i, err): one bad
// counter must fail its rollup, not the node.
func (r *Roller) parallel(n, parallelism int, f func(i int), failed func(i int, err error)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	call := func(i int) {
		defer func() {
			if v := recover(); v != nil {
				failed(i, fmt.Errorf("rollup: panic: %v\n%s", v, debug.Stack()))
			}
		}()
		f(i)
	}
	for range max(1, min(parallelism, n)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				call(i)
			}
		})
	}
	wg.Wait()
}

// rollupPlan is a rollup between its reads and its checkpoint write.
type rollupPlan struct {
	st          abacus.RollupState
	now, end    time.Time
	tailTo      time.Time
	advance     bool              // want is to be written
	want        abacus.Checkpoint // the checkpoint at end
	stored      abacus.Checkpoint // the checkpoint after the write (st's before it)
	tail        abacus.Partial    // the events from end, if tailDone
	tailDone    bool
	provisional bool
}

// advanced records the checkpoint stored after the compare-and-swap from
// p.st's checkpoint to p.want. When it failed, another rollup advanced the
// checkpoint or a recount repaired it since p.st was read, and the
// returned one is what finish works from. The repaired one keeps p.st's
// time, which the last write is at or after (p was to advance), so finish
// reports the counter not caught up and the pipeline rolls it up again,
// from the repaired count; the count it caches meanwhile is the repaired
// one (and, for a provisional count, the tail folded again from its time).
func (p *rollupPlan) advanced(stored abacus.Checkpoint) {
	p.stored = stored
	if p.tailDone && !stored.Through.Equal(p.end) {
		// The checkpoint is elsewhere: the tail read from end does not
		// start where the stored count ends.
		p.tailDone = false
	}
}

// rollupFrom is RollupCounter from a state already read.
func (r *Roller) rollupFrom(ctx context.Context, ns *abacus.Namespace, counter string, st abacus.RollupState) (Outcome, error) {
	pl, err := r.plan(ctx, ns, counter, st)
	if err != nil {
		return Outcome{}, err
	}
	if pl.advance {
		stored, err := r.Stores.RollupStore(ns).AdvanceCheckpoint(ctx, ns, counter, pl.st.Checkpoint, pl.want)
		if err != nil {
			return Outcome{}, err
		}
		pl.advanced(stored)
	}
	return r.finish(ctx, ns, counter, pl)
}

// plan fences the counter's window, folds it (and, for the provisional
// count of an EVENTUAL counter, the events after it, in the same scan) and
// says which checkpoint to write, if any.
func (r *Roller) plan(ctx context.Context, ns *abacus.Namespace, counter string, st abacus.RollupState) (rollupPlan, error) {
	pl, fold, err := r.prepareRollup(ctx, ns, counter, st)
	if err != nil || !fold {
		return pl, err
	}
	return pl, r.foldPlan(ctx, ns, counter, &pl)
}

// foldPlan folds a prepared plan's window (and provisional tail) and
// decides its checkpoint.
func (r *Roller) foldPlan(ctx context.Context, ns *abacus.Namespace, counter string, pl *rollupPlan) (err error) {
	var p abacus.Partial
	n := -1 // events in the window, if counted
	if pl.provisional {
		p, pl.tail, n, err = foldSplit(ctx, r.Stores.EventStore(ns), ns, counter, pl.st.Through, pl.end, pl.tailTo)
		pl.tailDone = true
	} else {
		p, err = Fold(ctx, r.Stores.EventStore(ns), ns, counter, pl.st.Through, pl.end)
	}
	if err != nil {
		return err
	}
	pl.decide(p, n == 0)
	return nil
}

// prepareRollup starts a plan: it reports whether the window has something to
// fold and, if so, fences it first.
func (r *Roller) prepareRollup(ctx context.Context, ns *abacus.Namespace, counter string, st abacus.RollupState) (pl rollupPlan, fold bool, err error) {
	pl.st, pl.stored = st, st.Checkpoint
	pl.now = r.now()
	pl.end = ns.RollupEnd(pl.now)
	// The provisional tail of an EVENTUAL count: every event after the
	// window (none is accepted later than the future limit).
	pl.tailTo = pl.now.Add(abacus.FutureLimit + time.Nanosecond)
	// The provisional count needs the events after the window read again at
	// every rollup; for a counter written without pause (rolled up every
	// coalesce window) that would read each event about (accept limit +
	// skew) / coalesce times. So it is computed only once the counter has
	// been quiet for half a coalesce window — which the rollup after its
	// last write usually finds; a counter that never pauses is exact once
	// the window passes its last write, as checkpoints alone are.
	// LastWrite may be late by up to abacus.LastWriteResolution; the rule is
	// a heuristic, so it takes the earliest the last write can have been.
	pl.provisional = ns.Type == abacus.Eventual && st.Behind() && !pl.now.Before(quietAt(ns, st.LastWrite))
	if !st.Behind() || !pl.end.After(st.Through) {
		return pl, false, nil
	}
	// The fence closes the window to writes that passed their accept-window
	// check long ago but have not committed yet; without it such a write
	// could land behind the new checkpoint and never be counted.
	if err := r.Stores.RollupStore(ns).Fence(ctx, ns, counter, pl.end); err != nil {
		return pl, false, err
	}
	return pl, true, nil
}

// decide sets the checkpoint to write from p, the fold of the window, and
// empty, whether the window is known to hold no event.
//
// An empty window, of a counter with writes after it, is not worth a
// checkpoint write (the first rollup of a new counter, whose events are all
// younger than the window): the checkpoint stays, and the tail from end is
// the tail from it. A window with events is always written, even one whose
// events sum to nothing: retention deletes the events a checkpoint covers,
// and those must then be covered. A counter whose writes are all in the
// window is always advanced, so that it is caught up.
func (pl *rollupPlan) decide(p abacus.Partial, empty bool) {
	if !empty || pl.st.LastWrite.Before(pl.end) {
		pl.advance = true
		pl.want = abacus.Checkpoint{Count: p.On(pl.st.Count), Through: pl.end}
	}
}

// planMany is plan for many counters: the windows (and provisional tails)
// that span at most two time buckets are read with ScanMany, in chunks on
// parallel goroutines; longer ones, which gain from plan's concurrent
// pieces, are planned one by one.
func (r *Roller) planMany(ctx context.Context, ns *abacus.Namespace, counters []string, states []abacus.RollupState, ms abacus.MultiScanner, parallelism int) ([]rollupPlan, []error) {
	plans := make([]rollupPlan, len(counters))
	errs := make([]error, len(counters))
	folds := make([]bool, len(counters))
	r.parallel(len(counters), parallelism, func(i int) {
		plans[i], folds[i], errs[i] = r.prepareRollup(ctx, ns, counters[i], states[i])
	}, setErr(errs))
	var short []int
	var long []int
	for i, pl := range plans {
		switch {
		case errs[i] != nil || !folds[i]:
		case oneScan(ns, pl.st.Through, pl.end):
			short = append(short, i)
		default:
			long = append(long, i)
		}
	}
	r.parallel(len(long), parallelism, func(k int) {
		i := long[k]
		errs[i] = r.foldPlan(ctx, ns, counters[i], &plans[i])
	}, func(k int, err error) { errs[long[k]] = err })
	before := make([]abacus.Partial, len(counters))
	after := make([]abacus.Partial, len(counters))
	inWindow := make([]int, len(counters))
	chunks := max(1, min(parallelism, (len(short)+15)/16))
	per := (len(short) + chunks - 1) / max(chunks, 1)
	chunk := func(c int) []int { return short[min(c*per, len(short)):min((c+1)*per, len(short))] }
	r.parallel(chunks, chunks, func(c int) {
		part := chunk(c)
		if mf, ok := ms.(abacus.ManyFolder); ok && len(part) > 0 {
			part = r.foldMany(ctx, ns, mf, counters, plans, part)
		}
		if len(part) == 0 {
			return
		}
		reqs := make([]abacus.ScanRequest, len(part))
		for k, i := range part {
			to := plans[i].end
			if plans[i].provisional {
				to = plans[i].tailTo
			}
			reqs[k] = abacus.ScanRequest{Counter: counters[i], Range: abacus.Range{From: plans[i].st.Through, To: to}}
		}
		err := ms.ScanMany(ctx, ns, reqs, func(k int, e abacus.Event) error {
			i := part[k]
			if e.Time.Before(plans[i].end) {
				before[i] = before[i].Apply(e)
				inWindow[i]++
			} else {
				after[i] = after[i].Apply(e)
			}
			return nil
		})
		for _, i := range part {
			if errs[i] = err; err == nil {
				plans[i].tail, plans[i].tailDone = after[i], plans[i].provisional
				plans[i].decide(before[i], inWindow[i] == 0)
			}
		}
	}, func(c int, err error) {
		for _, i := range chunk(c) {
			errs[i] = err
		}
	})
	return plans, errs
}

// foldMany decides the plans of part whose windows (and provisional tails)
// the store folds from the sums it keeps, and returns the others, to be
// scanned. A store error leaves them all to the scan, which reports it.
func (r *Roller) foldMany(ctx context.Context, ns *abacus.Namespace, mf abacus.ManyFolder, counters []string, plans []rollupPlan, part []int) []int {
	reqs := make([]abacus.FoldRequest, len(part))
	for k, i := range part {
		to := plans[i].end
		if plans[i].provisional {
			to = plans[i].tailTo
		}
		reqs[k] = abacus.FoldRequest{Counter: counters[i], From: plans[i].st.Through, Mid: plans[i].end, To: to}
	}
	res, err := mf.FoldMany(ctx, ns, reqs)
	if err != nil {
		return part
	}
	var rest []int
	for k, i := range part {
		if !res[k].OK {
			rest = append(rest, i)
			continue
		}
		plans[i].tail, plans[i].tailDone = res[k].After, plans[i].provisional
		plans[i].decide(res[k].Before, res[k].NBefore == 0)
	}
	return rest
}

// finish caches the count reads will return and reports the outcome.
func (r *Roller) finish(ctx context.Context, ns *abacus.Namespace, counter string, pl rollupPlan) (Outcome, error) {
	st, stored := pl.st, pl.stored
	caughtUp := !st.Behind() || st.LastWrite.Before(stored.Through)
	cached := stored
	if ns.Type == abacus.Eventual && (caughtUp || pl.provisional) {
		// The cached value of an EVENTUAL counter is its count as of now:
		// reads compare nothing else, and a later rollup always caches a
		// count at least as complete (events are only ever added). Without
		// a provisional count the checkpoint is cached as it is, with its
		// own time, so it never displaces a newer provisional count.
		cached.Through = pl.now
		if !caughtUp {
			tail := pl.tail
			if !pl.tailDone {
				var err error
				if tail, err = Fold(ctx, r.Stores.EventStore(ns), ns, counter, stored.Through, pl.tailTo); err != nil {
					return Outcome{}, err
				}
			}
			cached.Count = tail.On(stored.Count)
		}
	}
	// A failed cache write only costs a later store read.
	_ = r.Stores.RollupCache(ns).PutCheckpoint(ctx, abacus.CacheKey(ns, counter), cached, ns.TTL)
	if caughtUp {
		return Outcome{CaughtUp: true}, nil
	}
	notBefore := ns.RollupCovers(st.LastWrite)
	if ns.Type == abacus.Eventual && !pl.provisional {
		// Reads are served the checkpoint just cached, without the accept
		// window's events: come back once the counter is quiet, for its
		// provisional count, rather than once the window has passed (reads
		// do not bring a parked counter back). A counter still being
		// written comes back sooner anyway, with its next write's signal.
		if q := quietAt(ns, st.LastWrite); q.Before(notBefore) {
			notBefore = q
		}
	}
	return Outcome{NotBefore: notBefore}, nil
}

// quietAt is when a counter last written at lastWrite (as stored, rounded up
// by up to abacus.LastWriteResolution) counts as quiet for the provisional
// count: half a coalesce window after the earliest its last write can have
// been.
func quietAt(ns *abacus.Namespace, lastWrite time.Time) time.Time {
	return lastWrite.Add(-abacus.LastWriteResolution + ns.Queue.Coalesce/2 + time.Millisecond)
}
