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
// (see againAdds). So a batch that mixes items known to be retry-safe
// (EVENTUAL, ACCURATE) with others (BEST_EFFORT, type unknown) goes out as
// two RPCs, side by side: the safe items keep their retries, whatever
// happens to the others.
func sendAdds(c *Client, b *batch) {
	idx := b.live()
	if c.types == nil || len(idx) == 1 {
		sendAddPart(c, b, idx)
		return
	}
	// Each namespace's type is read once per batch: a lookup that lands
	// while the loop runs must not split one namespace's items in two RPCs.
	var safe, other []int
	known := make(map[string]bool, 1)
	for _, i := range idx {
		ns := b.slots[i].add.GetNamespace()
		ok, seen := known[ns]
		if !seen {
			ok, _ = c.types.durable(ns)
			known[ns] = ok
		}
		if ok {
			safe = append(safe, i)
		} else {
			other = append(other, i)
		}
	}
	if len(safe) == 0 || len(other) == 0 {
		sendAddPart(c, b, idx)
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { sendAddPart(c, b, other) })
	sendAddPart(c, b, safe)
	wg.Wait()
}

// sendAddPart sends the adds of the slots idx, live slots of b, in one RPC:
// see sendAdds.
func sendAddPart(c *Client, b *batch, idx []int) {
	if len(idx) == 1 && !c.o.directBatch {
		s := &b.slots[idx[0]]
		s.err = c.addOne(b.ctx, s.add, false)
		return
	}
	req := &abacusv1.AddCountsRequest{Adds: make([]*abacusv1.AddCountRequest, len(idx))}
	for j, i := range idx {
		req.Adds[j] = b.slots[i].add
	}
	_, maybe, err := invoke(c, b.ctx, c.againAdds(req.Adds), func(ctx context.Context, cn *conn) (struct{}, error) {
		c.stats.addRPCs.Add(1)
		c.stats.addItems.Add(int64(len(req.Adds)))
		return struct{}{}, cn.ack(ctx, abacusv1.CounterService_AddCounts_FullMethodName, req)
	})
	if err == nil {
		return
	}
	if len(idx) > 1 && !retryable(err) && b.ctx.Err() == nil {
		// Each item alone; but an item that the failed batch may have
		// applied is sent again only if it may be (see againWrite).
		resend := idx
		if maybe {
			resend = nil
			for _, i := range idx {
				s := &b.slots[i]
				if c.mayAgain(s.ctx, c.againWrite(s.add.GetNamespace())) {
					resend = append(resend, i)
				} else {
					s.err = addError(s, err, maybe)
				}
			}
		}
		alone(c, b, resend, func(s *slot) { s.err = c.addOne(s.ctx, s.add, maybe) })
		return
	}
	for _, i := range idx {
		s := &b.slots[i]
		s.err = addError(s, err, maybe)
	}
}

// addError is writeError for the add of slot s.
func addError(s *slot, err error, maybe bool) error {
	tok, at := keyOf(s.add.GetIdempotencyToken())
	return writeError(err, maybe, tok, at)
}

// sendGets sends a natural batch of reads: alone as the unary GetCount, or
// as one GetCounts; a refused GetCounts (say one counter names an unknown
// namespace) is re-sent item by item.
func sendGets(c *Client, b *batch) {
	idx := b.live()
	if len(idx) == 1 && !c.o.directBatch {
		s := &b.slots[idx[0]]
		s.count, s.err = c.getOne(b.ctx, s.get)
		return
	}
	req := &abacusv1.GetCountsRequest{Counters: make([]*abacusv1.GetCountRequest, len(idx))}
	for j, i := range idx {
		req.Counters[j] = b.slots[i].get
	}
	resp, _, err := invoke(c, b.ctx, nil, func(ctx context.Context, cn *conn) (*abacusv1.GetCountsResponse, error) {
		c.stats.getRPCs.Add(1)
		c.stats.getItems.Add(int64(len(req.Counters)))
		return cn.cli.GetCounts(ctx, req)
	})
	if err == nil && len(resp.GetCounts()) != len(idx) {
		err = status.Errorf(codes.Internal, "abacus client: GetCounts answered %d counts for %d counters", len(resp.GetCounts()), len(idx))
	}
	if err == nil {
		for j, i := range idx {
			b.slots[i].count = resp.GetCounts()[j].GetCount()
		}
		return
	}
	if len(idx) > 1 && !retryable(err) && b.ctx.Err() == nil {
		alone(c, b, idx, func(s *slot) { s.count, s.err = c.getOne(s.ctx, s.get) })
		return
	}
	for _, i := range idx {
		b.slots[i].err = err
	}
}

// alone re-sends each live item of a refused batch on its own, bounded by
// its caller's context; items whose callers have left are skipped.
func alone(c *Client, b *batch, idx []int, send func(*slot)) {
	sem := make(chan struct{}, fallbackConcurrency)
	var wg sync.WaitGroup
	for _, i := range idx {
		s := &b.slots[i]
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
func (c *Client) addOne(ctx context.Context, req *abacusv1.AddCountRequest, maybe bool) error {
	tok, at := keyOf(req.GetIdempotencyToken())
	_, m, err := invoke(c, ctx, c.againWrite(req.GetNamespace()), func(ctx context.Context, cn *conn) (struct{}, error) {
		c.stats.addRPCs.Add(1)
		c.stats.addItems.Add(1)
		return struct{}{}, cn.ack(ctx, abacusv1.CounterService_AddCount_FullMethodName, req)
	})
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
