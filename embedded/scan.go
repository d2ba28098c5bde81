package embedded

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/cockroachdb/pebble/v2"
)

// Scan implements abacus.EventStore.
//
// It visits the slices that hold events in the range, and within a slice the
// counter's time buckets one at a time: a time bucket's events, spread over
// BucketsPerID event buckets each sorted by (time, id), are read, sorted into
// Event.Before order (which also puts deltas before clears at equal times, an
// order the keys cannot give because the clear flag is in the value) and
// emitted. Memory is bounded by the largest time bucket, not by the range.
//
// Scan sees the events committed when each slice is opened; it may include an
// append that is committed but whose fsync is still in flight, as Pebble
// publishes a batch before its WAL sync.
func (s *Store) Scan(ctx context.Context, ns *abacus.Namespace, counter string, r abacus.Range, fn func(abacus.Event) error) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	l, err := abacus.LayoutOf(ns)
	if err != nil {
		return err
	}
	if err := checkCounter(counter); err != nil {
		return err
	}
	lo, hi, ok := abacus.NanoBounds(r.From, r.To)
	if !ok {
		return nil
	}
	ts, dropped := s.memView()
	mem, memOnly, err := memEvents(ts, dropped, l.NSID, counter, lo, hi, r.Reverse)
	if err != nil {
		return err
	}
	if memOnly {
		for _, e := range mem {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
	fn, finish := mergeMem(mem, r.Reverse, fn)
	sc := &scanner{s: s, ctx: ctx, l: l, counter: counter, lo: lo, hi: hi, reverse: r.Reverse, fn: fn}
	if err := s.eachSlice(l.NSID, l.Slice(lo), l.Slice(hi), r.Reverse, sc.slice); err != nil {
		return err
	}
	return finish()
}

// ScanMany implements abacus.MultiScanner: the requests are taken slice by
// slice, and within a slice in counter order, with one iterator per slice
// whose bounds move from counter to counter.
func (s *Store) ScanMany(ctx context.Context, ns *abacus.Namespace, reqs []abacus.ScanRequest, fn func(i int, e abacus.Event) error) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	l, err := abacus.LayoutOf(ns)
	if err != nil {
		return err
	}
	type job struct {
		x  int64
		sc *scanner
	}
	var jobs []job
	var finishes []func() error
	ts, dropped := s.memView()
	for i, r := range reqs {
		if r.Range.Reverse {
			return abacus.Errorf(abacus.InvalidArgument, "ScanMany scans forwards only")
		}
		if err := checkCounter(r.Counter); err != nil {
			return err
		}
		lo, hi, ok := abacus.NanoBounds(r.Range.From, r.Range.To)
		if !ok {
			continue
		}
		mem, memOnly, err := memEvents(ts, dropped, l.NSID, r.Counter, lo, hi, false)
		if err != nil {
			return err
		}
		each, finish := mergeMem(mem, false, func(e abacus.Event) error { return fn(i, e) })
		if len(mem) > 0 {
			finishes = append(finishes, finish)
		}
		if memOnly {
			continue
		}
		sc := &scanner{s: s, ctx: ctx, l: l, counter: r.Counter, lo: lo, hi: hi, fn: each}
		for _, x := range s.slices.between(l.NSID, l.Slice(lo), l.Slice(hi)) {
			jobs = append(jobs, job{x, sc})
		}
	}
	// Slice by slice (so each counter's slices in time order), counters
	// ascending within one; the sort is stable for a counter asked twice.
	slices.SortStableFunc(jobs, func(a, b job) int {
		if a.x != b.x {
			return cmp.Compare(a.x, b.x)
		}
		return strings.Compare(a.sc.counter, b.sc.counter)
	})
	for start := 0; start < len(jobs); {
		end := start + 1
		for end < len(jobs) && jobs[end].x == jobs[start].x {
			end++
		}
		if err := s.scanSlice(l.NSID, jobs[start].x, func(it *pebble.Iterator) error {
			for _, j := range jobs[start:end] {
				if err := j.sc.sliceWith(it, j.x); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		start = end
	}
	for _, finish := range finishes {
		if err := finish(); err != nil {
			return err
		}
	}
	return nil
}

// scanSlice calls f with an iterator over slice x of namespace nsID.
func (s *Store) scanSlice(nsID uint64, x int64, f func(it *pebble.Iterator) error) (err error) {
	it, err := s.iter(sliceKey(nsID, x), sliceKey(nsID, x+1))
	if err != nil {
		return err
	}
	defer closeIter(it, &err)
	return f(it)
}

// scanner is the state of one Scan.
type scanner struct {
	s       *Store
	ctx     context.Context
	l       abacus.Layout
	counter string
	lo, hi  int64 // inclusive bounds, Unix nanoseconds
	reverse bool
	fn      func(abacus.Event) error
	buf     []abacus.Event
	// Per time bucket, the events arrive as one run per event bucket, each
	// run in (time, id) order: runs are merged instead of sorted (a sort was
	// a third of a rollup's time).
	nanos    []int64 // event times of buf, for cheap comparisons
	runs     []int   // start index in buf of each run
	hasClear bool
	tmp      []abacus.Event
	tmpNanos []int64
	seek     []byte // readBucket's seek keys
}

// bounds returns the key range of the counter's time buckets in slice x
// that hold the scan's range, and the counter's key prefix in x.
func (sc *scanner) bounds(x int64) (lower, upper, p []byte) {
	l := sc.l
	start := x * l.SliceWidth
	first := l.TimeBucket(max(sc.lo, start))
	last := l.TimeBucket(min(sc.hi, start+l.SliceWidth-1))
	p = counterPrefix(l.NSID, x, sc.counter)
	return appendInt64(bytes.Clone(p), first), appendInt64(bytes.Clone(p), last+1), p
}

// slice scans the counter's events in one slice.
func (sc *scanner) slice(x int64) (err error) {
	lower, upper, p := sc.bounds(x)
	it, err := sc.s.iter(lower, upper)
	if err != nil {
		return err
	}
	defer closeIter(it, &err)
	return sc.scanIter(it, p)
}

// sliceWith scans the counter's events in slice x with it, an iterator over
// the slice that ScanMany moves from counter to counter: new bounds on an
// open iterator cost much less than a new iterator.
func (sc *scanner) sliceWith(it *pebble.Iterator, x int64) error {
	lower, upper, p := sc.bounds(x)
	it.SetBounds(lower, upper)
	return sc.scanIter(it, p)
}

// scanIter reads the counter's events, with key prefix p, from it, whose
// bounds hold them.
func (sc *scanner) scanIter(it *pebble.Iterator, p []byte) error {
	bucketPrefixLen := len(p) + tbLen
	var valid bool
	if sc.reverse {
		valid = it.Last()
	} else {
		valid = it.First()
	}
	for valid {
		if err := sc.ctx.Err(); err != nil {
			return ctxError(err)
		}
		if len(it.Key()) < len(p)+eventTail {
			return corrupt("event key", it.Key())
		}
		tb := bytes.Clone(it.Key()[:bucketPrefixLen])
		if sc.reverse {
			// Positioned on the bucket's last key; read it forwards.
			it.SeekGE(tb)
		}
		var err error
		valid, err = sc.readBucket(it, tb, len(p))
		if err != nil {
			return err
		}
		if err := sc.emit(); err != nil {
			return err
		}
		if sc.reverse {
			valid = it.SeekLT(tb)
		}
	}
	if err := it.Error(); err != nil {
		return unavailable(err, "event store")
	}
	return nil
}

// readBucket reads the events of the time bucket with key prefix tb into
// sc.buf, leaving it positioned after them, and reports whether it is valid.
//
// Within an event bucket the keys are in time order, so the events of the
// range are one stretch of each: before it the scan seeks to the range's
// start, and after it to the next event bucket. A rollup reads from its
// checkpoint, usually late in a time bucket that may hold many minutes of a
// hot counter's events: reading through them all made every rollup cost
// more as the bucket filled.
func (sc *scanner) readBucket(it *pebble.Iterator, tb []byte, prefixLen int) (bool, error) {
	sc.buf, sc.nanos, sc.runs, sc.hasClear = sc.buf[:0], sc.nanos[:0], sc.runs[:0], false
	runLen := prefixLen + tbLen + ebLen // key prefix of one event bucket's run
	valid := it.Valid()
	for valid && bytes.HasPrefix(it.Key(), tb) {
		key := it.Key()
		_, nanos, id, ok := parseEventSuffix(key[prefixLen:])
		if !ok {
			return false, corrupt("event key", key)
		}
		// A block's key carries the time of its last event: one that ends
		// before the range is sought past like an event, one that does not
		// is read whole and filtered.
		if binary.BigEndian.Uint16(key[runLen-ebLen:]) == blockMark && nanos >= sc.lo {
			if err := sc.readBlock(it); err != nil {
				return false, err
			}
			valid = it.Next()
			continue
		}
		if nanos < sc.lo {
			sc.seek = appendInt64(append(sc.seek[:0], key[:runLen]...), sc.lo)
			valid = it.SeekGE(sc.seek)
			continue
		}
		if nanos > sc.hi {
			if eb := binary.BigEndian.Uint16(key[runLen-ebLen:]); eb < math.MaxUint16 {
				sc.seek = binary.BigEndian.AppendUint16(append(sc.seek[:0], key[:runLen-ebLen]...), eb+1)
				valid = it.SeekGE(sc.seek)
			} else {
				valid = it.Next()
			}
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return false, unavailable(err, "event store")
		}
		delta, clear, ok := decodeEventValue(v)
		if !ok {
			return false, corrupt("event", key)
		}
		if n := len(sc.buf); n == 0 || nanos < sc.nanos[n-1] || (nanos == sc.nanos[n-1] && id < sc.buf[n-1].ID) {
			sc.runs = append(sc.runs, n)
		}
		sc.hasClear = sc.hasClear || clear
		sc.buf = append(sc.buf, abacus.Event{Counter: sc.counter, Time: nanosTime(nanos), ID: id, Delta: delta, Clear: clear})
		sc.nanos = append(sc.nanos, nanos)
		valid = it.Next()
	}
	return valid, nil
}

// readBlock buffers the events of the block it is positioned on that are in
// the scan's range: a block is a run in (time, id) order.
func (sc *scanner) readBlock(it *pebble.Iterator) error {
	v, err := it.ValueAndErr()
	if err != nil {
		return unavailable(err, "event store")
	}
	first := true
	ok := eachBlockEvent(v, func(nanos int64, id []byte, delta int64, clear bool) {
		if nanos < sc.lo || nanos > sc.hi {
			return
		}
		n := len(sc.buf)
		if first || n == 0 || nanos < sc.nanos[n-1] || (nanos == sc.nanos[n-1] && string(id) < sc.buf[n-1].ID) {
			sc.runs = append(sc.runs, n)
		}
		first = false
		sc.hasClear = sc.hasClear || clear
		sc.buf = append(sc.buf, abacus.Event{Counter: sc.counter, Time: nanosTime(nanos), ID: string(id), Delta: delta, Clear: clear})
		sc.nanos = append(sc.nanos, nanos)
	})
	if !ok {
		return corrupt("event block", it.Key())
	}
	return nil
}

// dedupe drops repeats of an event from the ordered buffer: a crash between
// a write-out's ingestion and the deletion of its records writes the
// records' events out again, in another block.
func (sc *scanner) dedupe() {
	if len(sc.runs) <= 1 {
		return
	}
	// Not by sc.nanos: order's sort leaves it behind.
	sc.buf = slices.CompactFunc(sc.buf, func(a, b abacus.Event) bool { return a.ID == b.ID && a.Time.Equal(b.Time) })
}

// order puts the buffered events into Event.Before order. Without clears that
// is (time, id) order, and the runs are merged; with clears (rare), or with
// many runs, it sorts.
func (sc *scanner) order() {
	switch {
	case len(sc.runs) <= 1 && !sc.hasClear:
		return
	case sc.hasClear || len(sc.runs) > 8:
		slices.SortFunc(sc.buf, abacus.CompareEvents)
		return
	}
	heads := make([]int, len(sc.runs))
	copy(heads, sc.runs)
	end := func(r int) int {
		if r+1 < len(sc.runs) {
			return sc.runs[r+1]
		}
		return len(sc.buf)
	}
	sc.tmp, sc.tmpNanos = sc.tmp[:0], sc.tmpNanos[:0]
	for {
		best := -1
		for r, h := range heads {
			if h == end(r) {
				continue
			}
			if best < 0 {
				best = r
				continue
			}
			b := heads[best]
			if sc.nanos[h] < sc.nanos[b] || (sc.nanos[h] == sc.nanos[b] && sc.buf[h].ID < sc.buf[b].ID) {
				best = r
			}
		}
		if best < 0 {
			break
		}
		i := heads[best]
		sc.tmp = append(sc.tmp, sc.buf[i])
		sc.tmpNanos = append(sc.tmpNanos, sc.nanos[i])
		heads[best]++
	}
	sc.buf, sc.tmp = sc.tmp, sc.buf
	sc.nanos, sc.tmpNanos = sc.tmpNanos, sc.nanos
}

// emit puts the buffered events into Event.Before order and passes them to fn.
func (sc *scanner) emit() error {
	if len(sc.buf) == 0 {
		return nil
	}
	sc.order()
	sc.dedupe()
	if sc.reverse {
		slices.Reverse(sc.buf)
	}
	for _, e := range sc.buf {
		if err := sc.fn(e); err != nil {
			return err
		}
	}
	return nil
}

// FoldMany implements abacus.ManyFolder from the in-memory tables' grains
// (see memGrain). A request is folded there when every event of its range
// is in memory, its bounds fall on grains (or beyond every event in memory)
// and no clear is among its events; the others are left for a scan. An
// event appended during the call may be counted in a range whose bound is
// beyond every event: it was concurrent with the call.
//
// Every event of a range is in memory when the range starts after the
// events that left it (see memFoldView), or when the counter has no last
// write time in Pebble: a table's last write times are committed before it
// leaves memory (writeOut, then retain), so a counter without one has all
// its events in tables still held, in full or as summaries, which fold the
// same. That is what a rollup of a new counter asks, from its first event:
// it is answered without a seek among the events.
func (s *Store) FoldMany(ctx context.Context, ns *abacus.Namespace, reqs []abacus.FoldRequest) ([]abacus.FoldResult, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	out := make([]abacus.FoldResult, len(reqs))
	ts, dropped := s.memFoldView()
	latest := int64(minNanos)
	for _, t := range ts {
		t.mu.Lock()
		latest = max(latest, t.maxNanos)
		t.mu.Unlock()
	}
	// bound returns a range bound in nanoseconds (exclusive), and whether
	// grains fold exactly up to it.
	bound := func(b time.Time) (int64, bool) {
		if b.IsZero() || !b.Before(abacus.MaxEventTime) {
			return abacus.MaxEventNanos + 1, true
		}
		n := b.UnixNano()
		return n, n%foldGrain == 0 || n > latest
	}
	// los[i] is where request i's fold starts (minNanos: from the counter's
	// first event), if use[i].
	los := make([]int64, len(reqs))
	use := make([]bool, len(reqs))
	var early []int // requests starting before the events that left memory
	for i, r := range reqs {
		if err := checkCounter(r.Counter); err != nil {
			return nil, err
		}
		lo := int64(minNanos)
		if !r.From.IsZero() && !r.From.Before(abacus.MinEventTime) {
			if !r.From.Before(abacus.MaxEventTime) {
				continue
			}
			lo = r.From.UnixNano()
		}
		mid, midOK := bound(r.Mid)
		end, endOK := bound(r.To)
		if (lo != minNanos && lo%foldGrain != 0) || !midOK || !endOK || mid < lo || end < mid {
			continue
		}
		los[i], use[i] = lo, true
		if lo <= dropped {
			early = append(early, i)
		}
	}
	if len(early) > 0 {
		// The snapshot above was taken first: a table that leaves memory
		// after it is still in ts, and one that left before has its last
		// write times in Pebble by now.
		counters := make([]string, len(early))
		for k, i := range early {
			counters[k] = reqs[i].Counter
		}
		if err := s.seekEach(prefixLastWrite, ns.ID, counters, sortedOrder(counters), func(k int, _, _ []byte) error {
			use[early[k]] = false // events in Pebble, maybe outside memory: scan
			return nil
		}); err != nil {
			return nil, err
		}
	}
	var buf [96]byte
	for i, r := range reqs {
		if !use[i] {
			continue
		}
		lo := los[i]
		mid, _ := bound(r.Mid)
		end, _ := bound(r.To)
		id := counterID(buf[:0], ns.ID, r.Counter)
		var acc memFold
		ok := true
		for _, t := range ts {
			if ok = t.fold(id, lo, mid, end-1, &acc); !ok {
				break
			}
		}
		if ok {
			out[i] = abacus.FoldResult{Before: abacus.Partial{Sum: acc.before}, After: abacus.Partial{Sum: acc.after},
				NBefore: acc.nBefore, OK: true}
		}
	}
	return out, nil
}
