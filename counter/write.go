package counter

import (
	"context"
	"math"

	"github.com/abacus-dev/abacus"
)

// prepared is a validated write: its namespace and the token it is stored under.
type prepared struct {
	ns  *abacus.Namespace
	tok Token
}

// prepare validates a write, resolves its namespace, assigns a token when the
// request has none and checks the accept window.
func (s *Service) prepare(r AddRequest, clear bool) (prepared, error) {
	var err error
	if clear {
		err = checkRef(Ref{r.Namespace, r.Counter})
		if err == nil {
			err = checkToken(r.Token)
		}
	} else {
		err = checkAdd(r)
	}
	if err != nil {
		return prepared{}, err
	}
	ns, err := s.namespace(r.Namespace)
	if err != nil {
		return prepared{}, err
	}
	now := s.now()
	tok := r.Token
	if tok.ID == "" {
		tok = s.newToken(now)
	}
	if ns.Type.Durable() {
		if err := s.checkWindow(ns, tok.Time, now); err != nil {
			return prepared{}, err
		}
	}
	return prepared{ns: ns, tok: tok}, nil
}

func event(r AddRequest, tok Token, clear bool) abacus.Event {
	return abacus.Event{Counter: r.Counter, Time: tok.Time, ID: tok.ID, Delta: r.Delta, Clear: clear}
}

// Add adds r.Delta to a counter and returns the token it is stored under. For
// EVENTUAL and ACCURATE namespaces it returns only once the event is durable.
func (s *Service) Add(ctx context.Context, r AddRequest) (Token, error) {
	p, err := s.prepare(r, false)
	if err != nil {
		return Token{}, err
	}
	if p.ns.Type == abacus.BestEffort {
		_, err := s.cfg.Cache.Add(ctx, cacheKey(p.ns, r.Counter), r.Delta, p.ns.TTL)
		return p.tok, err
	}
	if err := s.checkOverflow(ctx, p.ns, r.Counter, r.Delta); err != nil {
		return Token{}, err
	}
	if err := s.cfg.Events.Append(ctx, []abacus.Write{{NS: p.ns, Event: event(r, p.tok, false)}}); err != nil {
		return Token{}, err
	}
	s.sig(p.ns, r.Counter)
	return p.tok, nil
}

// AddAndGet adds r.Delta and returns a count:
//   - BEST_EFFORT: the cached count right after this add (atomic).
//   - EVENTUAL: the last rolled-up count, as GetCount returns it; it may not yet
//     include this add.
//   - ACCURATE: the accurate count after this add: it includes this add and
//     every write acknowledged before it.
func (s *Service) AddAndGet(ctx context.Context, r AddRequest) (int64, Token, error) {
	p, err := s.prepare(r, false)
	if err != nil {
		return 0, Token{}, err
	}
	if p.ns.Type == abacus.BestEffort {
		n, err := s.cfg.Cache.Add(ctx, cacheKey(p.ns, r.Counter), r.Delta, p.ns.TTL)
		return n, p.tok, err
	}
	if err := s.checkOverflow(ctx, p.ns, r.Counter, r.Delta); err != nil {
		return 0, Token{}, err
	}
	if err := s.cfg.Events.Append(ctx, []abacus.Write{{NS: p.ns, Event: event(r, p.tok, false)}}); err != nil {
		return 0, Token{}, err
	}
	n, err := s.get(ctx, p.ns, r.Counter)
	return n, p.tok, err
}

// Clear resets a counter to zero: for durable types it writes a clear event that
// wipes every event at or before the token's time.
func (s *Service) Clear(ctx context.Context, r Ref, tok Token) (Token, error) {
	req := AddRequest{Namespace: r.Namespace, Counter: r.Counter, Token: tok}
	p, err := s.prepare(req, true)
	if err != nil {
		return Token{}, err
	}
	if p.ns.Type == abacus.BestEffort {
		return p.tok, s.cfg.Cache.Delete(ctx, cacheKey(p.ns, r.Counter))
	}
	if err := s.cfg.Events.Append(ctx, []abacus.Write{{NS: p.ns, Event: event(req, p.tok, true)}}); err != nil {
		return Token{}, err
	}
	s.sig(p.ns, r.Counter)
	return p.tok, nil
}

// AddBatch applies many adds. Every item is validated first; one bad item fails
// the call with nothing written, its index in the message. The durable events
// of a call are appended atomically with one fsync. BEST_EFFORT adds are
// applied after the durable append, one by one.
func (s *Service) AddBatch(ctx context.Context, rs []AddRequest) ([]Token, error) {
	if len(rs) == 0 {
		return nil, abacus.Errorf(abacus.InvalidArgument, "adds is empty")
	}
	if len(rs) > MaxBatch {
		return nil, abacus.Errorf(abacus.InvalidArgument, "adds has %d items; the limit is %d", len(rs), MaxBatch)
	}
	ps := make([]prepared, len(rs))
	writes := make([]abacus.Write, 0, len(rs))
	for i, r := range rs {
		p, err := s.prepare(r, false)
		if err != nil {
			return nil, indexed("adds", i, err)
		}
		ps[i] = p
		if p.ns.Type.Durable() {
			if err := s.checkOverflow(ctx, p.ns, r.Counter, r.Delta); err != nil {
				return nil, indexed("adds", i, err)
			}
			writes = append(writes, abacus.Write{NS: p.ns, Event: event(r, p.tok, false)})
		}
	}
	if len(writes) > 0 {
		if err := s.cfg.Events.Append(ctx, writes); err != nil {
			return nil, err
		}
	}
	toks := make([]Token, len(rs))
	for i, r := range rs {
		toks[i] = ps[i].tok
		if ps[i].ns.Type == abacus.BestEffort {
			if _, err := s.cfg.Cache.Add(ctx, cacheKey(ps[i].ns, r.Counter), r.Delta, ps[i].ns.TTL); err != nil {
				return nil, indexed("adds", i, err)
			}
		} else {
			s.sig(ps[i].ns, r.Counter)
		}
	}
	return toks, nil
}

// safeMargin bounds counts and deltas that cannot overflow when combined
// with any realistic number of pending events.
const safeMargin = math.MaxInt64 / 4

// checkOverflow refuses an add that would take the count out of int64. The
// common case costs one cached checkpoint read; only a count or delta near the
// limits pays for an accurate read. Concurrent adds near the limit can still
// together leave the range; reads then report OutOfRange rather than wrap.
func (s *Service) checkOverflow(ctx context.Context, ns *abacus.Namespace, counter string, delta int64) error {
	cp, err := s.checkpoint(ctx, ns, counter)
	if err != nil {
		return err
	}
	if n, ok := cp.Count.Int64(); ok && n > -safeMargin && n < safeMargin && delta > -safeMargin && delta < safeMargin {
		return nil
	}
	sum, err := s.accurate(ctx, ns, counter)
	if err != nil {
		return err
	}
	if _, ok := sum.Add(delta).Int64(); !ok {
		return abacus.Errorf(abacus.OutOfRange, "adding %d to the count of %q in namespace %q would overflow int64", delta, counter, ns.Name)
	}
	return nil
}
