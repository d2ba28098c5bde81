package embedded

import (
	"bytes"
	"context"
	"strings"

	"github.com/abacus-dev/abacus"
	"github.com/cockroachdb/pebble/v2"
)

// The RollupStore methods that audits and retention use: listing counters,
// repairing a checkpoint, and the retained bases.

// ListCounters implements abacus.RollupStore. The counters a store has a
// record of are those with a 'c' or a 'w' key; both key spaces are in counter
// order, so one iterator over each, bounded to the namespace and the prefix
// and positioned past after with a seek, are walked in step (a merge join):
// a page costs two seeks and at most limit steps of each.
func (s *Store) ListCounters(ctx context.Context, ns *abacus.Namespace, prefix, after string, limit int) (out []abacus.CounterState, err error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	if ns == nil {
		return nil, abacus.Errorf(abacus.InvalidArgument, "namespace is required")
	}
	if limit <= 0 {
		return nil, abacus.Errorf(abacus.InvalidArgument, "limit %d is not positive", limit)
	}
	if after >= prefix && !strings.HasPrefix(after, prefix) {
		// after sorts past every name with the prefix: an iterator's
		// lower bound would be past its upper one.
		return nil, nil
	}
	// A counter whose only events are in memory has its 'w' key written
	// when they are written out: do that first (an audit call).
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	c, err := s.counterIter(prefixCheckpoint, ns.ID, prefix, after)
	if err != nil {
		return nil, err
	}
	defer closeIter(c, &err)
	w, err := s.counterIter(prefixLastWrite, ns.ID, prefix, after)
	if err != nil {
		return nil, err
	}
	defer closeIter(w, &err)

	const spaceLen = 9 // prefix byte and namespace ID
	out = make([]abacus.CounterState, 0, min(limit, 1024))
	cValid, wValid := c.First(), w.First()
	for (cValid || wValid) && len(out) < limit {
		if err := ctx.Err(); err != nil {
			return nil, ctxError(err)
		}
		var cName, wName []byte
		if cValid {
			cName = c.Key()[spaceLen:]
		}
		if wValid {
			wName = w.Key()[spaceLen:]
		}
		takeC := cValid && (!wValid || bytes.Compare(cName, wName) <= 0)
		takeW := wValid && (!cValid || bytes.Compare(wName, cName) <= 0)
		var st abacus.CounterState
		if takeC {
			st.Counter = string(cName)
			v, err := c.ValueAndErr()
			if err != nil {
				return nil, unavailable(err, "rollup store")
			}
			cp, ok := decodeCheckpoint(v)
			if !ok {
				return nil, corrupt("checkpoint", c.Key())
			}
			st.Checkpoint = cp
			cValid = c.Next()
		}
		if takeW {
			st.Counter = string(wName)
			v, err := w.ValueAndErr()
			if err != nil {
				return nil, unavailable(err, "rollup store")
			}
			n, ok := decodeTime(v)
			if !ok {
				return nil, corrupt("last write time", w.Key())
			}
			st.LastWrite = nanosTime(n)
			wValid = w.Next()
		}
		out = append(out, st)
	}
	if err := firstErr(c.Error(), w.Error()); err != nil {
		return nil, unavailable(err, "rollup store")
	}
	return out, nil
}

// counterIter opens an iterator over the keys of a per-counter key space of
// namespace nsID whose counters start with prefix and sort after after.
func (s *Store) counterIter(space byte, nsID uint64, prefix, after string) (*pebble.Iterator, error) {
	lower := counterKey(space, nsID, prefix)
	upper := prefixEnd(lower) // never nil: space is not 0xff
	if after >= prefix {
		// The least key after after's: after's followed by a zero byte.
		lower = append(counterKey(space, nsID, after), 0)
	}
	return s.iter(lower, upper)
}

// RepairCheckpoint implements abacus.RollupStore. It holds the checkpoint
// key's stripe, as AdvanceCheckpoint and AdvanceCheckpoints do, from the read
// of the stored checkpoint through the commit of the fixed one, so a
// concurrent advance either committed before (and the comparison fails) or
// reads the fixed checkpoint after. The time does not change, so neither do
// the in-memory fences nor the high-water mark of checkpoint times.
//
// Unlike an advance, the write is fsynced: a repair lost in a crash would
// bring the wrong count back, and no rollup would correct it.
func (s *Store) RepairCheckpoint(ctx context.Context, ns *abacus.Namespace, counter string, old, fixed abacus.Checkpoint) (abacus.Checkpoint, bool, error) {
	if err := s.begin(ctx); err != nil {
		return abacus.Checkpoint{}, false, err
	}
	defer s.end()
	if err := checkNamespaceCounter(ns, counter); err != nil {
		return abacus.Checkpoint{}, false, err
	}
	through, err := abacus.EventNanos(fixed.Through, "checkpoint time")
	if err != nil {
		return abacus.Checkpoint{}, false, err
	}
	key := counterKey(prefixCheckpoint, ns.ID, counter)
	unlock := s.cpLocks.lockOne(key)
	defer unlock()
	stored, err := s.checkpoint(key)
	if err != nil {
		return abacus.Checkpoint{}, false, err
	}
	if !stored.Equal(old) || !fixed.Through.Equal(old.Through) {
		return stored, false, nil
	}
	b := s.db.NewBatch()
	_ = b.Set(key, encodeCheckpoint(fixed, through), nil)
	if err := s.commit(b, pebble.Sync, "rollup store: repair checkpoint"); err != nil {
		return stored, false, err
	}
	return abacus.Checkpoint{Count: fixed.Count, Through: nanosTime(through)}, true, nil
}

// RetainedBase implements abacus.RollupStore.
func (s *Store) RetainedBase(ctx context.Context, ns *abacus.Namespace, counter string) (abacus.Checkpoint, error) {
	if err := s.begin(ctx); err != nil {
		return abacus.Checkpoint{}, err
	}
	defer s.end()
	if err := checkNamespaceCounter(ns, counter); err != nil {
		return abacus.Checkpoint{}, err
	}
	return s.retainedBase(counterKey(prefixRetained, ns.ID, counter))
}

func (s *Store) retainedBase(key []byte) (abacus.Checkpoint, error) {
	v, found, err := s.get(key, "rollup store")
	if err != nil || !found {
		return abacus.Checkpoint{}, err
	}
	base, ok := decodeCheckpoint(v)
	if !ok {
		return abacus.Checkpoint{}, corrupt("retained base", key)
	}
	return base, nil
}

// SetRetainedBase implements abacus.RollupStore: a conditional write under
// the key's stripe, as AdvanceCheckpoint's. A zero base is never newer, and
// writes nothing, as a zero checkpoint does. Like a checkpoint it is not
// fsynced by itself: DeleteSlices syncs the WAL, and so every retained base
// written before it, before it deletes events. (That covers a namespace whose
// events are in this store, as retention requires of checkpoints too.)
func (s *Store) SetRetainedBase(ctx context.Context, ns *abacus.Namespace, counter string, base abacus.Checkpoint) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	if err := checkNamespaceCounter(ns, counter); err != nil {
		return err
	}
	if base.Through.IsZero() {
		return nil
	}
	through, err := abacus.EventNanos(base.Through, "retained base time")
	if err != nil {
		return err
	}
	key := counterKey(prefixRetained, ns.ID, counter)
	unlock := s.cpLocks.lockOne(key)
	defer unlock()
	stored, err := s.retainedBase(key)
	if err != nil || !base.Newer(stored) {
		return err
	}
	b := s.db.NewBatch()
	_ = b.Set(key, encodeCheckpoint(base, through), nil)
	return s.commit(b, pebble.NoSync, "rollup store: retained base")
}
