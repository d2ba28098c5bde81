package memcached

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/bradfitz/gomemcache/memcache"
)

// A checkpoint is one item, so its count and time are always read and written
// together [ROLL-3]: a format byte, then big-endian Count.Hi, Count.Lo, Through
// as Unix seconds and nanoseconds (int64, uint64, int64, uint32).
const (
	checkpointFormat = 1
	checkpointLen    = 1 + 8 + 8 + 8 + 4
)

// maxCAS bounds the compare-and-swap loop of PutCheckpoint. A put retries only
// when another put stored an older checkpoint in between, so even many nodes
// rolling up one counter finish well within it.
const maxCAS = 64

// GetCheckpoint implements abacus.RollupCache. Through is returned in UTC.
func (c *Cache) GetCheckpoint(ctx context.Context, key string) (abacus.Checkpoint, bool, error) {
	if err := ctxErr(ctx, "get checkpoint"); err != nil {
		return abacus.Checkpoint{}, false, err
	}
	it, err := c.client.Get(c.checkpointKey(key))
	if errors.Is(err, memcache.ErrCacheMiss) {
		return abacus.Checkpoint{}, false, nil
	}
	if err != nil {
		return abacus.Checkpoint{}, false, c.wrap(ctx, err, "get checkpoint")
	}
	cp, err := decodeCheckpoint(it.Value)
	if err != nil {
		return abacus.Checkpoint{}, false, err
	}
	return cp, true, nil
}

// PutCheckpoint implements abacus.RollupCache with a gets / cas loop that keeps
// the newer checkpoint, so a slow rollup finishing late cannot replace a newer
// cached checkpoint, even one put by another node. A stored value it cannot
// read is replaced. A put that is not stored leaves the TTL of the newer
// checkpoint as it was.
func (c *Cache) PutCheckpoint(ctx context.Context, key string, cp abacus.Checkpoint, ttl time.Duration) error {
	if err := ctxErr(ctx, "put checkpoint"); err != nil {
		return err
	}
	k := c.checkpointKey(key)
	val := encodeCheckpoint(cp)
	exp := expiration(ttl, time.Now())
	for range maxCAS {
		it, err := c.client.Get(k)
		if errors.Is(err, memcache.ErrCacheMiss) {
			err = c.client.Add(&memcache.Item{Key: k, Value: val, Expiration: exp})
			if errors.Is(err, memcache.ErrNotStored) {
				continue // another put came first: compare with it
			}
			return c.wrap(ctx, err, "put checkpoint")
		}
		if err != nil {
			return c.wrap(ctx, err, "put checkpoint")
		}
		if old, err := decodeCheckpoint(it.Value); err == nil && old.Newer(cp) {
			return nil
		}
		it.Value, it.Expiration = val, exp
		err = c.client.CompareAndSwap(it)
		if errors.Is(err, memcache.ErrCASConflict) || errors.Is(err, memcache.ErrNotStored) {
			continue // changed or gone since the get: look again
		}
		return c.wrap(ctx, err, "put checkpoint")
	}
	return abacus.Errorf(abacus.Unavailable, "memcached put checkpoint: still contended after %d attempts", maxCAS)
}

func encodeCheckpoint(cp abacus.Checkpoint) []byte {
	b := make([]byte, 1, checkpointLen)
	b[0] = checkpointFormat
	b = binary.BigEndian.AppendUint64(b, uint64(cp.Count.Hi))
	b = binary.BigEndian.AppendUint64(b, cp.Count.Lo)
	b = binary.BigEndian.AppendUint64(b, uint64(cp.Through.Unix()))
	return binary.BigEndian.AppendUint32(b, uint32(cp.Through.Nanosecond()))
}

func decodeCheckpoint(b []byte) (abacus.Checkpoint, error) {
	if len(b) != checkpointLen || b[0] != checkpointFormat {
		return abacus.Checkpoint{}, abacus.Errorf(abacus.Internal, "memcached: malformed cached checkpoint (%d bytes, format %v)", len(b), b[:min(len(b), 1)])
	}
	nsec := binary.BigEndian.Uint32(b[25:])
	if nsec >= uint32(time.Second) {
		return abacus.Checkpoint{}, abacus.Errorf(abacus.Internal, "memcached: malformed cached checkpoint (nanoseconds %d)", nsec)
	}
	return abacus.Checkpoint{
		Count: abacus.Sum{
			Hi: int64(binary.BigEndian.Uint64(b[1:])),
			Lo: binary.BigEndian.Uint64(b[9:]),
		},
		Through: time.Unix(int64(binary.BigEndian.Uint64(b[17:])), int64(nsec)).UTC(),
	}, nil
}
