package rollup

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/abacus-dev/abacus"
)

// result is the outcome of one Func call.
type result struct {
	out Outcome
	err error
}

// rollupBatch rolls the batch's counters up concurrently and returns when
// every call has, with how long the batch ran: from when its first call
// got a node-wide slot, so that time spent waiting for other queues' batches
// to free slots is not taken for a slow store by the back-pressure pause.
func (p *Pipeline) rollupBatch(batch []*entry) ([]result, time.Duration) {
	if p.opts.Batch != nil && len(batch) > 1 {
		return p.rollupAll(batch)
	}
	results := make([]result, len(batch))
	began := make([]time.Time, len(batch))
	if len(batch) == 1 {
		results[0], began[0] = p.rollup(batch[0].key)
	} else {
		var wg sync.WaitGroup
		for i, e := range batch {
			wg.Go(func() { results[i], began[i] = p.rollup(e.key) })
		}
		wg.Wait()
	}
	var first time.Time
	for _, b := range began {
		if !b.IsZero() && (first.IsZero() || b.Before(first)) {
			first = b
		}
	}
	return results, ranSince(first)
}

// ranSince is the time since began, 0 for a call that never got a slot.
func ranSince(began time.Time) time.Duration {
	if began.IsZero() {
		return 0
	}
	return time.Since(began)
}

// rollup calls Func for k under the node-wide bound and the timeout, and
// says when it got its slot.
func (p *Pipeline) rollup(k Key) (r result, began time.Time) {
	began, r.err = p.run(1, func(ctx context.Context, _ int) (err error) {
		r.out, err = p.fn(ctx, k)
		return err
	})
	return r, began
}

// rollupAll calls Options.Batch for the whole batch, under the node-wide
// bound and the timeout; an error of the call itself (a panic, the pipeline
// stopping) fails every counter of the batch.
func (p *Pipeline) rollupAll(batch []*entry) ([]result, time.Duration) {
	keys := make([]Key, len(batch))
	for i, e := range batch {
		keys[i] = e.key
	}
	var outs []Outcome
	var errs []error
	began, err := p.run(len(batch), func(ctx context.Context, parallelism int) error {
		outs, errs = p.opts.Batch(ctx, keys, parallelism)
		if len(outs) != len(batch) || len(errs) != len(batch) {
			return fmt.Errorf("rollup: Batch returned %d outcomes and %d errors for %d keys", len(outs), len(errs), len(batch))
		}
		return nil
	})
	results := make([]result, len(batch))
	for i := range results {
		if err != nil {
			results[i] = result{err: err}
		} else {
			results[i] = result{out: outs[i], err: errs[i]}
		}
	}
	return results, ranSince(began)
}

// run calls f holding between one and want node-wide slots (f learns how
// many: it may run that many rollups at once), under RollupTimeout, and
// returns when it got the first slot (zero if it never did). It waits
// for one slot and takes what else is free without waiting: callers that
// each waited for several slots while holding some could hold them all and
// wait for each other forever. A panic in f fails the call instead of the
// node: one bad counter must not take every other down.
func (p *Pipeline) run(want int, f func(ctx context.Context, parallelism int) error) (began time.Time, err error) {
	held := want
	if p.sem != nil {
		select {
		case p.sem <- struct{}{}:
		case <-p.ctx.Done():
			return time.Time{}, p.ctx.Err()
		}
		held = 1
	more:
		for held < want {
			select {
			case p.sem <- struct{}{}:
				held++
			default:
				break more
			}
		}
		defer func() {
			for range held {
				<-p.sem
			}
		}()
	}
	began = time.Now()
	ctx := p.ctx
	if p.opts.RollupTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.opts.RollupTimeout)
		defer cancel()
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("rollup: panic: %v\n%s", v, debug.Stack())
		}
	}()
	return began, f(ctx, held)
}

// backoff returns the wait before retry number attempts of a failing
// counter: RetryMin doubled per earlier failure, capped at RetryMax, drawn
// from [b/2, b].
func (p *Pipeline) backoff(attempts int) time.Duration {
	b := p.opts.RetryMin
	for i := 1; i < attempts && b < p.opts.RetryMax; i++ {
		b *= 2
	}
	b = min(b, p.opts.RetryMax)
	return b/2 + rand.N(b/2+1)
}

// permanent reports whether a retry cannot fix err: the namespace is gone
// (a node learns of a deletion after the others) or the key is malformed.
func permanent(err error) bool {
	switch abacus.ErrorCode(err) {
	case abacus.NotFound, abacus.InvalidArgument:
		return true
	}
	return false
}

// failure is a failed rollup waiting to be logged.
type failure struct {
	key      Key
	err      error
	attempts int
}

// logFailure logs f unless a failure was logged less than ErrorLogInterval
// ago: when a store is down every counter fails, and one line says as much
// as a million.
func (p *Pipeline) logFailure(f failure) {
	ok, suppressed := p.errs.allow(time.Now())
	if !ok {
		return
	}
	p.opts.Logger.Warn("rollup failed",
		slog.String("namespace", f.key.NS.Name),
		slog.String("counter", f.key.Counter),
		slog.Int("attempts", f.attempts),
		slog.Bool("retry", !permanent(f.err)),
		slog.Int("suppressed", suppressed),
		slog.Any("err", f.err))
}

// errLimiter lets one event through per interval and counts the others.
type errLimiter struct {
	every      time.Duration
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether an event at now may be logged and, if so, how many
// were held back since the last one.
func (l *errLimiter) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	l.last, suppressed, l.suppressed = now, l.suppressed, 0
	return true, suppressed
}
