package embedded

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"slices"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/cockroachdb/pebble/v2"
)

// pendingEvent is one validated event of an Append.
type pendingEvent struct {
	ev    abacus.Event
	key   []byte
	hash  uint64 // of key, for recentKeys
	fence uint64 // the counter's fence id
	nanos int64
	nsID  uint64
	slice int64
}

// Append implements abacus.EventStore.
//
// The idempotency check reads each event's key and the commit writes it while
// the key's stripe is locked, so two concurrent appends of one key with
// different payloads cannot both pass the check. The lock is held through the
// synced commit because Pebble makes a batch visible to readers before its WAL
// fsync: releasing earlier would let a retry see, and acknowledge, a write
// that is not yet durable.
func (s *Store) Append(ctx context.Context, writes []abacus.Write) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	if err := s.waitRoom(ctx); err != nil {
		return err
	}
	evs, err := prepareEvents(writes)
	if err != nil || len(evs) == 0 {
		return err
	}
	hashes := make([]uint64, len(evs))
	for i := range evs {
		hashes[i] = evs[i].hash
	}
	unlock := s.eventLocks.lockHashes(hashes)
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()

	fresh := make([]*pendingEvent, 0, len(evs))
	absent := s.recent.absentAll(evs)
	for i := range evs {
		e := &evs[i]
		if absent[i] {
			fresh = append(fresh, e)
			continue
		}
		delta, clear, found, err := s.storedEvent(e)
		if err != nil {
			return err
		}
		if !found {
			fresh = append(fresh, e)
			continue
		}
		if !e.ev.SamePayload(abacus.Event{Delta: delta, Clear: clear}) {
			return abacus.TokenReused(e.ev)
		}
	}
	if len(fresh) == 0 {
		// Every event is stored already; an earlier append may still be
		// waiting for its fsync, so make it durable before acknowledging.
		return s.syncWAL("event store")
	}
	ids := make([]uint64, len(fresh))
	for i, e := range fresh {
		e.fence = s.fences.idOf(e.nsID, e.ev.Counter)
		ids[i] = e.fence
	}
	held := s.fences.rlock(ids)
	fenced := true
	defer func() {
		if fenced {
			s.fences.runlock(held)
		}
	}()
	if err := s.checkFences(fresh); err != nil {
		return err
	}

	s.recent.addAll(fresh, time.Now())

	// Listed before the batch is applied: a scan that can see an event must
	// also visit its slice.
	lastNS, lastSlice := uint64(0), int64(0)
	for i, e := range fresh {
		x := e.slice
		if i == 0 || e.nsID != lastNS || x != lastSlice {
			s.slices.add(e.nsID, x)
			lastNS, lastSlice = e.nsID, x
		}
	}

	// The last write time of each counter is kept with its events in the
	// in-memory table and stored when they are written out (see
	// memTable.lastWrites): not one merge operand per counter per Append.
	latest := int64(minNanos)
	for _, e := range fresh {
		latest = max(latest, e.nanos)
	}
	// The new events go to the WAL as one batch record and into the
	// in-memory table, not as one Pebble key each (see memlog.go).
	rec, mes := appendRecord(fresh)
	b := s.db.NewBatch()
	mark := s.eventMark.add(b, latest)
	s.memMu.RLock()
	t := s.active
	seq := s.logSeq.Add(1)
	_ = b.Set(logKey(seq), rec, nil)
	// Once applied, the events are visible: a fence that waits for this
	// append's stripes now sees them, and a retry finding them syncs the WAL
	// before acknowledging. So the locks go before the fsync, and concurrent
	// appends share it (group commit) without waiting for each other's locks.
	wait, err := s.applyThenSync(b, "event store")
	if err == nil {
		t.add(mes, seq, len(rec))
	}
	s.memMu.RUnlock()
	s.fences.runlock(held)
	unlock()
	fenced, locked = false, false
	if err != nil {
		return err
	}
	s.eventMark.applied(mark)
	s.noteSize(t)
	return wait()
}

// storedEvent looks for a stored event with e's key: in memory, then (read
// in this order, see memTables) as a key of its own (layout v1) or in a block
// of its counter's time bucket.
func (s *Store) storedEvent(e *pendingEvent) (delta int64, clear, found bool, err error) {
	v, found := s.memFind(e.key)
	if !found {
		v, found, err = s.get(e.key, "event store")
		if err != nil {
			return 0, false, false, err
		}
	}
	if found {
		delta, clear, ok := decodeEventValue(v)
		if !ok {
			return 0, false, false, corrupt("event", e.key)
		}
		return delta, clear, true, nil
	}
	// The blocks of the time bucket that end at or after e.
	plen := len(e.key) - len(e.ev.ID) - eventTail
	tb := e.key[:plen+tbLen]
	lower := appendInt64(binary.BigEndian.AppendUint16(bytes.Clone(tb), blockMark), e.nanos)
	upper := prefixEnd(binary.BigEndian.AppendUint16(bytes.Clone(tb), blockMark))
	it, err := s.iter(lower, upper)
	if err != nil {
		return 0, false, false, err
	}
	defer closeIter(it, &err)
	for valid := it.First(); valid && !found; valid = it.Next() {
		v, verr := it.ValueAndErr()
		if verr != nil {
			return 0, false, false, unavailable(verr, "event store")
		}
		if !eachBlockEvent(v, func(nanos int64, id []byte, d int64, c bool) {
			if nanos == e.nanos && string(id) == e.ev.ID {
				delta, clear, found = d, c, true
			}
		}) {
			return 0, false, false, corrupt("event block", it.Key())
		}
	}
	return delta, clear, found, nil
}

// prepareEvents validates writes, encodes their keys and folds duplicates
// within the batch: the same key with the same payload once, with another
// payload AlreadyExists.
func prepareEvents(writes []abacus.Write) ([]pendingEvent, error) {
	evs := make([]pendingEvent, 0, len(writes))
	// Every key in one buffer, and duplicates found by hash: no allocation
	// per event.
	size := 0
	for _, w := range writes {
		size += sliceKeyLen + len(w.Event.Counter) + 1 + eventTail + len(w.Event.ID)
	}
	buf := make([]byte, 0, size)
	seen := make(map[uint64]int, len(writes))
	for _, w := range writes {
		l, err := abacus.LayoutOf(w.NS)
		if err != nil {
			return nil, err
		}
		e := w.Event
		if err := checkCounter(e.Counter); err != nil {
			return nil, err
		}
		nanos, err := abacus.EventNanos(e.Time, "event time")
		if err != nil {
			return nil, err
		}
		if e.Clear && e.Delta != 0 {
			return nil, abacus.Errorf(abacus.InvalidArgument, "a clear carries no delta (got %d)", e.Delta)
		}
		start := len(buf)
		buf = appendEventKey(buf, l, e, nanos)
		key := buf[start:len(buf):len(buf)]
		h := keyHash(key)
		i, ok := seen[h]
		if ok && !bytes.Equal(evs[i].key, key) {
			// Two keys with one hash: look for this one the slow way.
			ok = false
			for j := range evs {
				if bytes.Equal(evs[j].key, key) {
					i, ok = j, true
					break
				}
			}
		}
		if ok {
			if !evs[i].ev.SamePayload(e) {
				return nil, abacus.TokenReused(e)
			}
			continue
		}
		if _, taken := seen[h]; !taken {
			seen[h] = len(evs)
		}
		evs = append(evs, pendingEvent{ev: e, key: key, hash: h, nanos: nanos, nsID: l.NSID, slice: l.Slice(nanos)})
	}
	return evs, nil
}

// Counters implements abacus.EventStore. It merges the sorted counter names of
// every slice in the range, so it emits each counter once, in name order,
// holding one name per slice rather than a set of every name.
func (s *Store) Counters(ctx context.Context, ns *abacus.Namespace, from, to time.Time, fn func(counter string) error) (err error) {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	l, err := abacus.LayoutOf(ns)
	if err != nil {
		return err
	}
	lo, hi, ok := abacus.NanoBounds(from, to)
	if !ok {
		return nil
	}
	// The counters with events in memory are merged into the names the
	// slices give, each name once.
	var mem []string
	for _, t := range s.memTables() {
		mem = t.counterNames(l, l.Slice(lo), l.Slice(hi), mem)
	}
	slices.Sort(mem)
	mem = slices.Compact(mem)
	emit := fn
	fn = func(c string) error {
		for len(mem) > 0 && mem[0] <= c {
			m := mem[0]
			mem = mem[1:]
			if m == c {
				continue
			}
			if err := emit(m); err != nil {
				return err
			}
		}
		return emit(c)
	}
	defer func() {
		for err == nil && len(mem) > 0 {
			err = emit(mem[0])
			mem = mem[1:]
		}
	}()
	var sl []int64
	if err := s.eachSlice(l.NSID, l.Slice(lo), l.Slice(hi), false, func(x int64) error {
		sl = append(sl, x)
		return nil
	}); err != nil {
		return err
	}
	if len(sl) == 0 {
		return nil
	}
	it, err := s.iter(sliceKey(l.NSID, sl[0]), sliceKey(l.NSID, sl[len(sl)-1]+1))
	if err != nil {
		return err
	}
	defer closeIter(it, &err)

	// next positions it on the first counter of slice x after `after`
	// ("" for the first counter of the slice).
	next := func(x int64, after string) (string, bool, error) {
		seek := sliceKey(l.NSID, x)
		if after != "" {
			// Every key of counter `after` starts with after|0x00, and every
			// greater counter's keys sort at or after after|0x01.
			seek = append(append(seek, after...), counterEnd+1)
		}
		if !it.SeekGE(seek) {
			if err := it.Error(); err != nil {
				return "", false, unavailable(err, "event store")
			}
			return "", false, nil
		}
		if got, ok := parseSlice(it.Key()); !ok || got != x {
			return "", false, nil
		}
		c, ok := parseCounter(it.Key())
		if !ok {
			return "", false, corrupt("event key", it.Key())
		}
		return c, true, nil
	}

	h := make(cursorHeap, 0, len(sl))
	for _, x := range sl {
		c, ok, err := next(x, "")
		if err != nil {
			return err
		}
		if ok {
			h = append(h, cursor{counter: c, slice: x})
		}
	}
	heap.Init(&h)
	last, emitted := "", false
	for len(h) > 0 {
		if err := ctx.Err(); err != nil {
			return ctxError(err)
		}
		top := h[0]
		if !emitted || top.counter != last {
			if err := fn(top.counter); err != nil {
				return err
			}
			last, emitted = top.counter, true
		}
		c, ok, err := next(top.slice, top.counter)
		if err != nil {
			return err
		}
		if ok {
			h[0].counter = c
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return nil
}

// eachSlice calls fn for every slice of the namespace in [first, last] that
// holds at least one event, in ascending order or descending if reverse. It
// seeks from slice to slice, so empty slices cost nothing.
func (s *Store) eachSlice(nsID uint64, first, last int64, reverse bool, fn func(slice int64) error) error {
	if first > last {
		return nil
	}
	xs := s.slices.between(nsID, first, last)
	if reverse {
		slices.Reverse(xs)
	}
	for _, x := range xs {
		if err := fn(x); err != nil {
			return err
		}
	}
	return nil
}

// DeleteSlices implements abacus.EventStore. Slice x covers
// [x·SliceWidth, (x+1)·SliceWidth), so the slices that end at or before t are
// those below floor(t / SliceWidth), one key range.
func (s *Store) DeleteSlices(ctx context.Context, ns *abacus.Namespace, t time.Time) (int, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.end()
	l, err := abacus.LayoutOf(ns)
	if err != nil {
		return 0, err
	}
	if t.IsZero() || !t.After(abacus.MinEventTime) {
		return 0, nil
	}
	n := abacus.MaxEventNanos
	if t.Before(abacus.MaxEventTime) {
		n = t.UnixNano()
	}
	end := l.Slice(n) // exclusive
	count := 0
	if err := s.eachSlice(l.NSID, l.Slice(-abacus.MaxEventNanos), end-1, false, func(int64) error {
		count++
		return nil
	}); err != nil {
		return 0, err
	}
	if count == 0 {
		return 0, nil
	}
	if err := s.flushForDeletion(ctx); err != nil {
		return 0, err
	}
	// Checkpoints are written without fsync; they are the only record of the
	// counts of the events about to go. An empty synced WAL record makes every
	// earlier write durable first.
	b := s.db.NewBatch()
	_ = b.LogData(nil, nil)
	if err := s.commit(b, pebble.Sync, "event store: sync checkpoints"); err != nil {
		return 0, err
	}
	b = s.db.NewBatch()
	_ = b.DeleteRange(spaceKey(prefixEvent, l.NSID), sliceKey(l.NSID, end), nil)
	if err := s.commit(b, pebble.Sync, "event store: delete slices"); err != nil {
		return 0, err
	}
	s.slices.deleteBelow(l.NSID, end)
	return count, nil
}

// DropNamespace implements abacus.EventStore with one range deletion per key
// space, committed atomically.
func (s *Store) DropNamespace(ctx context.Context, ns *abacus.Namespace) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	if ns == nil {
		return abacus.Errorf(abacus.InvalidArgument, "namespace is required")
	}
	if err := s.flushForDeletion(ctx); err != nil {
		return err
	}
	b := s.db.NewBatch()
	deleteNamespaceData(b, ns.ID)
	if err := s.commit(b, pebble.Sync, "event store: drop namespace"); err != nil {
		return err
	}
	s.slices.drop(ns.ID)
	return nil
}

// cursor is a slice's position in Counters' merge.
type cursor struct {
	counter string
	slice   int64
}

// cursorHeap is a min-heap of cursors by counter name (container/heap).
type cursorHeap []cursor

func (h cursorHeap) Len() int           { return len(h) }
func (h cursorHeap) Less(i, j int) bool { return h[i].counter < h[j].counter }
func (h cursorHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)        { *h = append(*h, x.(cursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
