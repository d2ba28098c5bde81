// Package memory is the in-process cache of a node: BEST_EFFORT counts and
// cached rollup checkpoints, bounded in size and expiring by TTL. It is built on
// github.com/maypok86/otter/v2.
package memory

import (
	"context"
	"math"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/maypok86/otter/v2"
)

// DefaultMaxEntries bounds each cache when Options.MaxEntries is zero.
const DefaultMaxEntries = 4 << 20

// Options configures a Cache. The zero value is usable.
type Options struct {
	// MaxEntries bounds the number of counts and of checkpoints kept (each);
	// the least useful entries are evicted first. Default DefaultMaxEntries.
	MaxEntries int
}

type count struct {
	n   int64
	ttl time.Duration
}

type checkpoint struct {
	cp  abacus.Checkpoint
	ttl time.Duration
}

// Cache implements abacus.Cache and abacus.RollupCache in process memory. Its
// methods never fail.
type Cache struct {
	counts *otter.Cache[string, count]
	cps    *otter.Cache[string, checkpoint]
}

var (
	_ abacus.Cache       = (*Cache)(nil)
	_ abacus.RollupCache = (*Cache)(nil)
)

// New returns an empty cache.
func New(opts Options) *Cache {
	n := opts.MaxEntries
	if n <= 0 {
		n = DefaultMaxEntries
	}
	return &Cache{
		counts: otter.Must(&otter.Options[string, count]{
			MaximumSize: n,
			ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, count]) time.Duration {
				return e.Value.ttl
			}),
		}),
		cps: otter.Must(&otter.Options[string, checkpoint]{
			MaximumSize: n,
			ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, checkpoint]) time.Duration {
				return e.Value.ttl
			}),
		}),
	}
}

// Add implements abacus.Cache. The add is atomic per key: concurrent adds to
// one key never lose an increment.
func (c *Cache) Add(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	overflow := false
	v, _ := c.counts.Compute(key, func(old count, _ bool) (count, otter.ComputeOp) {
		if (delta > 0 && old.n > math.MaxInt64-delta) || (delta < 0 && old.n < math.MinInt64-delta) {
			overflow = true
			return old, otter.CancelOp
		}
		return count{n: old.n + delta, ttl: ttl}, otter.WriteOp
	})
	if overflow {
		return 0, abacus.Errorf(abacus.OutOfRange, "adding %d to %d would overflow int64; the count is unchanged", delta, v.n)
	}
	return v.n, nil
}

// Get implements abacus.Cache.
func (c *Cache) Get(_ context.Context, key string) (int64, error) {
	v, _ := c.counts.GetIfPresent(key)
	return v.n, nil
}

// Delete implements abacus.Cache.
func (c *Cache) Delete(_ context.Context, key string) error {
	c.counts.Invalidate(key)
	return nil
}

// GetCheckpoint implements abacus.RollupCache.
func (c *Cache) GetCheckpoint(_ context.Context, key string) (abacus.Checkpoint, bool, error) {
	v, ok := c.cps.GetIfPresent(key)
	return v.cp, ok, nil
}

// PutCheckpoint implements abacus.RollupCache: it keeps the newer checkpoint, so
// a slow rollup finishing late cannot replace a fresher cached count.
func (c *Cache) PutCheckpoint(_ context.Context, key string, cp abacus.Checkpoint, ttl time.Duration) error {
	c.cps.Compute(key, func(old checkpoint, found bool) (checkpoint, otter.ComputeOp) {
		if found && old.cp.Newer(cp) {
			return old, otter.CancelOp
		}
		return checkpoint{cp: cp, ttl: ttl}, otter.WriteOp
	})
	return nil
}
