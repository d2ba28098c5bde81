package bench

import (
	"context"
	"errors"
	"strconv"
	"sync"

	"github.com/bradfitz/gomemcache/memcache"
)

// memcachedTarget drives memcached with gomemcache: incr key 1 per add
// (memcached's incr needs the key to exist, so Setup creates every counter
// at 0) and get per read. memcached has no multi-incr, so a batch of adds is
// one incr per counter in turn; a batch of reads is one GetMulti.
//
// gomemcache takes no context: an op's deadline is the client's Timeout.
type memcachedTarget struct {
	label  string
	addr   string
	prefix string
	c      *memcache.Client
	cpu    CPUSource
}

func newMemcachedTarget(label string, o Options) *memcachedTarget {
	return &memcachedTarget{label: label, addr: o.Memcached, prefix: o.KeyPrefix, cpu: o.procCPU(PIDMemcached)}
}

func (t *memcachedTarget) ServerCPU() CPUSource { return t.cpu }

func (t *memcachedTarget) Name() string { return t.label }

func (t *memcachedTarget) Setup(ctx context.Context, w Workload) error {
	t.c = memcache.New(t.addr)
	// Keep a connection per caller, so callers never wait to dial.
	t.c.MaxIdleConns = w.Callers
	t.c.Timeout = w.Timeout
	if err := t.c.Ping(); err != nil {
		return err
	}
	// Create the counters concurrently: one round trip each.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		first   error
		next    = make(chan int)
		workers = min(w.Callers, w.Counters)
	)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := t.create(t.key(i)); err != nil {
					mu.Lock()
					first = errors.Join(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range w.Counters {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// create sets key to 0 unless it exists (Add is memcached's "set if absent").
func (t *memcachedTarget) create(key string) error {
	err := t.c.Add(&memcache.Item{Key: key, Value: []byte("0")})
	if errors.Is(err, memcache.ErrNotStored) {
		return nil
	}
	return err
}

func (t *memcachedTarget) key(i int) string { return t.prefix + "c" + strconv.Itoa(i) }

func (t *memcachedTarget) Do(ctx context.Context, _ int, op Op) error {
	if op.Read {
		if len(op.Counters) == 1 {
			_, err := t.c.Get(t.key(op.Counters[0]))
			if errors.Is(err, memcache.ErrCacheMiss) {
				return nil
			}
			return err
		}
		keys := make([]string, len(op.Counters))
		for i, c := range op.Counters {
			keys[i] = t.key(c)
		}
		_, err := t.c.GetMulti(keys)
		return err
	}
	for _, c := range op.Counters {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := t.key(c)
		_, err := t.c.Increment(k, 1)
		if errors.Is(err, memcache.ErrCacheMiss) {
			// Evicted (or flushed) since Setup: recreate and retry once.
			if err = t.create(k); err == nil {
				_, err = t.c.Increment(k, 1)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *memcachedTarget) Close() error {
	if t.c == nil {
		return nil
	}
	return t.c.Close()
}
