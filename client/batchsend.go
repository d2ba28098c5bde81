package client

import (
	"context"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// fallbackConcurrency bounds the unary calls that re-send a refused batch's
// items one by one: enough to finish a large batch quickly, few enough not
// to flood the server on what is an error path.
const fallbackConcurrency = 32

// sendAdds sends a natural batch of adds. A batch of one goes out as the
// unary AddCount: it measured no slower than an AddCounts of one, and its
// errors need no re-sending. A larger batch goes out as one AddCounts,
// retried whole with the same tokens; if the server refuses it (AddCounts is
// all-or-nothing: one bad item fails the call and nothing is written), each
// item is sent again alone, so that only the bad item's caller sees the
// error.
//
// A batch is retried and hedged only if all its items may be sent again
// (see againSlots). So a batch that mixes items known to be retry-safe
// (EVENTUAL, ACCURATE) with others (BEST_EFFORT, type unknown) goes out as
// two RPCs, side by side: the safe items keep their retries, whatever
// happens to the others.
func sendAdds(c *Client, b *batch) {
	live := b.live()
	if c.types == nil || len(live) == 1 || oneNamespace(live) {
		sendAddPart(c, b, live)
		return
	}
	// Each namespace's type is read once per batch: a lookup that lands
	// while the loop runs must not split one namespace's items in two RPCs.
	var safe, other []*slot
	known := make(map[string]bool, 2)
	for _, s := range live {
		ns := s.it.ns
		ok, seen := known[ns]
		if !seen {
			ok, _ = c.types.durable(ns)
			known[ns] = ok
		}
		if ok {
			safe = append(safe, s)
		} else {
			other = append(other, s)
		}
	}
	if len(safe) == 0 || len(other) == 0 {
		sendAddPart(c, b, live)
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { sendAddPart(c, b, other) })
	sendAddPart(c, b, safe)
	wg.Wait()
}

// oneNamespace reports whether the slots' items are all of one namespace:
// the usual batch, which has one type and needs no split.
func oneNamespace(slots []*slot) bool {
	for _, s := range slots[1:] {
		if s.it.ns != slots[0].it.ns {
			return false
		}
	}
	return true
}

// sendAddPart sends the adds of the slots ss, live slots of b, in one RPC:
// see sendAdds.
func sendAddPart(c *Client, b *batch, ss []*slot) {
	if len(ss) == 1 && !c.o.directBatch {
		s := ss[0]
		s.err = c.addOne(b.ctx, &s.it, false)
		return
	}
	_, maybe, err := c.addsRPC(b.ctx, ss)
	if err == nil {
		return
	}
	if len(ss) > 1 && !retryable(err) && b.ctx.Err() == nil {
		// Each item alone; but an item that the failed batch may have
		// applied is sent again only if it may be (see againWrite).
		resend := ss
		if maybe {
			resend = nil
			for _, s := range ss {
				if c.mayAgain(s.ctx, c.againWrite(s.it.ns)) {
					resend = append(resend, s)
				} else {
					s.err = addError(s, err, maybe)
				}
			}
		}
		alone(c, resend, func(s *slot) { s.err = c.addOne(s.ctx, &s.it, maybe) })
		return
	}
	for _, s := range ss {
		s.err = addError(s, err, maybe)
	}
}

// addError is writeError for the add of slot s.
func addError(s *slot, err error, maybe bool) error {
	tok, at := s.it.key()
	return writeError(err, maybe, tok, at)
}

// getRequest is the request of a read.
func getRequest(it *item) *abacusv1.GetCountRequest {
	return &abacusv1.GetCountRequest{Namespace: it.ns, CounterName: it.counter}
}

// sendGets sends a natural batch of reads: alone as the unary GetCount, or
// as one GetCounts; a refused GetCounts (say one counter names an unknown
// namespace) is re-sent item by item.
func sendGets(c *Client, b *batch) {
	live := b.live()
	if len(live) == 1 && !c.o.directBatch {
		s := live[0]
		s.count, s.err = c.getOne(b.ctx, getRequest(&s.it))
		return
	}
	req := &abacusv1.GetCountsRequest{Counters: make([]*abacusv1.GetCountRequest, len(live))}
	for j, s := range live {
		req.Counters[j] = getRequest(&s.it)
	}
	resp, _, err := invoke(c, b.ctx, nil, func(ctx context.Context, cn *conn) (*abacusv1.GetCountsResponse, error) {
		c.stats.getRPCs.Add(1)
		c.stats.getItems.Add(int64(len(req.Counters)))
		return cn.cli.GetCounts(ctx, req)
	})
	if err == nil && len(resp.GetCounts()) != len(live) {
		err = status.Errorf(codes.Internal, "abacus client: GetCounts answered %d counts for %d counters", len(resp.GetCounts()), len(live))
	}
	if err == nil {
		for j, s := range live {
			s.count = resp.GetCounts()[j].GetCount()
		}
		return
	}
	if len(live) > 1 && !retryable(err) && b.ctx.Err() == nil {
		alone(c, live, func(s *slot) { s.count, s.err = c.getOne(s.ctx, getRequest(&s.it)) })
		return
	}
	for _, s := range live {
		s.err = err
	}
}

// alone re-sends each live item of a refused batch on its own, bounded by
// its caller's context; items whose callers have left are skipped.
func alone(c *Client, ss []*slot, send func(*slot)) {
	sem := make(chan struct{}, fallbackConcurrency)
	var wg sync.WaitGroup
	for _, s := range ss {
		if s.ctx.Err() != nil {
			s.err = s.ctx.Err()
			continue
		}
		c.stats.fallbacks.Add(1)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			send(s)
		})
	}
	wg.Wait()
}

// addOne sends one add with the unary AddCount, and retries it if it may
// (see againWrite); maybe says that an earlier attempt (of a batch that
// carried it) may have applied it.
func (c *Client) addOne(ctx context.Context, it *item, maybe bool) error {
	_, m, err := invoke(c, ctx, c.againWrite(it.ns), func(ctx context.Context, cn *conn) (struct{}, error) {
		c.stats.addRPCs.Add(1)
		c.stats.addItems.Add(1)
		return struct{}{}, cn.ack(ctx, abacusv1.CounterService_AddCount_FullMethodName, c.wire(&addsMsg{one: it}))
	})
	if err == nil {
		return nil
	}
	tok, at := it.key()
	return writeError(err, maybe || m, tok, at)
}

// getOne reads one counter with the unary GetCount and retries.
func (c *Client) getOne(ctx context.Context, req *abacusv1.GetCountRequest) (int64, error) {
	resp, _, err := invoke(c, ctx, nil, func(ctx context.Context, cn *conn) (*abacusv1.GetCountResponse, error) {
		c.stats.getRPCs.Add(1)
		c.stats.getItems.Add(1)
		return cn.cli.GetCount(ctx, req)
	})
	return resp.GetCount(), err
}
