package client

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// lookupRetry is how soon a namespace whose lookup failed (not with
// NOT_FOUND) is looked up again, at most: a node that was briefly
// unreachable should not leave its writes unretried for a whole
// WithCounterTypeTTL.
const lookupRetry = time.Second

// counterTypes caches the counter type of every namespace the client writes
// to, so that it knows which writes it may send more than once: EVENTUAL and
// ACCURATE writes are deduplicated by the server, BEST_EFFORT ones are not.
//
// A write calls touch, on the hot path: one sync.Map load. The first write to
// a namespace, and the first one after its entry has expired, starts a
// GetNamespace lookup in the background; the write does not wait for it. The
// decision to retry or hedge a write (taken only once an attempt has failed
// or is slow) reads the entry, and waits for a lookup still under way.
type counterTypes struct {
	c   *Client
	ttl time.Duration
	m   sync.Map // namespace name → *typeEntry

	// mu serializes the starting of lookups, and guards closed.
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // one per lookup under way
}

// typeEntry is what the client knows of one namespace. Entries are never
// changed, only replaced.
type typeEntry struct {
	// typ is the namespace's counter type as last looked up;
	// COUNTER_TYPE_UNSPECIFIED when unknown (never looked up, not found, or
	// every lookup failed).
	typ abacusv1.CounterType
	// expires is when a write next looks the type up again.
	expires time.Time
	// pending is set while a lookup runs, and closed when it has stored its
	// result (a new entry).
	pending chan struct{}
}

func newCounterTypes(c *Client) *counterTypes {
	return &counterTypes{c: c, ttl: c.o.typeTTL}
}

// durableType reports whether the server deduplicates writes to a namespace
// of type t by their idempotency key, so that a write may be sent again.
func durableType(t abacusv1.CounterType) bool {
	return t == abacusv1.CounterType_EVENTUAL || t == abacusv1.CounterType_ACCURATE
}

func (t *counterTypes) load(ns string) (*typeEntry, bool) {
	v, ok := t.m.Load(ns)
	if !ok {
		return nil, false
	}
	return v.(*typeEntry), true
}

// fresh reports whether e needs no lookup as of now.
func (e *typeEntry) fresh(now time.Time) bool {
	return e.pending != nil || now.Before(e.expires)
}

// touch makes sure that ns's type is known as of now (a write's generation
// time), or being looked up. It is called once per write, before it is
// sent, and never blocks on a lookup.
func (t *counterTypes) touch(ns string, now time.Time) {
	if e, ok := t.load(ns); ok && e.fresh(now) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.load(ns)
	if t.closed || ok && old.fresh(now) {
		return
	}
	e := &typeEntry{pending: make(chan struct{})}
	if ok {
		e.typ = old.typ // still the best guess while the lookup runs
	}
	t.m.Store(ns, e)
	t.wg.Add(1)
	go t.lookup(ns, now, e)
}

// lookup asks the server for ns's type and replaces e with the answer. A
// namespace that is not found is unknown until the entry expires; any other
// failure keeps the type last known (a namespace's type cannot be updated,
// only deleted and created anew) and is looked up again after lookupRetry.
func (t *counterTypes) lookup(ns string, now time.Time, e *typeEntry) {
	defer t.wg.Done()
	defer close(e.pending) // after the Store below: waiters see the new entry
	ctx := t.c.root
	if d := t.c.o.attemptTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	t.c.stats.lookups.Add(1)
	resp, err := t.c.pick().ns.GetNamespace(ctx, &abacusv1.GetNamespaceRequest{Name: ns})
	next := &typeEntry{typ: e.typ, expires: now.Add(t.ttl)}
	switch {
	case err == nil:
		next.typ = resp.GetNamespace().GetCounterType()
	case status.Code(err) == codes.NotFound:
		next.typ = abacusv1.CounterType_COUNTER_TYPE_UNSPECIFIED
	default:
		next.expires = now.Add(min(t.ttl, lookupRetry))
	}
	t.m.Store(ns, next)
}

// durable reports whether writes to ns may be sent again: its type, as
// cached, is EVENTUAL or ACCURATE. When that is not known yet, because a
// lookup is under way (the first for ns, or a refresh of an expired entry),
// ok is false and wait is closed when the lookup ends; ask again then.
func (t *counterTypes) durable(ns string) (ok bool, wait <-chan struct{}) {
	e, found := t.load(ns)
	switch {
	case !found:
		return false, nil
	case e.pending != nil:
		return false, e.pending
	}
	return durableType(e.typ), nil
}

// close stops new lookups; wait returns when those under way have ended
// (Close cancels them).
func (t *counterTypes) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}

func (t *counterTypes) wait() { t.wg.Wait() }

// again decides whether a call may be sent once more, as a retry or a hedge.
// It reports ok, or, when the answer is not known yet, a channel that is
// closed when it may be: ask again then. A nil again always allows it: reads,
// and writes when WithBestEffortRetries is on.
type again func() (ok bool, wait <-chan struct{})

// check calls a, which may be nil.
func (a again) check() (bool, <-chan struct{}) {
	if a == nil {
		return true, nil
	}
	return a()
}

// touch notes a write to ns, made at now (its generation time): see
// counterTypes.touch. A no-op with WithBestEffortRetries on.
func (c *Client) touch(ns string, now time.Time) {
	if c.types != nil {
		c.types.touch(ns, now)
	}
}

// againWrite is the again of a write to ns.
func (c *Client) againWrite(ns string) again {
	if c.types == nil {
		return nil
	}
	return func() (bool, <-chan struct{}) { return c.types.durable(ns) }
}

// againSlots is the again of one AddCounts RPC of the adds of slots: it
// may be sent again only if every item may.
func (c *Client) againSlots(ss []*slot) again {
	return c.againAll(len(ss), func(i int) string { return ss[i].it.ns })
}

// againAll is the again of an RPC of n writes, the i-th to namespace ns(i):
// it may be sent again only if every write may.
func (c *Client) againAll(n int, ns func(i int) string) again {
	if c.types == nil {
		return nil
	}
	return func() (bool, <-chan struct{}) {
		var wait <-chan struct{}
		prev := ""
		for i := range n {
			if i > 0 && ns(i) == prev {
				continue
			}
			prev = ns(i)
			ok, w := c.types.durable(prev)
			switch {
			case !ok && w == nil:
				return false, nil // known not to be, whatever the others are
			case !ok && wait == nil:
				wait = w
			}
		}
		return wait == nil, wait
	}
}

// mayAgain reports whether a call may be sent once more, waiting, if need
// be, for the lookups its answer depends on, or until ctx or the client
// ends. It is called only once an attempt has failed.
func (c *Client) mayAgain(ctx context.Context, a again) bool {
	for {
		ok, wait := a.check()
		if ok || wait == nil {
			return ok
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return false
		case <-c.root.Done():
			return false
		}
	}
}
