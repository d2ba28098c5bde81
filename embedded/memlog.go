package embedded

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The event log in memory ("memlog").
//
// An Append writes its new events to Pebble as one key, a batch record under
// prefixLog, in one synced WAL write, and indexes them per counter in an
// in-memory table. Inserting one key per event into Pebble's memtable
// skiplist was the largest cost of the write path (about 2 µs per event here,
// a quarter of the node's CPU under batch ingest, plus the flush that wrote
// them out again). A flusher later writes a table's events, sorted, into an
// sstable that Pebble ingests as it is (no memtable, no flush), and then
// deletes the records it covered. Until then, reads (Scan, ScanMany,
// Counters and the idempotency check) see the events in memory merged with
// Pebble's.
//
// Crash safety: a record is in the synced WAL before its Append returns. Open
// replays the records left (those not yet deleted) into memory and writes
// them out before it serves; an event both ingested and still in a record
// (a crash between ingestion and the records' deletion) is written twice with
// the same key and value, which changes nothing.
//
// Ordering: a record's sequence number is taken and its events inserted while
// the append holds memMu for reading, and a table is frozen under memMu held
// for writing, so every record of a frozen table has a lower sequence number
// than any record of a later one: deleting the records up to the table's
// highest sequence number deletes only records already ingested.

// prefixLog is the key space of batch records, keyed by sequence number.
const prefixLog byte = 'l'

// Limits of the in-memory tables.
const (
	// memFlushBytes: a table is frozen and written out when its records
	// reach this size. The records also sit in Pebble's memtable (64 MiB by
	// default) until they are deleted: written out well before it fills,
	// they are deleted there and never flushed to a table of Pebble's.
	// Larger tables make fewer, larger ingested sstables, so fewer L0
	// sublevels for reads to merge: at 8 MiB and 2 s, a million counters
	// written once each converged and were written 10-25% slower than
	// before the event log; at 24 MiB and 5 s, as fast. A table is also
	// written out when its estimated memory reaches twice this: a table
	// of counters written once each costs about three times its records.
	memFlushBytes = 24 << 20
	// memFlushEvery: a table is written out at least this often, so the
	// log replayed after a crash is short and idle stores hold little.
	memFlushEvery = 5 * time.Second
	// memMaxFrozen: appends wait while this many frozen tables have not
	// been written out (back-pressure on a flusher that falls behind).
	memMaxFrozen = 2
	// memRetainFor and memRetainBytes: a table written out stays in memory
	// as a summary (its counters and their grains, not its events) this
	// long, within this much estimated memory. A rollup folds its counter's
	// events since its checkpoint, which are seconds old: while they are all
	// in memory, it folds the grains and reads no event at all (see
	// memGrain and Store.FoldMany). Keeping whole tables instead, for event
	// reads, cost more CPU than it saved (walking events is no cheaper than
	// Pebble's blocks) and five times their size in heap at GOGC=400.
	memRetainFor   = 30 * time.Second
	memRetainBytes = 32 << 20
	// Estimated memory of a table beyond its records: a memEvent per
	// event, and per counter its map entry, memCounter and name.
	memEventOverhead   = 40
	memCounterOverhead = 80
)

func logKey(seq uint64) []byte { return appendUint64([]byte{prefixLog}, seq) }

// memEvent is one event held in memory: its key as Pebble would store it, a
// slice of its batch record whose capacity runs to the end of the value
// (in a record, a value follows its key after one length byte), its time,
// and the index of its counter's previous event in the table (-1 for none).
type memEvent struct {
	key   []byte
	nanos int64
	prev  int32
	ci    int32 // its counter's index in the table (in the padding: no cost)
}

// value returns the event's encoded value.
func (e memEvent) value() []byte { return e.key[len(e.key)+1 : cap(e.key)] }

// memTable is the in-memory index of the events of a run of batch records.
// Its events are in one slice and its counters in another, each counter
// linking to its latest event and each event to the one before: a new
// counter costs one allocation (its map key), an event none, which matters
// when a million counters are written once each.
type memTable struct {
	mu        sync.Mutex
	index     map[string]int32 // counterID → index in counters
	counters  []memCounter
	evs       []memEvent // in arrival order; nil in a summary (see isSummary)
	grains    []memGrain // per counter, linked as evs are
	events    int
	bytes     int // of its records
	mem       int // estimated memory, records included
	maxSeq    uint64
	maxNanos  int64 // the latest event time
	born      time.Time
	writtenAt time.Time // when it was written out, for retained tables
}

// memCounter is one counter of a memTable: its counterID, its latest event
// in arrival order, and the latest of its event times.
type memCounter struct {
	id       string
	last     int32
	latest   int64
	earliest int64 // the earliest of its event times: with latest, lets collect skip it
	grain    int32 // its latest grain in arrival order
}

// memGrain is the fold of one counter's events in one grain of time (the
// span of abacus.RollupGrain that starts at g × RollupGrain): what a rollup
// reads, since its windows start and end on grains (Namespace.RollupEnd).
// A rollup of a counter written without pause read and decoded every event
// of its window, a sixth of the node's CPU under batch ingest; a grain sums
// a tenth of a second of them, and outlives the events in a summary.
type memGrain struct {
	g     int64
	sum   abacus.Sum // of the deltas; meaningless once clear is set
	n     int32      // events
	prev  int32      // the counter's previous grain in the table, or -1
	clear bool       // a clear is among the events: order matters, fold them instead
}

// memGrainOverhead is the estimated memory of a memGrain.
const memGrainOverhead = 48

const foldGrain = int64(abacus.RollupGrain)

// grainOf returns the grain of a time in nanoseconds.
func grainOf(nanos int64) int64 {
	g := nanos / foldGrain
	if nanos%foldGrain < 0 {
		g--
	}
	return g
}

func newMemTable() *memTable { return newMemTableLike(nil) }

// newMemTableLike returns an empty table with room for as many events,
// counters and grains as prev held (or for the first few batches): growing
// its slices and map by doubling copied each table's events a dozen times,
// 2-3% of the node's CPU under batch ingest.
func newMemTableLike(prev *memTable) *memTable {
	evs, counters, grains := 4096, 1024, 1024
	if prev != nil {
		evs, counters, grains = max(evs, len(prev.evs)), max(counters, len(prev.counters)), max(grains, len(prev.grains))
	}
	return &memTable{index: make(map[string]int32, counters), counters: make([]memCounter, 0, counters),
		evs: make([]memEvent, 0, evs), grains: make([]memGrain, 0, grains), born: time.Now(), maxNanos: minNanos}
}

// isSummary reports a written-out table's counters and grains without its
// events (see summarize): every other table has an events slice.
func (t *memTable) isSummary() bool { return t.evs == nil }

// counterID is the memTable key of a counter: its namespace ID (8 bytes)
// and name, appended to buf.
func counterID(buf []byte, nsID uint64, counter string) []byte {
	return append(appendUint64(buf, nsID), counter...)
}

// eventCounterID is counterID for an event key.
func eventCounterID(buf, key []byte) []byte {
	rest := key[sliceKeyLen:]
	end := bytes.IndexByte(rest, counterEnd)
	return append(append(buf, key[1:9]...), rest[:end]...)
}

// add indexes the events of one record.
func (t *memTable) add(evs []memEvent, seq uint64, size int) {
	var buf [96]byte
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range evs {
		id := eventCounterID(buf[:0], e.key)
		ci, ok := t.index[string(id)]
		if !ok {
			ci = int32(len(t.counters))
			k := string(id)
			t.index[k] = ci
			t.counters = append(t.counters, memCounter{id: k, last: -1, latest: e.nanos, earliest: e.nanos, grain: -1})
			t.mem += memCounterOverhead + len(id)
		}
		c := &t.counters[ci]
		e.prev, e.ci = c.last, ci
		c.last = int32(len(t.evs))
		t.evs = append(t.evs, e)
		// Events come mostly in time order: an event after the counter's
		// latest grain starts a new one without a search (searching every
		// grain of a counter written a few times a second cost 5 µs per
		// unary add), and one in it, or a late one, is a few links back.
		g := grainOf(e.nanos)
		gi := c.grain
		if g > grainOf(c.latest) {
			gi = -1
		}
		for gi >= 0 && t.grains[gi].g != g {
			gi = t.grains[gi].prev
		}
		if gi < 0 {
			gi = int32(len(t.grains))
			t.grains = append(t.grains, memGrain{g: g, prev: c.grain})
			c.grain = gi
			t.mem += memGrainOverhead
		}
		gr := &t.grains[gi]
		gr.n++
		if delta, clear, _ := decodeEventValue(e.value()); clear {
			gr.clear = true
		} else {
			gr.sum = gr.sum.Add(delta)
		}
		c.latest = max(c.latest, e.nanos)
		c.earliest = min(c.earliest, e.nanos)
		t.maxNanos = max(t.maxNanos, e.nanos)
	}
	t.events += len(evs)
	t.bytes += size
	t.mem += size + len(evs)*memEventOverhead
	t.maxSeq = max(t.maxSeq, seq)
}

// counter returns the counter with this counterID, or nil. The caller
// holds t.mu.
func (t *memTable) counter(id []byte) *memCounter {
	if ci, ok := t.index[string(id)]; ok {
		return &t.counters[ci]
	}
	return nil
}

// find returns the value of the event with this key, if the table holds it.
func (t *memTable) find(key []byte) ([]byte, bool) {
	var buf [96]byte
	id := eventCounterID(buf[:0], key)
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.counter(id); c != nil && !t.isSummary() {
		for i := c.last; i >= 0; i = t.evs[i].prev {
			if bytes.Equal(t.evs[i].key, key) {
				return t.evs[i].value(), true
			}
		}
	}
	return nil, false
}

// lastWrite returns the latest event time of a counter in the table.
func (t *memTable) lastWrite(id []byte) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.counter(id); c != nil {
		return c.latest, true
	}
	return 0, false
}

// lastWrites adds to b, for each counter of the table, a merge of its latest
// event time (rounded up to lastWriteGrid) into its 'w' key.
func (t *memTable) lastWrites(b *pebble.Batch) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.counters {
		k := append([]byte{prefixLastWrite}, c.id...)
		_ = b.Merge(k, encodeTime(ceilGrid(c.latest)), nil)
	}
}

// collect appends the counter's events with times in [lo, hi] to out.
func (t *memTable) collect(id []byte, lo, hi int64, out []memEvent) []memEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	// A rollup reads a second or two of events from tables that hold many
	// seconds of them: walking every event of the counter in every table
	// took a fifth of the node's CPU under batch ingest.
	if c := t.counter(id); c != nil && !t.isSummary() && c.latest >= lo && c.earliest <= hi {
		for i := c.last; i >= 0; i = t.evs[i].prev {
			if e := t.evs[i]; e.nanos >= lo && e.nanos <= hi {
				out = append(out, e)
			}
		}
	}
	return out
}

// fold adds to acc the fold of the counter's events in [lo, mid) and in
// [mid, hi] (nanoseconds), read from its grains, and reports false if one of
// those grains holds a clear (their order then matters: read the events).
// It is exact when lo and mid start grains (or lo is the lowest time) and
// hi ends one or is at least every event time of the table.
func (t *memTable) fold(id []byte, lo, mid, hi int64, acc *memFold) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.counter(id)
	if c == nil || c.latest < lo || c.earliest > hi {
		return true
	}
	for gi := c.grain; gi >= 0; gi = t.grains[gi].prev {
		gr := &t.grains[gi]
		start := gr.g * foldGrain
		if start > hi || start+foldGrain-1 < lo {
			continue
		}
		if gr.clear {
			return false
		}
		if start < mid {
			acc.before, acc.nBefore = acc.before.AddSum(gr.sum), acc.nBefore+int(gr.n)
		} else {
			acc.after = acc.after.AddSum(gr.sum)
		}
	}
	return true
}

// memFold is a fold of a counter's events in memory, on both sides of a
// rollup window's end.
type memFold struct {
	before, after abacus.Sum
	nBefore       int
}

// summarize returns the written-out table's counters and grains, which a
// fold reads, without its events and records, which are in Pebble now and
// many times the size. The table itself is not changed: reads that took it
// from an earlier memView still read its events.
func (t *memTable) summarize() *memTable {
	t.mu.Lock()
	defer t.mu.Unlock()
	mem := len(t.counters)*memCounterOverhead + len(t.grains)*memGrainOverhead
	for _, c := range t.counters {
		mem += len(c.id)
	}
	return &memTable{index: t.index, counters: t.counters, grains: t.grains,
		maxSeq: t.maxSeq, maxNanos: t.maxNanos, born: t.born, mem: mem}
}

// counterNames appends the names of the namespace's counters that have
// events in slices [first, last] to out.
func (t *memTable) counterNames(l abacus.Layout, first, last int64, out []string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isSummary() {
		return out // its events were written out: the slices list them
	}
	for _, c := range t.counters {
		if binary.BigEndian.Uint64([]byte(c.id[:8])) != l.NSID {
			continue
		}
		for i := c.last; i >= 0; i = t.evs[i].prev {
			if x := l.Slice(t.evs[i].nanos); x >= first && x <= last {
				out = append(out, c.id[8:])
				break
			}
		}
	}
	return out
}

// kv is one key and value of a table the flusher writes.
type kv struct{ key, value []byte }

// blocks returns the table's events as blocks (see appendBlockKey), in key order,
// and the number of events in them. seq makes the keys unique to this
// write-out.
func (t *memTable) blocks(seq uint64) ([]kv, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// The events, grouped by counter in one counting pass in arrival order:
	// following each counter's chain back through a table of hundreds of
	// thousands of events missed the CPU cache at every step, and handed
	// the sort each counter's events newest first.
	at := make([]int32, len(t.counters)+1)
	for i := range t.evs {
		at[t.evs[i].ci+1]++
	}
	for ci := range t.counters {
		at[ci+1] += at[ci]
	}
	sorted := make([]memEvent, len(t.evs))
	next := slices.Clone(at[:len(t.counters)])
	for _, e := range t.evs {
		sorted[next[e.ci]] = e
		next[e.ci]++
	}
	out := make([]kv, 0, len(t.counters))
	// Keys and values are cut from two buffers, not allocated one by one.
	// A block holds an event in about half the bytes of its record (no key).
	keys := make([]byte, 0, len(t.counters)*(sliceKeyLen+64))
	vals := make([]byte, 0, t.bytes*2/3)
	var bevs []blockEvent
	n := 0
	for ci, c := range t.counters {
		evs := sorted[at[ci]:at[ci+1]]
		plen := sliceKeyLen + len(c.id) - 8 + 1 // the counter prefix
		idAt := plen + eventTail
		// Each counter's events are sorted on their own: many small sorts
		// by time cost much less than one of every key.
		slices.SortFunc(evs, func(a, b memEvent) int {
			if c := cmp.Compare(a.nanos, b.nanos); c != 0 {
				return c
			}
			return bytes.Compare(a.key[idAt:], b.key[idAt:])
		})
		// Slice and time bucket grow with time: each block is a run. The
		// rest of the prefix is the counter's, the same for all.
		for i := 0; i < len(evs); {
			group := evs[i].key
			slice, tb := getInt64(group[9:]), getInt64(group[plen:])
			bevs = bevs[:0]
			j := i
			for ; j < len(evs) && getInt64(evs[j].key[plen:]) == tb && getInt64(evs[j].key[9:]) == slice; j++ {
				e := evs[j]
				id := e.key[idAt:]
				if k := len(bevs) - 1; k >= 0 && bevs[k].nanos == e.nanos && bytes.Equal(bevs[k].id, id) {
					continue // a replayed record repeating an event
				}
				delta, clear, _ := decodeEventValue(e.value())
				bevs = append(bevs, blockEvent{nanos: e.nanos, id: id, delta: delta, clear: clear})
			}
			k0 := len(keys)
			keys = appendBlockKey(keys, group[:plen], tb, bevs[len(bevs)-1].nanos, seq)
			v0 := len(vals)
			vals = appendBlock(vals, bevs)
			out = append(out, kv{keys[k0:len(keys):len(keys)], vals[v0:len(vals):len(vals)]})
			n += len(bevs)
			i = j
		}
	}
	slices.SortFunc(out, func(a, b kv) int { return bytes.Compare(a.key, b.key) })
	return out, n
}

// memTables returns the tables a read must merge, the active one first.
// Read them before opening a Pebble iterator: a table dropped after this
// was ingested before it was dropped, so the iterator sees its events.
func (s *Store) memTables() []*memTable {
	ts, _ := s.memView()
	return ts
}

// memView returns the tables a read must merge (active, frozen, retained
// summaries) and the latest event time of a table whose events left memory
// (dropped, or kept as a summary), or of an earlier process's events (see
// Open), read together: every event in Pebble with a later time is in one
// of the tables, so a read of times after it needs no Pebble iterator.
func (s *Store) memView() ([]*memTable, int64) {
	ts, dropped, summarized := s.memSnapshot()
	return ts, max(dropped, summarized)
}

// memFoldView is memView for folds, which read summaries too: its time is
// that of the latest table dropped from memory (or of an earlier process's
// events).
func (s *Store) memFoldView() ([]*memTable, int64) {
	ts, dropped, _ := s.memSnapshot()
	return ts, dropped
}

func (s *Store) memSnapshot() (ts []*memTable, dropped, summarized int64) {
	s.memMu.RLock()
	defer s.memMu.RUnlock()
	ts = make([]*memTable, 0, 1+len(s.frozen)+len(s.retained))
	ts = append(ts, s.active)
	ts = append(ts, s.frozen...)
	return append(ts, s.retained...), s.dropped, s.summarized
}

// retain keeps a written-out table readable and drops the tables past
// their time or over the size budget, all of them if all. The caller holds
// memMu for writing. dropped is raised before a table leaves the list, so
// that memView never pairs a list without the table with an older mark.
func (s *Store) retain(t *memTable, all bool) {
	if t != nil {
		sum := t.summarize()
		sum.writtenAt = time.Now()
		s.summarized = max(s.summarized, t.maxNanos)
		s.retained = append(s.retained, sum)
		s.retainedBytes += sum.mem
	}
	for len(s.retained) > 0 {
		old := s.retained[0]
		if !all && s.retainedBytes <= s.retainBytes && time.Since(old.writtenAt) < memRetainFor {
			break
		}
		s.dropped = max(s.dropped, old.maxNanos)
		s.retained[0] = nil
		s.retained = s.retained[1:]
		s.retainedBytes -= old.mem
	}
}

// dropRetained drops every retained table: after a deletion in Pebble, their
// events may be gone from it.
func (s *Store) dropRetained() {
	s.memMu.Lock()
	defer s.memMu.Unlock()
	s.retain(nil, true)
}

// memLastWrite returns the latest event time of a counter in the tables ts
// (from memTables), rounded up to lastWriteGrid as stored ones are.
func memLastWrite(ts []*memTable, nsID uint64, counter string) (int64, bool) {
	var buf [96]byte
	id := counterID(buf[:0], nsID, counter)
	latest, found := int64(minNanos), false
	for _, t := range ts {
		if n, ok := t.lastWrite(id); ok {
			latest, found = max(latest, n), true
		}
	}
	if !found {
		return 0, false
	}
	return ceilGrid(latest), true
}

// memFind looks for an event key in memory.
func (s *Store) memFind(key []byte) ([]byte, bool) {
	for _, t := range s.memTables() {
		if v, ok := t.find(key); ok {
			return v, true
		}
	}
	return nil, false
}

// memEvents returns the counter's events in memory with times in [lo, hi],
// in Event.Before order (reversed if reverse), or nil.
//
// memOnly reports that every event of the range is in memory (see memView),
// so the read needs no Pebble iterator.
//
// ts and dropped are a memView, taken once for a batch of reads.
func memEvents(ts []*memTable, dropped int64, nsID uint64, counter string, lo, hi int64, reverse bool) (evs []abacus.Event, memOnly bool, err error) {
	var buf [96]byte
	id := counterID(buf[:0], nsID, counter)
	var mes []memEvent
	memOnly = lo > dropped
	for _, t := range ts {
		mes = t.collect(id, lo, hi, mes)
	}
	if len(mes) == 0 {
		return nil, memOnly, nil
	}
	evs = make([]abacus.Event, 0, len(mes))
	for _, e := range mes {
		ev, err := memEventOf(counter, e)
		if err != nil {
			return nil, false, err
		}
		evs = append(evs, ev)
	}
	slices.SortFunc(evs, abacus.CompareEvents)
	// The same event in two tables (a table frozen while an append of it
	// that found neither was in flight cannot happen: its stripe is locked;
	// but a replayed record can repeat an ingested event) is kept once.
	evs = slices.CompactFunc(evs, func(a, b abacus.Event) bool { return a.ID == b.ID && a.Time.Equal(b.Time) })
	if reverse {
		slices.Reverse(evs)
	}
	return evs, memOnly, nil
}

func memEventOf(counter string, e memEvent) (abacus.Event, error) {
	delta, clear, ok := decodeEventValue(e.value())
	if !ok {
		return abacus.Event{}, corrupt("event", e.key)
	}
	_, _, id, ok := parseEventSuffix(e.key[sliceKeyLen+len(counter)+1:])
	if !ok {
		return abacus.Event{}, corrupt("event key", e.key)
	}
	return abacus.Event{Counter: counter, Time: nanosTime(e.nanos), ID: id, Delta: delta, Clear: clear}, nil
}

// mergeMem wraps fn so that it also receives mem, a list in the order fn's
// events come in (Event.Before, or reversed), merged into them: each event
// once, an event in both only once. The returned finish emits what is left
// of mem after the last event; call it when the scan has ended without
// error.
func mergeMem(mem []abacus.Event, reverse bool, fn func(abacus.Event) error) (wrapped func(abacus.Event) error, finish func() error) {
	if len(mem) == 0 {
		return fn, func() error { return nil }
	}
	before := func(a, b abacus.Event) int {
		if reverse {
			return abacus.CompareEvents(b, a)
		}
		return abacus.CompareEvents(a, b)
	}
	wrapped = func(e abacus.Event) error {
		for len(mem) > 0 {
			c := before(mem[0], e)
			if c > 0 {
				break
			}
			m := mem[0]
			mem = mem[1:]
			if c == 0 || (m.ID == e.ID && m.Time.Equal(e.Time)) {
				continue // stored in both: once
			}
			if err := fn(m); err != nil {
				return err
			}
		}
		return fn(e)
	}
	finish = func() error {
		for len(mem) > 0 {
			m := mem[0]
			mem = mem[1:]
			if err := fn(m); err != nil {
				return err
			}
		}
		return nil
	}
	return wrapped, finish
}

// appendRecord encodes the events into one batch record and returns it with
// the events as memEvents pointing into it.
func appendRecord(evs []*pendingEvent) ([]byte, []memEvent) {
	size := 0
	for _, e := range evs {
		size += 2*binary.MaxVarintLen32 + len(e.key) + binary.MaxVarintLen64 + 1
	}
	rec := make([]byte, 0, size)
	type span struct{ k0, k1, v0, v1 int }
	spans := make([]span, len(evs))
	for i, e := range evs {
		rec = binary.AppendUvarint(rec, uint64(len(e.key)))
		spans[i].k0 = len(rec)
		rec = append(rec, e.key...)
		spans[i].k1 = len(rec)
		vlen := varintLen(e.ev.Delta) + 1
		rec = binary.AppendUvarint(rec, uint64(vlen))
		spans[i].v0 = len(rec)
		rec = binary.AppendVarint(rec, e.ev.Delta)
		if e.ev.Clear {
			rec = append(rec, flagClear)
		} else {
			rec = append(rec, flagDelta)
		}
		spans[i].v1 = len(rec)
	}
	mes := make([]memEvent, len(evs))
	for i, sp := range spans {
		mes[i] = memEvent{key: rec[sp.k0:sp.k1:sp.v1], nanos: evs[i].nanos}
	}
	return rec, mes
}

func varintLen(v int64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], v)
}

// decodeRecord parses a batch record back into its events.
func decodeRecord(rec []byte) ([]memEvent, bool) {
	var mes []memEvent
	for len(rec) > 0 {
		kl, n := binary.Uvarint(rec)
		if n <= 0 || uint64(len(rec)-n) < kl {
			return nil, false
		}
		whole := rec[n:]
		k := int(kl)
		rec = rec[n+k:]
		vl, n := binary.Uvarint(rec)
		if n != 1 || uint64(len(rec)-n) < vl {
			return nil, false // a value's length is one byte (see memEvent)
		}
		key := whole[: k : k+1+int(vl)]
		value := rec[1 : 1+int(vl)]
		rec = rec[1+int(vl):]
		if len(key) < sliceKeyLen+1+eventTail || key[0] != prefixEvent {
			return nil, false
		}
		end := bytes.IndexByte(key[sliceKeyLen:], counterEnd)
		if end <= 0 {
			return nil, false
		}
		_, nanos, _, ok := parseEventSuffix(key[sliceKeyLen+end+1:])
		if !ok {
			return nil, false
		}
		if _, _, ok := decodeEventValue(value); !ok {
			return nil, false
		}
		mes = append(mes, memEvent{key: key, nanos: nanos})
	}
	return mes, true
}

// noteSize asks for a flush once the active table is large enough.
func (s *Store) noteSize(t *memTable) {
	t.mu.Lock()
	big := t.bytes >= s.flushBytes || t.mem >= 2*s.flushBytes
	t.mu.Unlock()
	if big {
		select {
		case s.flushCh <- struct{}{}:
		default:
		}
	}
}

// waitRoom holds an append back while the flusher is behind.
func (s *Store) waitRoom(ctx context.Context) error {
	for {
		s.memMu.RLock()
		n, ch := len(s.frozen), s.room
		s.memMu.RUnlock()
		if n < memMaxFrozen {
			return nil
		}
		select {
		case s.flushCh <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctxError(ctx.Err())
		}
	}
}

// flushLoop writes tables out when they are large or old, until stop.
func (s *Store) flushLoop() {
	defer close(s.flushDone)
	tick := time.NewTicker(memFlushEvery / 4)
	defer tick.Stop()
	for {
		select {
		case <-s.flushStop:
			return
		case <-s.flushCh:
		case <-tick.C:
			s.memMu.Lock()
			t := s.active
			s.retain(nil, false)
			s.memMu.Unlock()
			t.mu.Lock()
			due := t.events > 0 && time.Since(t.born) >= memFlushEvery
			t.mu.Unlock()
			if !due {
				continue
			}
		}
		if err := s.flush(context.Background()); err != nil {
			s.log.Error("writing out the in-memory event log failed; it stays in memory and in the WAL, and is retried", "err", err)
			time.Sleep(time.Second)
		}
	}
}

// flush freezes the active table and writes out every frozen table, oldest
// first. A table that fails stays frozen (its events still readable, its
// records still in the log) and is retried by the next flush.
func (s *Store) flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.memMu.Lock()
	if s.active.events > 0 {
		s.frozen = append(s.frozen, s.active)
		s.active = newMemTableLike(s.active)
	}
	todo := slices.Clone(s.frozen)
	s.memMu.Unlock()
	for _, t := range todo {
		if err := s.writeOut(ctx, t); err != nil {
			return err
		}
		s.memMu.Lock()
		s.frozen = slices.DeleteFunc(s.frozen, func(f *memTable) bool { return f == t })
		s.retain(t, false)
		close(s.room)
		s.room = make(chan struct{})
		s.memMu.Unlock()
		s.memFlushes.Add(1)
	}
	return nil
}

// writeOut writes a table's events as blocks into an sstable, has Pebble
// ingest it, and deletes the table's records from the log.
func (s *Store) writeOut(ctx context.Context, t *memTable) error {
	start := time.Now()
	kvs, _ := t.blocks(t.maxSeq)
	if len(kvs) > 0 {
		path := s.fs.PathJoin(s.ingestDir, fmt.Sprintf("%020d.sst", t.maxSeq))
		if err := s.writeTable(path, kvs); err != nil {
			_ = s.fs.Remove(path)
			return unavailable(err, "event store: write out the event log")
		}
		if err := s.db.Ingest(ctx, []string{path}); err != nil {
			_ = s.fs.Remove(path)
			return unavailable(err, "event store: ingest the event log")
		}
	}
	// The last write times go in with the deletion of the records that
	// held them, atomically; and before the table leaves memory, where
	// RollupState reads first.
	b := s.db.NewBatch()
	t.lastWrites(b)
	_ = b.DeleteRange(logKey(0), logKey(t.maxSeq+1), nil)
	if err := s.commit(b, pebble.NoSync, "event store: trim the event log"); err != nil {
		return err
	}
	s.memFlushSeconds.add(time.Since(start))
	return nil
}

// writeTable writes kvs, in key order, into a new sstable at path, synced.
func (s *Store) writeTable(path string, kvs []kv) error {
	f, err := s.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	wo := s.popts.MakeWriterOptions(0, s.db.TableFormat())
	// Uncompressed and without a Bloom filter: compression was a tenth of the
	// write-out (and its decompression again in the compaction that soon
	// rewrites the table, compressed, into a lower level), and no point
	// lookup ever asks for a block key, which holds its last event's time.
	wo.Compression = sstable.NoCompression
	wo.FilterPolicy = nil
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), wo)
	for _, e := range kvs {
		if err := w.Set(e.key, e.value); err != nil {
			_ = w.Close()
			return err
		}
	}
	return w.Close()
}

// replayLog loads the records an earlier process left in the log and
// writes them out, so that Open starts with an empty log.
func (s *Store) replayLog() (err error) {
	it, err := s.iter([]byte{prefixLog}, []byte{prefixLog + 1})
	if err != nil {
		return err
	}
	t := newMemTable()
	var lastSeq uint64
	for valid := it.First(); valid; valid = it.Next() {
		if len(it.Key()) != 9 {
			_ = it.Close()
			return corrupt("log key", it.Key())
		}
		seq := binary.BigEndian.Uint64(it.Key()[1:])
		v, verr := it.ValueAndErr()
		if verr != nil {
			_ = it.Close()
			return unavailable(verr, "event store: replay the event log")
		}
		rec := bytes.Clone(v)
		mes, ok := decodeRecord(rec)
		if !ok {
			_ = it.Close()
			return corrupt("log record", it.Key())
		}
		t.add(mes, seq, len(rec))
		lastSeq = seq
	}
	if err := it.Close(); err != nil {
		return unavailable(err, "event store: replay the event log")
	}
	s.logSeq.Store(lastSeq)
	if t.maxSeq == 0 {
		return nil
	}
	return s.writeOut(context.Background(), t)
}

// flushForDeletion writes out every event held in memory and forgets the
// retained tables: the caller is about to delete in Pebble.
func (s *Store) flushForDeletion(ctx context.Context) error {
	if err := s.flush(ctx); err != nil {
		return err
	}
	s.dropRetained()
	return nil
}

// prepareIngestDir creates the directory the flusher writes sstables in and
// removes what a crash left there: a table is ingested (moved into Pebble)
// or not at all, and a table not ingested is written again from the log.
func (s *Store) prepareIngestDir() error {
	if err := s.fs.MkdirAll(s.ingestDir, 0o755); err != nil {
		return unavailable(err, "embedded store: create "+s.ingestDir)
	}
	names, err := s.fs.List(s.ingestDir)
	if err != nil {
		return unavailable(err, "embedded store: list "+s.ingestDir)
	}
	for _, n := range names {
		if err := s.fs.Remove(s.fs.PathJoin(s.ingestDir, n)); err != nil {
			return unavailable(err, "embedded store: clean "+s.ingestDir)
		}
	}
	return nil
}

// durationSum adds up durations, safe for concurrent use.
type durationSum struct{ nanos atomic.Int64 }

func (d *durationSum) add(x time.Duration) { d.nanos.Add(int64(x)) }

func (d *durationSum) seconds() float64 { return time.Duration(d.nanos.Load()).Seconds() }
