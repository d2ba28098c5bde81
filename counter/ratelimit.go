package counter

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/abacus-dev/abacus"
)

// Kinds of rate limit, as Config.RateLimited and the metrics name them.
const (
	limitRequests   = "requests"
	limitIncrements = "increments"
)

// bucket is a namespace's token buckets, for one version of its RateLimit.
type bucket struct {
	cfg      abacus.RateLimit
	req, inc *rate.Limiter // nil: no limit of that kind
}

func newLimiter(perSecond float64, burst int) *rate.Limiter {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return rate.NewLimiter(rate.Limit(perSecond), burst)
}

// limiters holds the buckets of the namespaces with a rate limit, by
// namespace ID. A namespace whose limit is updated gets fresh buckets.
type limiters struct {
	m  sync.Map   // uint64 → *bucket
	mu sync.Mutex // held from the check of a call's buckets to the take
}

func (l *limiters) bucket(ns *abacus.Namespace) *bucket {
	if v, ok := l.m.Load(ns.ID); ok {
		if b := v.(*bucket); b.cfg == *ns.RateLimit {
			return b
		}
	}
	b := &bucket{
		cfg: *ns.RateLimit,
		req: newLimiter(ns.RateLimit.RequestsPerSecond, ns.RateLimit.Burst),
		inc: newLimiter(ns.RateLimit.IncrementsPerSecond, ns.RateLimit.Burst),
	}
	l.m.Store(ns.ID, b)
	return b
}

// use is what one call takes from one namespace's limits.
type use struct {
	ns         *abacus.Namespace
	increments int
}

// admit takes one request, and the increments, from the rate limits of each
// namespace in uses, or refuses the call with ResourceExhausted, taking
// nothing: a refused call counts nothing and costs nobody budget, however
// often it is retried. Namespaces without a limit cost nothing here, not
// even a clock read.
//
// The check and the take are one step under s.limits.mu: the token buckets'
// own reservations cannot be cancelled exactly once others were made after
// them, so refusals that reserved and cancelled would leak tokens.
func (s *Service) admit(uses ...use) error {
	limited := false
	for _, u := range uses {
		if !u.ns.RateLimit.IsZero() {
			limited = true
			break
		}
	}
	if !limited {
		return nil
	}
	type take struct {
		l    *rate.Limiter
		n    int
		ns   *abacus.Namespace
		kind string
	}
	var takes []take
	for _, u := range uses {
		if u.ns.RateLimit.IsZero() {
			continue
		}
		b := s.limits.bucket(u.ns)
		if b.req != nil {
			takes = append(takes, take{b.req, 1, u.ns, limitRequests})
		}
		if b.inc != nil && u.increments > 0 {
			takes = append(takes, take{b.inc, u.increments, u.ns, limitIncrements})
		}
	}
	s.limits.mu.Lock()
	defer s.limits.mu.Unlock()
	now := s.now()
	for _, t := range takes {
		if t.n > t.l.Burst() {
			s.rateLimited(t.ns, t.kind)
			return abacus.Errorf(abacus.ResourceExhausted,
				"namespace %q allows at most %d %s at once (rate_limit.burst); this call has %d: split it",
				t.ns.Name, t.l.Burst(), t.kind, t.n)
		}
		if have := t.l.TokensAt(now); have < float64(t.n) {
			s.rateLimited(t.ns, t.kind)
			wait := time.Duration((float64(t.n) - have) / float64(t.l.Limit()) * float64(time.Second))
			e := abacus.Errorf(abacus.ResourceExhausted,
				"namespace %q is over its rate limit of %g %s per second (burst %d) on this node; retry in %s",
				t.ns.Name, float64(t.l.Limit()), t.kind, t.l.Burst(), wait.Round(time.Millisecond))
			e.(*abacus.Error).RetryAfter = wait
			return e
		}
	}
	for _, t := range takes {
		t.l.AllowN(now, t.n) // true: checked above, under the lock
	}
	return nil
}

func (s *Service) rateLimited(ns *abacus.Namespace, kind string) {
	if s.cfg.RateLimited != nil {
		s.cfg.RateLimited(ns.Name, kind)
	}
}

// batchUses is the uses of a batch call of n items, item i in namespace
// nsOf(i), each item taking perItem increments: one request per namespace
// named, however many items name it.
func batchUses(n int, nsOf func(i int) *abacus.Namespace, perItem int) []use {
	var uses []use
	for i := range n {
		ns := nsOf(i)
		if ns.RateLimit.IsZero() {
			continue
		}
		found := false
		for k := range uses {
			if uses[k].ns == ns {
				uses[k].increments += perItem
				found = true
				break
			}
		}
		if !found {
			uses = append(uses, use{ns, perItem})
		}
	}
	return uses
}
