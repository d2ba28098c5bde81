package memcached

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/bradfitz/gomemcache/memcache"
)

// maxCreate bounds the attempts to create an absent count: each retry means
// the count vanished (deleted, evicted) between its creation and the incr.
const maxCreate = 3

// Add implements abacus.Cache with incr for a positive delta (or zero) and
// decr for a negative one, creating an absent count with add "0" first. With
// the limits of the package doc: a count stops at 0, and an add past
// math.MaxInt64 is undone and returns OutOfRange.
func (c *Cache) Add(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := ctxErr(ctx, "add"); err != nil {
		return 0, err
	}
	k := c.countKey(key)
	exp := expiration(ttl, time.Now())
	created := false
	for attempt := 0; ; attempt++ {
		v, err := c.incrDecr(k, delta)
		if errors.Is(err, memcache.ErrCacheMiss) {
			if attempt == maxCreate {
				return 0, abacus.Errorf(abacus.Unavailable, "memcached add: the count vanished %d times while being created", maxCreate)
			}
			// Not stored means another client created it first: add to theirs.
			err = c.client.Add(&memcache.Item{Key: k, Value: []byte("0"), Expiration: exp})
			if err == nil || errors.Is(err, memcache.ErrNotStored) {
				created = err == nil
				continue
			}
		}
		if err != nil {
			return 0, c.wrap(ctx, err, "add")
		}
		if delta > 0 && (v > math.MaxInt64 || v < uint64(delta)) {
			return 0, c.undo(ctx, k, delta, v)
		}
		if v > math.MaxInt64 {
			return 0, abacus.Errorf(abacus.OutOfRange, "memcached add: the count is %d, beyond int64, while another add past the maximum is undone; the add of %d was applied", v, delta)
		}
		if !created {
			// incr and decr keep the expiration the count was created with.
			_ = c.client.Touch(k, exp)
		}
		return int64(v), nil
	}
}

// incrDecr applies delta to the count at k; decr of -delta for a negative
// delta, computed in uint64 so that math.MinInt64 needs no int64 negation.
func (c *Cache) incrDecr(k string, delta int64) (uint64, error) {
	if delta < 0 {
		return c.client.Decrement(k, 0-uint64(delta))
	}
	return c.client.Increment(k, uint64(delta))
}

// undo reverts an incr of delta whose result v passed math.MaxInt64 (or
// wrapped past 2^64, making v smaller than delta), and returns the
// OutOfRange error for it. It adds 2^64-delta: incr wraps modulo 2^64, so that
// restores the count exactly, wrapped or not.
func (c *Cache) undo(ctx context.Context, k string, delta int64, v uint64) error {
	if _, err := c.client.Increment(k, 0-uint64(delta)); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
		return c.wrap(ctx, err, "add: undoing an add past the int64 maximum (the count may be left out of range)")
	}
	return abacus.Errorf(abacus.OutOfRange, "memcached add: adding %d would take the count past int64 (to %d modulo 2^64); the count is unchanged", delta, v)
}

// Get implements abacus.Cache. OutOfRange if it meets a count beyond int64,
// left for a moment by an add that is being undone.
func (c *Cache) Get(ctx context.Context, key string) (int64, error) {
	if err := ctxErr(ctx, "get"); err != nil {
		return 0, err
	}
	it, err := c.client.Get(c.countKey(key))
	if errors.Is(err, memcache.ErrCacheMiss) {
		return 0, nil
	}
	if err != nil {
		return 0, c.wrap(ctx, err, "get")
	}
	// incr rewrites a shorter number in place, padded with spaces.
	v, err := strconv.ParseUint(string(bytes.TrimRight(it.Value, " ")), 10, 64)
	if err != nil {
		return 0, abacus.Errorf(abacus.Internal, "memcached get: the count is not a number: %w", err)
	}
	if v > math.MaxInt64 {
		return 0, abacus.Errorf(abacus.OutOfRange, "memcached get: the count is %d, beyond int64, while an add past the maximum is undone", v)
	}
	return int64(v), nil
}

// Delete implements abacus.Cache.
func (c *Cache) Delete(ctx context.Context, key string) error {
	if err := ctxErr(ctx, "delete"); err != nil {
		return err
	}
	err := c.client.Delete(c.countKey(key))
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil
	}
	return c.wrap(ctx, err, "delete")
}
