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
	m sync.Map // uint64 → *bucket
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
// nothing: a refused call counts nothing and costs its caller no budget.
// Namespaces without a limit cost nothing here.
func (s *Service) admit(uses ...use) error {
	var taken []*rate.Reservation
	now := s.now()
	for _, u := range uses {
		if u.ns.RateLimit.IsZero() {
			continue
		}
		b := s.limits.bucket(u.ns)
		for _, lim := range []struct {
			l    *rate.Limiter
			n    int
			kind string
		}{{b.req, 1, limitRequests}, {b.inc, u.increments, limitIncrements}} {
			if lim.l == nil || lim.n == 0 {
				continue
			}
			r := lim.l.ReserveN(now, lim.n)
			wait := r.DelayFrom(now)
			if r.OK() && wait == 0 {
				taken = append(taken, r)
				continue
			}
			for _, t := range taken {
				t.CancelAt(now)
			}
			if s.cfg.RateLimited != nil {
				s.cfg.RateLimited(u.ns.Name, lim.kind)
			}
			if !r.OK() {
				return abacus.Errorf(abacus.ResourceExhausted,
					"namespace %q allows at most %d %s at once (rate_limit.burst); this call has %d: split it",
					u.ns.Name, lim.l.Burst(), lim.kind, lim.n)
			}
			r.CancelAt(now)
			e := abacus.Errorf(abacus.ResourceExhausted,
				"namespace %q is over its rate limit of %g %s per second (burst %d) on this node; retry in %s",
				u.ns.Name, float64(lim.l.Limit()), lim.kind, lim.l.Burst(), wait.Round(time.Millisecond))
			e.(*abacus.Error).RetryAfter = wait
			return e
		}
	}
	return nil
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
