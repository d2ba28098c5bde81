package embedded

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/abacus-dev/abacus"
	"github.com/cockroachdb/pebble/v2"
)

// maxTimeMerger keeps the greatest of the 8-byte time values merged into a
// 'w' key, so Append records a counter's last write time (rounded up, and
// only when it rises: see lastWrites) with a blind Merge in its batch: no
// read-modify-write, no lock, and the max is commutative, so the order in
// which concurrent appends commit does not matter.
//
// Pebble has one merger per database and stores its name on disk: the name is
// part of the format and must not change. Only 'w' keys and the meta keys
// maxEventTimeKey and maxThroughKey are ever merged.
var maxTimeMerger = &pebble.Merger{
	Name: "abacus.max_time.v1",
	Merge: func(key, value []byte) (pebble.ValueMerger, error) {
		if len(key) == 0 || (key[0] != prefixLastWrite && string(key) != string(maxEventTimeKey) && string(key) != string(maxThroughKey)) {
			return nil, fmt.Errorf("abacus.max_time.v1: merge on key %q outside the last-write key space", key)
		}
		m := &maxTimeValue{}
		return m, m.merge(value)
	},
}

// maxTimeValue is the ValueMerger of maxTimeMerger. Time values sort as bytes.
type maxTimeValue struct {
	max [8]byte
	set bool
}

func (m *maxTimeValue) merge(v []byte) error {
	if len(v) != 8 {
		return fmt.Errorf("abacus.max_time.v1: operand of %d bytes, want 8", len(v))
	}
	if !m.set || bytes.Compare(v, m.max[:]) > 0 {
		copy(m.max[:], v)
		m.set = true
	}
	return nil
}

// MergeNewer implements pebble.ValueMerger.
func (m *maxTimeValue) MergeNewer(v []byte) error { return m.merge(v) }

// MergeOlder implements pebble.ValueMerger.
func (m *maxTimeValue) MergeOlder(v []byte) error { return m.merge(v) }

// Finish implements pebble.ValueMerger.
func (m *maxTimeValue) Finish(includesBase bool) ([]byte, io.Closer, error) {
	return m.max[:], nil, nil
}

// RollupState implements abacus.RollupStore.
func (s *Store) RollupState(ctx context.Context, ns *abacus.Namespace, counter string) (abacus.RollupState, error) {
	var st abacus.RollupState
	if err := s.begin(ctx); err != nil {
		return st, err
	}
	defer s.end()
	if err := checkNamespaceCounter(ns, counter); err != nil {
		return st, err
	}
	cp, err := s.checkpoint(counterKey(prefixCheckpoint, ns.ID, counter))
	if err != nil {
		return st, err
	}
	st.Checkpoint = cp
	// Memory first: a table written out in between has stored its times.
	mem, inMem := memLastWrite(s.memTables(), ns.ID, counter)
	key := counterKey(prefixLastWrite, ns.ID, counter)
	v, found, err := s.get(key, "rollup store")
	if err != nil {
		return st, err
	}
	if found {
		n, ok := decodeTime(v)
		if !ok {
			return st, corrupt("last write time", key)
		}
		st.LastWrite = nanosTime(n)
	}
	if inMem && (!found || mem > st.LastWrite.UnixNano()) {
		st.LastWrite = nanosTime(mem)
	}
	return st, nil
}

// RollupStates implements abacus.BatchRollupStore: the counters, sorted,
// are looked up with one iterator per key space (checkpoints, last writes),
// each seek moving forward from the last, instead of two point reads each.
func (s *Store) RollupStates(ctx context.Context, ns *abacus.Namespace, counters []string) ([]abacus.RollupState, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	for _, c := range counters {
		if err := checkNamespaceCounter(ns, c); err != nil {
			return nil, err
		}
	}
	order := sortedOrder(counters)
	states := make([]abacus.RollupState, len(counters))
	// Memory first, as in RollupState.
	mem := make([]int64, len(counters))
	inMem := make([]bool, len(counters))
	ts := s.memTables()
	for i, c := range counters {
		mem[i], inMem[i] = memLastWrite(ts, ns.ID, c)
	}
	if err := s.seekEach(prefixCheckpoint, ns.ID, counters, order, func(i int, key, v []byte) error {
		cp, ok := decodeCheckpoint(v)
		if !ok {
			return corrupt("checkpoint", key)
		}
		states[i].Checkpoint = cp
		return nil
	}); err != nil {
		return nil, err
	}
	if err := s.seekEach(prefixLastWrite, ns.ID, counters, order, func(i int, key, v []byte) error {
		n, ok := decodeTime(v)
		if !ok {
			return corrupt("last write time", key)
		}
		states[i].LastWrite = nanosTime(n)
		return nil
	}); err != nil {
		return nil, err
	}
	for i := range states {
		if inMem[i] && (states[i].LastWrite.IsZero() || mem[i] > states[i].LastWrite.UnixNano()) {
			states[i].LastWrite = nanosTime(mem[i])
		}
	}
	return states, nil
}

// sortedOrder returns the indexes of counters in counter order, which is
// also the order of their keys in any per-counter key space.
func sortedOrder(counters []string) []int {
	order := make([]int, len(counters))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(counters[a], counters[b]) })
	return order
}

// seekEach calls fn(i, key, value) for each counters[i], visited in order,
// whose key exists in the key space of prefix and namespace nsID, with one
// iterator whose seeks only move forward.
func (s *Store) seekEach(prefix byte, nsID uint64, counters []string, order []int, fn func(i int, key, v []byte) error) (err error) {
	space := spaceKey(prefix, nsID)
	it, err := s.iter(space, prefixEnd(space))
	if err != nil {
		return err
	}
	defer closeIter(it, &err)
	var key []byte
	for _, i := range order {
		key = append(append(key[:0], space...), counters[i]...)
		if !it.SeekGE(key) || !bytes.Equal(it.Key(), key) {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return unavailable(err, "rollup store")
		}
		if err := fn(i, key, v); err != nil {
			return err
		}
	}
	return nil
}

// AdvanceCheckpoint implements abacus.RollupStore. The read, compare and write
// hold the checkpoint key's stripe, as RepairCheckpoint does, so of two
// concurrent advances from one checkpoint the second sees the first's and
// fails, and an advance from a checkpoint a repair replaced fails too.
//
// The write is not fsynced (pebble.NoSync): a checkpoint lost in a crash is
// recomputed from the events, which are still retained. DeleteSlices syncs
// the WAL, and so every checkpoint, before it deletes events.
func (s *Store) AdvanceCheckpoint(ctx context.Context, ns *abacus.Namespace, counter string, from, to abacus.Checkpoint) (abacus.Checkpoint, error) {
	if err := s.begin(ctx); err != nil {
		return abacus.Checkpoint{}, err
	}
	defer s.end()
	if err := checkNamespaceCounter(ns, counter); err != nil {
		return abacus.Checkpoint{}, err
	}
	var through int64
	if to.Newer(from) {
		n, err := abacus.EventNanos(to.Through, "checkpoint time")
		if err != nil {
			return abacus.Checkpoint{}, err
		}
		through = n
	}
	key := counterKey(prefixCheckpoint, ns.ID, counter)
	unlock := s.cpLocks.lockOne(key)
	defer unlock()
	stored, err := s.checkpoint(key)
	if err != nil || !to.Newer(from) || !stored.Equal(from) {
		return stored, err
	}
	// The checkpoint fences appends like a fence does; keeping it in memory
	// spares Append the read of the stored checkpoint. It is raised before the
	// write, so no append slips in between.
	s.fences.raise(s.fences.id(key), through)
	b := s.db.NewBatch()
	_ = b.Set(key, encodeCheckpoint(to, through), nil)
	if err := s.commitThrough(b, through); err != nil {
		return stored, err
	}
	return abacus.Checkpoint{Count: to.Count, Through: nanosTime(through)}, nil
}

// AdvanceCheckpoints implements abacus.BatchRollupStore: the stripes of
// every key are held while the stored checkpoints are read, in key order
// with one iterator, compared with froms and the advanced ones written in
// one batch.
func (s *Store) AdvanceCheckpoints(ctx context.Context, ns *abacus.Namespace, counters []string, froms, tos []abacus.Checkpoint) ([]abacus.Checkpoint, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	if len(froms) != len(counters) || len(tos) != len(counters) {
		return nil, abacus.Errorf(abacus.InvalidArgument, "%d and %d checkpoints for %d counters", len(froms), len(tos), len(counters))
	}
	keys := make([][]byte, len(counters))
	throughs := make([]int64, len(counters))
	for i, c := range counters {
		if err := checkNamespaceCounter(ns, c); err != nil {
			return nil, err
		}
		keys[i] = counterKey(prefixCheckpoint, ns.ID, c)
		if !tos[i].Newer(froms[i]) {
			continue // never written: only read, as AdvanceCheckpoint does
		}
		n, err := abacus.EventNanos(tos[i].Through, "checkpoint time")
		if err != nil {
			return nil, err
		}
		throughs[i] = n
	}
	order := sortedOrder(counters)
	unlock := s.cpLocks.lock(keys)
	defer unlock()

	stored := make([]abacus.Checkpoint, len(keys))
	if err := s.seekEach(prefixCheckpoint, ns.ID, counters, order, func(i int, key, v []byte) error {
		cp, ok := decodeCheckpoint(v)
		if !ok {
			return corrupt("checkpoint", key)
		}
		stored[i] = cp
		return nil
	}); err != nil {
		return nil, err
	}

	b := s.db.NewBatch()
	latest := int64(minNanos)
	for _, i := range order {
		if !tos[i].Newer(froms[i]) || !stored[i].Equal(froms[i]) {
			continue
		}
		// As in AdvanceCheckpoint: the fence is raised before the write.
		s.fences.raise(s.fences.id(keys[i]), throughs[i])
		_ = b.Set(keys[i], encodeCheckpoint(tos[i], throughs[i]), nil)
		latest = max(latest, throughs[i])
		stored[i] = abacus.Checkpoint{Count: tos[i].Count, Through: nanosTime(throughs[i])}
	}
	if b.Empty() {
		_ = b.Close()
		return stored, nil
	}
	if err := s.commitThrough(b, latest); err != nil {
		// Nothing was written: report what was stored before.
		return nil, err
	}
	return stored, nil
}

// commitThrough commits a batch of checkpoints whose times reach up to
// through, with the high-water mark of checkpoint times when it must rise.
// Not fsynced, as checkpoints are not (see AdvanceCheckpoint).
func (s *Store) commitThrough(b *pebble.Batch, through int64) error {
	mark := s.throughMark.add(b, through)
	if err := s.commit(b, pebble.NoSync, "rollup store"); err != nil {
		return err
	}
	s.throughMark.applied(mark)
	return nil
}

func (s *Store) checkpoint(key []byte) (abacus.Checkpoint, error) {
	v, found, err := s.get(key, "rollup store")
	if err != nil || !found {
		return abacus.Checkpoint{}, err
	}
	cp, ok := decodeCheckpoint(v)
	if !ok {
		return abacus.Checkpoint{}, corrupt("checkpoint", key)
	}
	return cp, nil
}

// BehindCounters implements abacus.RollupStore. The 'w' and 'c' key spaces are
// both ordered by namespace ID and counter, so one pass over each, in step,
// pairs every last write time with its checkpoint.
func (s *Store) BehindCounters(ctx context.Context, fn func(nsID uint64, counter string) error) (err error) {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	// The last write times of events in memory are stored when the events
	// are written out: do that first (this runs at start and every heal
	// pass, not per request).
	if err := s.flush(ctx); err != nil {
		return err
	}
	w, err := s.iter([]byte{prefixLastWrite}, []byte{prefixLastWrite + 1})
	if err != nil {
		return err
	}
	defer closeIter(w, &err)
	c, err := s.iter([]byte{prefixCheckpoint}, []byte{prefixCheckpoint + 1})
	if err != nil {
		return err
	}
	defer closeIter(c, &err)

	cValid := c.First()
	for wValid := w.First(); wValid; wValid = w.Next() {
		if err := ctx.Err(); err != nil {
			return ctxError(err)
		}
		suffix := w.Key()[1:]
		for cValid && bytes.Compare(c.Key()[1:], suffix) < 0 {
			cValid = c.Next()
		}
		v, err := w.ValueAndErr()
		if err != nil {
			return unavailable(err, "rollup store")
		}
		lastWrite, ok := decodeTime(v)
		if !ok {
			return corrupt("last write time", w.Key())
		}
		behind := true
		if cValid && bytes.Equal(c.Key()[1:], suffix) {
			cv, err := c.ValueAndErr()
			if err != nil {
				return unavailable(err, "rollup store")
			}
			cp, ok := decodeCheckpoint(cv)
			if !ok {
				return corrupt("checkpoint", c.Key())
			}
			behind = abacus.RollupState{Checkpoint: cp, LastWrite: nanosTime(lastWrite)}.Behind()
		}
		if !behind {
			continue
		}
		nsID, counter, ok := parseCounterKey(w.Key())
		if !ok {
			return corrupt("last write key", w.Key())
		}
		if err := fn(nsID, counter); err != nil {
			return err
		}
	}
	if err := firstErr(w.Error(), c.Error()); err != nil {
		return unavailable(err, "rollup store")
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func checkNamespaceCounter(ns *abacus.Namespace, counter string) error {
	if ns == nil {
		return abacus.Errorf(abacus.InvalidArgument, "namespace is required")
	}
	return checkCounter(counter)
}
