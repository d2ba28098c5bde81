package embedded

import (
	"bytes"
	"encoding/binary"
	"strings"
	"time"

	"github.com/abacus-dev/abacus"
)

// Key space prefixes; see the package documentation for the layout.
const (
	prefixCheckpoint byte = 'c'
	prefixEvent      byte = 'e'
	prefixMeta       byte = 'm'
	prefixNamespace  byte = 'n'
	prefixRetained   byte = 'r'
	prefixLastWrite  byte = 'w'
)

// namespaceDataPrefixes are the key spaces that hold a namespace's data,
// keyed by its ID: what dropping a namespace deletes.
var namespaceDataPrefixes = []byte{prefixEvent, prefixLastWrite, prefixCheckpoint, prefixRetained}

// counterEnd terminates the counter name in event keys.
const counterEnd byte = 0x00

func checkCounter(counter string) error {
	if counter == "" {
		return abacus.Errorf(abacus.InvalidArgument, "counter name is required")
	}
	if strings.IndexByte(counter, counterEnd) >= 0 {
		return abacus.Errorf(abacus.InvalidArgument, "counter name %q contains a NUL byte", counter)
	}
	return nil
}

func nanosTime(n int64) time.Time { return time.Unix(0, n).UTC() }

func appendUint64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// appendInt64 encodes v so that byte order is numeric order.
func appendInt64(b []byte, v int64) []byte { return appendUint64(b, uint64(v)^(1<<63)) }

func getInt64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

func spaceKey(prefix byte, nsID uint64) []byte {
	return appendUint64(append(make([]byte, 0, 64), prefix), nsID)
}

// sliceKey is the first key of slice s of a namespace.
func sliceKey(nsID uint64, s int64) []byte { return appendInt64(spaceKey(prefixEvent, nsID), s) }

// counterPrefix is the prefix of a counter's events in slice s.
func counterPrefix(nsID uint64, s int64, counter string) []byte {
	return append(append(sliceKey(nsID, s), counter...), counterEnd)
}

// eventKey is the key of one event; its components are derived from the
// event's idempotency key (counter, time, id) and the namespace's layout.
func eventKey(l abacus.Layout, e abacus.Event, nanos int64) []byte {
	return appendEventKey(nil, l, e, nanos)
}

// appendEventKey appends the key of an event to b.
func appendEventKey(b []byte, l abacus.Layout, e abacus.Event, nanos int64) []byte {
	b = append(b, prefixEvent)
	b = appendUint64(b, l.NSID)
	b = appendInt64(b, l.Slice(nanos))
	b = append(append(b, e.Counter...), counterEnd)
	b = appendInt64(b, l.TimeBucket(nanos))
	b = binary.BigEndian.AppendUint16(b, uint16(l.EventBucket(e.ID)))
	b = appendInt64(b, nanos)
	return append(b, e.ID...)
}

// Lengths of the fixed-size parts of an event key after the counter prefix.
const (
	tbLen       = 8
	ebLen       = 2
	eventTail   = tbLen + ebLen + 8 // time bucket, event bucket, event time
	sliceKeyLen = 1 + 8 + 8
)

// parseEventSuffix decodes what follows a counter prefix in an event key.
func parseEventSuffix(rest []byte) (tb, nanos int64, id string, ok bool) {
	if len(rest) < eventTail {
		return 0, 0, "", false
	}
	return getInt64(rest), getInt64(rest[tbLen+ebLen:]), string(rest[eventTail:]), true
}

// parseSlice returns the slice of an event key.
func parseSlice(key []byte) (int64, bool) {
	if len(key) < sliceKeyLen {
		return 0, false
	}
	return getInt64(key[9:]), true
}

// parseCounter returns the counter of an event key.
func parseCounter(key []byte) (string, bool) {
	if len(key) < sliceKeyLen {
		return "", false
	}
	rest := key[sliceKeyLen:]
	i := bytes.IndexByte(rest, counterEnd)
	if i <= 0 {
		return "", false
	}
	return string(rest[:i]), true
}

func counterKey(prefix byte, nsID uint64, counter string) []byte {
	return append(spaceKey(prefix, nsID), counter...)
}

// parseCounterKey splits a 'w', 'c' or 'r' key.
func parseCounterKey(key []byte) (nsID uint64, counter string, ok bool) {
	if len(key) < 9 {
		return 0, "", false
	}
	return binary.BigEndian.Uint64(key[1:]), string(key[9:]), true
}

func namespaceKey(name string) []byte { return append([]byte{prefixNamespace}, name...) }

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

// maxEventTimeKey holds an upper bound of every event time ever appended
// (merged as a max, like the 'w' keys, and written up to markAhead past the
// latest): a restarted store's in-memory indexes answer only for later event
// times.
var maxEventTimeKey = metaKey("max_event_time")

// maxThroughKey holds an upper bound of every checkpoint time ever written,
// for the same reason: fences only answer alone for later event times.
var maxThroughKey = metaKey("max_through")

// prefixEnd returns the smallest key greater than every key with prefix p, or
// nil (no upper bound) if p is all 0xff.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Event values.

const (
	flagDelta byte = 0
	flagClear byte = 1
)

func encodeEventValue(e abacus.Event) []byte {
	v := binary.AppendVarint(make([]byte, 0, binary.MaxVarintLen64+1), e.Delta)
	if e.Clear {
		return append(v, flagClear)
	}
	return append(v, flagDelta)
}

func decodeEventValue(v []byte) (delta int64, clear bool, ok bool) {
	d, n := binary.Varint(v)
	if n <= 0 || len(v) != n+1 || v[n] > flagClear {
		return 0, false, false
	}
	return d, v[n] == flagClear, true
}

// Time values ('w' keys): 8 bytes whose byte order is time order, so the max
// merge operator can compare them as bytes.

func encodeTime(nanos int64) []byte { return appendInt64(make([]byte, 0, 8), nanos) }

func decodeTime(v []byte) (int64, bool) {
	if len(v) != 8 {
		return 0, false
	}
	return getInt64(v), true
}

// Checkpoint values ('c' keys, and 'r' keys: a retained base is a checkpoint).

const checkpointLen = 24

func encodeCheckpoint(cp abacus.Checkpoint, through int64) []byte {
	v := make([]byte, 0, checkpointLen)
	v = appendUint64(v, uint64(cp.Count.Hi))
	v = appendUint64(v, cp.Count.Lo)
	return appendInt64(v, through)
}

func decodeCheckpoint(v []byte) (abacus.Checkpoint, bool) {
	if len(v) != checkpointLen {
		return abacus.Checkpoint{}, false
	}
	return abacus.Checkpoint{
		Count:   abacus.Sum{Hi: int64(binary.BigEndian.Uint64(v)), Lo: binary.BigEndian.Uint64(v[8:])},
		Through: nanosTime(getInt64(v[16:])),
	}, true
}

// Event blocks.
//
// The flusher writes a counter's events of one time bucket that it writes out
// together as one key, a block, rather than one key each: an LSM's cost is
// per key (sstable writes, filters, compactions), and a hot counter's block
// holds many events. A block key is the counter's time bucket prefix, then
// blockMark where an event key has its event bucket, then the time of the
// block's last event (so a scan from a time seeks past the blocks that end
// before it) and the sequence number of the write-out (so blocks never
// overwrite each other). Its value is the events in (time, id) order.
//
// Stores of layout v1 hold one key per event; they are read as they are, and
// an event bucket of blockMark there (possible only with MaxBucketsPerID
// buckets) is refused at upgrade (see checkLayout).

// blockMark is the event-bucket field of a block key.
const blockMark = 0xFFFF

// appendBlockKey appends to k the key of a block of events of one counter
// and time bucket; p is the counter's prefix in the block's slice.
func appendBlockKey(k, p []byte, tb, lastNanos int64, seq uint64) []byte {
	k = append(k, p...)
	k = appendInt64(k, tb)
	k = binary.BigEndian.AppendUint16(k, blockMark)
	k = appendInt64(k, lastNanos)
	return appendUint64(k, seq)
}

// blockEvent is one event of a block as appendBlock takes it.
type blockEvent struct {
	nanos int64
	id    []byte
	delta int64
	clear bool
}

// appendBlock encodes events, in (time, id) order, as a block value.
func appendBlock(v []byte, evs []blockEvent) []byte {
	v = binary.AppendUvarint(v, uint64(len(evs)))
	prev := int64(0)
	for _, e := range evs {
		v = binary.AppendVarint(v, e.nanos-prev)
		prev = e.nanos
		v = binary.AppendUvarint(v, uint64(len(e.id)))
		v = append(v, e.id...)
		v = binary.AppendVarint(v, e.delta)
		if e.clear {
			v = append(v, flagClear)
		} else {
			v = append(v, flagDelta)
		}
	}
	return v
}

// eachBlockEvent calls fn for each event of a block value, in order; the id
// is only valid during the call. It reports false if v is not a block.
func eachBlockEvent(v []byte, fn func(nanos int64, id []byte, delta int64, clear bool)) bool {
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)) {
		return false
	}
	v = v[k:]
	prev := int64(0)
	for range n {
		d, k := binary.Varint(v)
		if k <= 0 {
			return false
		}
		prev += d
		v = v[k:]
		il, k := binary.Uvarint(v)
		if k <= 0 || il > uint64(len(v)-k) {
			return false
		}
		id := v[k : k+int(il)]
		v = v[k+int(il):]
		delta, k := binary.Varint(v)
		if k <= 0 || len(v) <= k || v[k] > flagClear {
			return false
		}
		fn(prev, id, delta, v[k] == flagClear)
		v = v[k+1:]
	}
	return len(v) == 0
}
