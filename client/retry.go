package client

import (
	"context"
	"math/rand/v2"
	"time"
)

// attempt is one RPC of a call, on the connection it is given.
type attempt[T any] func(ctx context.Context, cn *conn) (T, error)

// invoke runs fn, retrying it while it fails with a retryable code, with
// exponential backoff and jitter, up to WithRetries times and while ctx
// lasts. fn must send the same request every time: a write's idempotency
// key is fixed before invoke.
//
// A retry may reach the server after the write's accept window has closed:
// the server then answers it from the stored event (the reply of a first
// attempt if the write was counted, FAILED_PRECONDITION if it was not and
// never will be), so a late retry settles what a lost reply left open.
//
// a says whether the call may be sent again at all, as a retry or a hedge
// (nil: always). A write to a BEST_EFFORT namespace may not: the server does
// not deduplicate it, so the key would not keep it from counting twice.
//
// maybe reports whether an attempt may have been applied: it was answered
// with an error that does not rule that out, and no later answer did.
func invoke[T any](c *Client, ctx context.Context, a again, fn attempt[T]) (res T, maybe bool, err error) {
	pause := c.o.backoff
	for try := 0; ; try++ {
		res, err = hedged(c, ctx, a, fn)
		if err == nil {
			return res, maybe, nil
		}
		switch {
		case settled(err) && !c.o.keepAmbiguous:
			// The server stores no event of this key and payload, and
			// never will (it fences out attempts still in flight before
			// it says so): no earlier attempt was applied either.
			maybe = false
		case !refused(err):
			maybe = true
		}
		if !retryable(err) || try >= c.o.retries || ctx.Err() != nil || !c.mayAgain(ctx, a) {
			return res, maybe, err
		}
		// Equal jitter: half the pause is fixed, half random, so that clients
		// failed by one outage do not retry in lockstep.
		wait := pause/2 + rand.N(pause/2+1)
		if !sleep(ctx, c.root, wait) {
			return res, maybe, err
		}
		c.stats.retries.Add(1)
		pause = min(2*pause, c.o.maxBackoff)
	}
}

// sleep waits for d, or until ctx or the client ends; it reports whether the
// whole pause passed.
func sleep(ctx, root context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-root.Done():
		return false
	}
}

// hedged makes one attempt of fn, bounded by the attempt timeout. With
// hedging on, when the first request has not answered after the hedging
// delay, an identical one goes out on the next connection, if a allows it
// (when a cannot tell yet, the hedge waits until it can); the first answer
// wins and the other is cancelled. A retryable failure of one request does
// not win while the other may still succeed.
//
// hedged returns only once every request it started has returned (the
// loser, cancelled, returns at once): a request reads what it sends, say
// the slots of a natural batch, until then, and the batch is recycled after
// its send.
func hedged[T any](c *Client, ctx context.Context, a again, fn attempt[T]) (T, error) {
	if c.o.attemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.o.attemptTimeout)
		defer cancel()
	}
	if c.o.hedge <= 0 {
		return fn(ctx, c.pick())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		v   T
		err error
	}
	answers := make(chan answer, 2) // buffered: the loser never blocks
	send := func() {
		v, err := fn(ctx, c.pick())
		answers <- answer{v, err}
	}
	go send()
	timer := time.NewTimer(c.o.hedge)
	defer timer.Stop()
	pending, hedge := 1, timer.C
	var decide <-chan struct{} // set while the hedge waits for a to tell
	for {
		select {
		case ans := <-answers:
			pending--
			if ans.err == nil || !retryable(ans.err) || pending == 0 {
				cancel()
				for ; pending > 0; pending-- {
					<-answers
				}
				return ans.v, ans.err
			}
			continue
		case <-hedge:
			hedge = nil
		case <-decide:
		}
		ok, wait := a.check()
		if decide = wait; ok {
			pending++
			c.stats.hedges.Add(1)
			go send()
		}
	}
}
