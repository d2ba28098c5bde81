package counter

import (
	"context"
	"errors"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/rollup"
)

// prepared is a validated write: its namespace and the token it is stored
// under. stored says that its event is stored already: a retry, after the
// accept window, of a write whose first attempt was counted. It is
// acknowledged as a retry inside the window is, and writes nothing.
type prepared struct {
	ns     *abacus.Namespace
	tok    abacus.Token
	stored bool
}

// prepare validates a write, resolves its namespace, assigns a token when the
// request has none and checks the accept window.
func (s *Service) prepare(ctx context.Context, r abacus.AddRequest, clear bool, now time.Time) (prepared, error) {
	var err error
	if clear {
		err = abacus.Ref{Namespace: r.Namespace, Counter: r.Counter}.Check()
		if err == nil {
			err = r.Token.Check()
		}
	} else {
		err = r.Check()
	}
	if err != nil {
		return prepared{}, err
	}
	ns, err := s.namespace(r.Namespace)
	if err != nil {
		return prepared{}, err
	}
	tok := r.Token
	if tok.ID == "" {
		tok = s.newToken(now)
	}
	if ns.Type.Durable() {
		if err := s.checkWindow(ns, tok.Time, now); err != nil {
			stored, serr := s.isStored(ctx, ns, event(r, tok, clear), now)
			if serr != nil {
				return prepared{}, serr
			}
			if !stored {
				if tok.Time.Before(now.Add(-ns.Retention.DeleteAfter)) {
					err = abacus.Errorf(abacus.FailedPrecondition,
						"%s; it is also older than the namespace's retention (delete_after %s), so its event, if it was ever written, may have been deleted: whether it was counted cannot be told",
						abacus.ErrorMessage(err), ns.Retention.DeleteAfter)
				}
				return prepared{}, err
			}
			return prepared{ns: ns, tok: tok, stored: true}, nil
		}
	}
	return prepared{ns: ns, tok: tok}, nil
}

// isStored reports whether e, which the accept window refuses, is stored
// already, so that a client that lost the reply to a counted write can
// retry it for as long as its event is kept and learn that it was counted.
// The same token and time with another payload is AlreadyExists, as inside
// the window. An event not stored is refused by the window (false, nil),
// which means that it was not counted, and never will be, unless retention
// has deleted it.
func (s *Service) isStored(ctx context.Context, ns *abacus.Namespace, e abacus.Event, now time.Time) (bool, error) {
	var found *abacus.Event
	r := abacus.Range{From: e.Time, To: e.Time.Add(time.Nanosecond)}
	if from, _ := ns.AcceptWindow(now); e.Time.Before(from) {
		// An earlier attempt may still be committing (a stalled fsync): it
		// passed the window when it arrived. The fence waits for appends in
		// flight and refuses later ones, so after it the scan sees every
		// attempt that will ever be stored, and "not stored" stays true.
		// (It can also refuse, for this counter, a write at the same age
		// from a node whose clock lags, with FAILED_PRECONDITION: refused,
		// never lost.)
		if err := s.cfg.Backends.RollupStore(ns).Fence(ctx, ns, e.Counter, r.To); err != nil {
			return false, err
		}
	}
	err := s.cfg.Backends.EventStore(ns).Scan(ctx, ns, e.Counter, r, func(got abacus.Event) error {
		if got.ID == e.ID {
			found = &got
			return errFound
		}
		return nil
	})
	switch {
	case err != nil && err != errFound:
		return false, err
	case found == nil:
		return false, nil
	case !found.SamePayload(e):
		return false, abacus.TokenReused(e)
	}
	return true, nil
}

// errFound stops a scan at the event it looks for.
var errFound = errors.New("found")

func event(r abacus.AddRequest, tok abacus.Token, clear bool) abacus.Event {
	return abacus.Event{Counter: r.Counter, Time: tok.Time, ID: tok.ID, Delta: r.Delta, Clear: clear}
}

// Add adds r.Delta to a counter and returns the token it is stored under. For
// EVENTUAL and ACCURATE namespaces it returns only once the event is durable.
func (s *Service) Add(ctx context.Context, r abacus.AddRequest) (abacus.Token, error) {
	p, err := s.prepare(ctx, r, false, s.now())
	if err != nil {
		return abacus.Token{}, err
	}
	if err := s.admit(use{p.ns, 1}); err != nil {
		return abacus.Token{}, err
	}
	if p.ns.Type == abacus.BestEffort {
		_, err := s.cfg.Backends.Cache(p.ns).Add(ctx, abacus.CacheKey(p.ns, r.Counter), r.Delta, p.ns.TTL)
		return p.tok, err
	}
	if p.stored {
		return p.tok, nil
	}
	if err := s.checkOverflow(ctx, p.ns, r.Counter, r.Delta); err != nil {
		return abacus.Token{}, err
	}
	if err := s.cfg.Backends.EventStore(p.ns).Append(ctx, []abacus.Write{{NS: p.ns, Event: event(r, p.tok, false)}}); err != nil {
		return abacus.Token{}, err
	}
	s.signal(p.ns, r.Counter, true)
	return p.tok, nil
}

// AddAndGet adds r.Delta and returns a count:
//   - BEST_EFFORT: the cached count right after this add (atomic).
//   - EVENTUAL: the last rolled-up count, as GetCount returns it; it may not yet
//     include this add.
//   - ACCURATE: the accurate count after this add: it includes this add and
//     every write acknowledged before it.
func (s *Service) AddAndGet(ctx context.Context, r abacus.AddRequest) (int64, abacus.Token, error) {
	p, err := s.prepare(ctx, r, false, s.now())
	if err != nil {
		return 0, abacus.Token{}, err
	}
	if err := s.admit(use{p.ns, 1}); err != nil {
		return 0, abacus.Token{}, err
	}
	if p.ns.Type == abacus.BestEffort {
		n, err := s.cfg.Backends.Cache(p.ns).Add(ctx, abacus.CacheKey(p.ns, r.Counter), r.Delta, p.ns.TTL)
		return n, p.tok, err
	}
	if p.stored {
		// The count as a read gives it: the write is in it or in a rollup
		// to come, as for a retry inside the window.
		n, err := s.get(ctx, p.ns, r.Counter)
		return n, p.tok, err
	}
	if err := s.checkOverflow(ctx, p.ns, r.Counter, r.Delta); err != nil {
		return 0, abacus.Token{}, err
	}
	if err := s.cfg.Backends.EventStore(p.ns).Append(ctx, []abacus.Write{{NS: p.ns, Event: event(r, p.tok, false)}}); err != nil {
		return 0, abacus.Token{}, err
	}
	// The write is signalled as AddCount signals it, whatever the read
	// finds: a read's signal would leave a parked counter parked, and a
	// running rollup would not run again for this write.
	s.signal(p.ns, r.Counter, true)
	sum, _, err := s.read(ctx, p.ns, r.Counter)
	if err != nil {
		return 0, p.tok, err
	}
	n, err := count(p.ns, r.Counter, sum)
	return n, p.tok, err
}

// Clear resets a counter to zero: for durable types it writes a clear event that
// wipes every event at or before the token's time.
func (s *Service) Clear(ctx context.Context, r abacus.Ref, tok abacus.Token) (abacus.Token, error) {
	req := abacus.AddRequest{Namespace: r.Namespace, Counter: r.Counter, Token: tok}
	p, err := s.prepare(ctx, req, true, s.now())
	if err != nil {
		return abacus.Token{}, err
	}
	if err := s.admit(use{p.ns, 0}); err != nil {
		return abacus.Token{}, err
	}
	if p.ns.Type == abacus.BestEffort {
		return p.tok, s.cfg.Backends.Cache(p.ns).Delete(ctx, abacus.CacheKey(p.ns, r.Counter))
	}
	if p.stored {
		return p.tok, nil
	}
	if err := s.cfg.Backends.EventStore(p.ns).Append(ctx, []abacus.Write{{NS: p.ns, Event: event(req, p.tok, true)}}); err != nil {
		return abacus.Token{}, err
	}
	s.signal(p.ns, r.Counter, true)
	return p.tok, nil
}

// AddBatch applies many adds. Every item is validated first, and the
// overflow check sees the sum of a call's adds to each counter; one bad item
// fails the call with nothing written, its index in the message. BEST_EFFORT
// adds are applied first and undone if a later item or the durable append
// fails. The durable events of a call that live in one event store are then
// appended atomically with one fsync or commit; a call spanning namespaces on
// different event stores is atomic per store.
func (s *Service) AddBatch(ctx context.Context, rs []abacus.AddRequest) ([]abacus.Token, error) {
	if len(rs) == 0 {
		return nil, abacus.Errorf(abacus.InvalidArgument, "adds is empty")
	}
	if len(rs) > abacus.MaxBatch {
		return nil, abacus.Errorf(abacus.InvalidArgument, "adds has %d items; the limit is %d", len(rs), abacus.MaxBatch)
	}
	type counterKey struct {
		ns      *abacus.Namespace
		counter string
	}
	// Per counter written: the sum of its adds and its first item, which
	// an error names; firsts lists those items in order.
	type counterAdds struct {
		total abacus.Sum
		first int
	}
	ps := make([]prepared, len(rs))
	writes := make([]abacus.Write, 0, len(rs))
	counters := make(map[counterKey]counterAdds, len(rs))
	firsts := make([]int, 0, len(rs))
	// One time for the whole batch: its items arrive together, and the
	// accept window is seconds wide.
	now := s.now()
	for i, r := range rs {
		p, err := s.prepare(ctx, r, false, now)
		if err != nil {
			return nil, indexed("adds", i, err)
		}
		ps[i] = p
		if p.ns.Type.Durable() && !p.stored {
			k := counterKey{p.ns, r.Counter}
			c, seen := counters[k]
			if !seen {
				c.first = i
				firsts = append(firsts, i)
			}
			c.total = c.total.Add(r.Delta)
			counters[k] = c
			writes = append(writes, abacus.Write{NS: p.ns, Event: event(r, p.tok, false)})
		}
	}
	if err := s.admit(batchUses(len(rs), func(i int) *abacus.Namespace { return ps[i].ns }, 1)...); err != nil {
		return nil, err
	}
	// The checkpoints the overflow checks need are read per namespace
	// together: a batch over many cold counters would otherwise pay one
	// store read each.
	var byNS map[*abacus.Namespace][]string
	for _, i := range firsts {
		k := counterKey{ps[i].ns, rs[i].Counter}
		if d, ok := counters[k].total.Int64(); ok && s.knownSafe(k.ns, k.counter, d, now) {
			continue
		}
		if byNS == nil {
			byNS = map[*abacus.Namespace][]string{}
		}
		byNS[k.ns] = append(byNS[k.ns], k.counter)
	}
	for ns, cs := range byNS {
		cps, err := s.checkpoints(ctx, ns, cs)
		if err != nil {
			return nil, err
		}
		for i, c := range cs {
			k := counterKey{ns, c}
			d, ok := counters[k].total.Int64()
			if !ok {
				err = abacus.Errorf(abacus.OutOfRange, "the adds to %q in namespace %q sum to more than int64 holds", c, ns.Name)
			} else {
				err = s.checkOverflowFrom(ctx, ns, c, d, cps[i])
			}
			if err != nil {
				return nil, indexed("adds", counters[k].first, err)
			}
		}
	}
	var applied []int
	undo := func() {
		// Best effort: BEST_EFFORT counts are not transactional; a failed
		// undo leaves the cache off by the add, as a lost cache entry would.
		for _, i := range applied {
			_, _ = s.cfg.Backends.Cache(ps[i].ns).Add(ctx, abacus.CacheKey(ps[i].ns, rs[i].Counter), -rs[i].Delta, ps[i].ns.TTL)
		}
	}
	for i, r := range rs {
		if ps[i].ns.Type != abacus.BestEffort {
			continue
		}
		if _, err := s.cfg.Backends.Cache(ps[i].ns).Add(ctx, abacus.CacheKey(ps[i].ns, r.Counter), r.Delta, ps[i].ns.TTL); err != nil {
			undo()
			return nil, indexed("adds", i, err)
		}
		applied = append(applied, i)
	}
	if err := s.appendAll(ctx, writes); err != nil {
		undo()
		return nil, err
	}
	toks := make([]abacus.Token, len(rs))
	for i := range rs {
		toks[i] = ps[i].tok
	}
	// One signal per counter: the queue holds a counter once however often
	// it is signalled.
	ks := make([]rollup.Key, len(firsts))
	for k, i := range firsts {
		ks[k] = rollup.Key{NS: ps[i].ns, Counter: rs[i].Counter}
	}
	s.cfg.Signaler.SignalAll(ks)
	return toks, nil
}

// Bounds of the cheap overflow check: a count within ±2^62 cannot leave int64
// through adds within ±2^32 unless more than 2^30 of them are pending at
// once. Anything larger pays for an accurate read.
const (
	safeCount = 1 << 62
	safeDelta = 1 << 32
)

func smallDelta(d int64) bool { return d > -safeDelta && d < safeDelta }

// knownSafe reports an add of delta that the overflow memo answers for: a
// small one to a counter found safe this second.
func (s *Service) knownSafe(ns *abacus.Namespace, counter string, delta int64, now time.Time) bool {
	return smallDelta(delta) && s.safe.safe(ns.ID, counter, now)
}

// checkOverflow refuses an add that would take the count out of int64. The
// common case costs one cached checkpoint read; a count or delta near the
// limits pays for an accurate read (checkpoint plus pending events).
// Concurrent large adds can still together leave the range; reads then
// report OutOfRange rather than wrap.
func (s *Service) checkOverflow(ctx context.Context, ns *abacus.Namespace, counter string, delta int64) error {
	if s.knownSafe(ns, counter, delta, s.now()) {
		return nil
	}
	cp, _, err := s.checkpoint(ctx, ns, counter)
	if err != nil {
		return err
	}
	return s.checkOverflowFrom(ctx, ns, counter, delta, cp)
}

// checkOverflowFrom is checkOverflow with the checkpoint already read.
func (s *Service) checkOverflowFrom(ctx context.Context, ns *abacus.Namespace, counter string, delta int64, cp abacus.Checkpoint) error {
	if n, ok := cp.Count.Int64(); ok && n > -safeCount && n < safeCount && smallDelta(delta) {
		s.safe.mark(ns.ID, counter, s.now())
		return nil
	}
	s.safe.forget(ns.ID, counter)
	sum, err := s.accurate(ctx, ns, counter)
	if err != nil {
		return err
	}
	after := sum.Add(delta)
	if _, ok := after.Int64(); ok {
		return nil
	}
	// Already out of range (concurrent adds): allow adds that bring it back.
	if _, ok := sum.Int64(); !ok && (sum.Hi < 0) != (delta < 0) {
		return nil
	}
	return abacus.Errorf(abacus.OutOfRange, "adding %d to the count of %q in namespace %q would overflow int64", delta, counter, ns.Name)
}

// appendAll appends writes, one Append per event store, in the order the
// stores first appear.
func (s *Service) appendAll(ctx context.Context, writes []abacus.Write) error {
	if len(writes) == 0 {
		return nil
	}
	first := s.cfg.Backends.EventStore(writes[0].NS)
	// The common case, every write in one store, appends writes as they are:
	// a copy cost more than the rest of this function for a batch.
	one := true
	for _, w := range writes[1:] {
		if s.cfg.Backends.EventStore(w.NS) != first {
			one = false
			break
		}
	}
	if one {
		return first.Append(ctx, writes)
	}
	var other []abacus.Write
	same := writes[:0:0]
	for _, w := range writes {
		if s.cfg.Backends.EventStore(w.NS) == first {
			same = append(same, w)
		} else {
			other = append(other, w)
		}
	}
	if err := first.Append(ctx, same); err != nil {
		return err
	}
	return s.appendAll(ctx, other)
}
