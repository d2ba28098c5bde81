package client

import (
	"context"
	"fmt"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/abacus-dev/abacus"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// AddCount adds delta (positive or negative, not zero) to a counter. It
// stamps the add with a new idempotency token and the current time. On an
// EVENTUAL or ACCURATE namespace it retries (and hedges) with them, and the
// server applies the add at most once; on a BEST_EFFORT namespace, or one
// whose type the client does not know yet, it sends the add once, unless
// WithBestEffortRetries is on. An error after which the add may have been
// applied is an *AmbiguousError.
//
// With batching on (the default), concurrent calls are sent together in one
// AddCounts RPC while an earlier one is in flight; a call that finds nothing
// in flight is sent at once. If ctx ends while the call waits, AddCount
// returns: with ctx's error if the add had not been sent yet (it never will
// be), and otherwise with an *AmbiguousError, as the batch carrying the add
// may still be applied.
func (c *Client) AddCount(ctx context.Context, namespace, counter string, delta int64) error {
	if err := c.checkAdd(namespace, counter, delta); err != nil {
		return err
	}
	at := c.o.now()
	c.touch(namespace, at)
	if !c.o.batching {
		it := c.newAdd(namespace, counter, delta, at)
		return c.addOne(ctx, &it, false)
	}
	_, err := c.adds.submit(ctx, c.newAdd(namespace, counter, delta, at))
	return err
}

// checkAdd refuses, before any token is made, calls that the server would
// refuse anyway: a closed client, and items that would make a whole natural
// batch fail (and its items be re-sent one by one).
func (c *Client) checkAdd(namespace, counter string, delta int64) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if delta == 0 {
		return status.Error(codes.InvalidArgument, "delta must not be zero")
	}
	return checkRef(namespace, counter)
}

// addRequest makes an add's request, stamped with a new idempotency key,
// and notes the write to the namespace (see counterTypes.touch).
func (c *Client) addRequest(namespace, counter string, delta int64) *abacusv1.AddCountRequest {
	key := c.idempotencyToken()
	c.touch(namespace, key.GetGenerationTime().AsTime())
	return &abacusv1.AddCountRequest{Namespace: namespace, CounterName: counter, Delta: delta, IdempotencyToken: key}
}

func checkRef(namespace, counter string) error {
	if namespace == "" {
		return status.Error(codes.InvalidArgument, "namespace is required")
	}
	if counter == "" {
		return status.Error(codes.InvalidArgument, "counter_name is required")
	}
	return nil
}

// AddAndGetCount adds delta to a counter, like AddCount (retried and hedged
// as it is), and returns a count (for ACCURATE namespaces, the count
// including this add; see the README for the other types). It is never
// batched.
func (c *Client) AddAndGetCount(ctx context.Context, namespace, counter string, delta int64) (int64, error) {
	if err := c.checkAdd(namespace, counter, delta); err != nil {
		return 0, err
	}
	return c.addAndGet(ctx, c.addRequest(namespace, counter, delta))
}

// addAndGet sends an AddAndGetCount, retried and hedged if it may be.
func (c *Client) addAndGet(ctx context.Context, req *abacusv1.AddCountRequest) (int64, error) {
	tok, at := keyOf(req.IdempotencyToken)
	resp, maybe, err := invoke(c, ctx, c.againWrite(req.GetNamespace()), func(ctx context.Context, cn *conn) (*abacusv1.AddAndGetCountResponse, error) {
		return cn.cli.AddAndGetCount(ctx, req)
	})
	return resp.GetCount(), writeError(err, maybe, tok, at)
}

// GetCount returns the count of a counter (0 for one never written).
// Concurrent calls are batched like AddCount's, into GetCounts RPCs; a call
// whose ctx ends stops waiting and returns ctx's error.
func (c *Client) GetCount(ctx context.Context, namespace, counter string) (int64, error) {
	if c.closed.Load() {
		return 0, ErrClosed
	}
	if err := checkRef(namespace, counter); err != nil {
		return 0, err
	}
	it := item{ns: namespace, counter: counter}
	if !c.o.batching {
		return c.getOne(ctx, getRequest(&it))
	}
	return c.gets.submit(ctx, it)
}

// ClearCount resets a counter to zero, with an idempotency token, retries
// and hedges like AddCount: on a BEST_EFFORT namespace it is sent once (a
// clear sent again could wipe adds made in between), unless
// WithBestEffortRetries is on. It is never batched.
func (c *Client) ClearCount(ctx context.Context, namespace, counter string) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := checkRef(namespace, counter); err != nil {
		return err
	}
	req := &abacusv1.ClearCountRequest{Namespace: namespace, CounterName: counter, IdempotencyToken: c.idempotencyToken()}
	c.touch(namespace, req.IdempotencyToken.GetGenerationTime().AsTime())
	return c.clear(ctx, req)
}

// clear sends a ClearCount, retried and hedged if it may be.
func (c *Client) clear(ctx context.Context, req *abacusv1.ClearCountRequest) error {
	tok, at := keyOf(req.IdempotencyToken)
	_, maybe, err := invoke(c, ctx, c.againWrite(req.GetNamespace()), func(ctx context.Context, cn *conn) (*abacusv1.ClearCountResponse, error) {
		return cn.cli.ClearCount(ctx, req)
	})
	return writeError(err, maybe, tok, at)
}

// Add is one item of AddCounts.
type Add struct {
	Namespace, Counter string
	Delta              int64
}

// Ref names one counter, for GetCounts.
type Ref struct{ Namespace, Counter string }

// AddCounts applies many adds, in AddCounts RPCs of up to WithMaxBatch
// items, sent one after the other. Each RPC is all-or-nothing: one bad item
// fails it (its message names the item as adds[i], i counted from the
// start of that RPC) and nothing of it is written. AddCounts stops at the
// first failed RPC; the RPCs before it were applied, so with more items than
// WithMaxBatch the call as a whole is not atomic, and its error says which
// items failed. Every item gets its own idempotency token and all share one
// generation time (see AmbiguousError), kept across retries. An RPC is
// retried and hedged only if every item's namespace is known to be EVENTUAL
// or ACCURATE (or WithBestEffortRetries is on): one BEST_EFFORT item makes
// it go out once, and a failure after which it may have been applied an
// *AmbiguousError.
func (c *Client) AddCounts(ctx context.Context, adds []Add) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if len(adds) == 0 {
		return nil
	}
	base := c.tokens.next()
	now := c.o.now()
	ss := make([]*slot, len(adds))
	slots := make([]slot, len(adds))
	for i, a := range adds {
		if i == 0 || a.Namespace != adds[i-1].Namespace {
			c.touch(a.Namespace, now)
		}
		slots[i].it = tokenItem(a.Namespace, a.Counter, a.Delta, abacus.Token{ID: base + "/" + strconv.Itoa(i), Time: now})
		ss[i] = &slots[i]
	}
	for lo := 0; lo < len(ss); lo += c.o.maxBatch {
		hi := min(lo+c.o.maxBatch, len(ss))
		if _, maybe, err := c.addsRPC(ctx, ss[lo:hi]); err != nil {
			return chunkError(writeError(err, maybe, base, now), "adds", lo, hi, len(ss))
		}
	}
	return nil
}

// addsRPC sends the items of ss in one AddCounts RPC, written from
// them (see addsMsg), retried as AddCounts is.
func (c *Client) addsRPC(ctx context.Context, ss []*slot) (struct{}, bool, error) {
	return invoke(c, ctx, c.againSlots(ss), func(ctx context.Context, cn *conn) (struct{}, error) {
		c.stats.addRPCs.Add(1)
		c.stats.addItems.Add(int64(len(ss)))
		return struct{}{}, cn.ack(ctx, abacusv1.CounterService_AddCounts_FullMethodName, c.wire(&addsMsg{items: ss}))
	})
}

// GetCounts returns the counts of many counters, in order, read in GetCounts
// RPCs of up to WithMaxBatch counters. It is not batched with other calls.
func (c *Client) GetCounts(ctx context.Context, refs []Ref) ([]int64, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	counts := make([]int64, 0, len(refs))
	for lo := 0; lo < len(refs); lo += c.o.maxBatch {
		hi := min(lo+c.o.maxBatch, len(refs))
		req := &abacusv1.GetCountsRequest{Counters: make([]*abacusv1.GetCountRequest, hi-lo)}
		for i, r := range refs[lo:hi] {
			req.Counters[i] = &abacusv1.GetCountRequest{Namespace: r.Namespace, CounterName: r.Counter}
		}
		resp, _, err := invoke(c, ctx, nil, func(ctx context.Context, cn *conn) (*abacusv1.GetCountsResponse, error) {
			c.stats.getRPCs.Add(1)
			c.stats.getItems.Add(int64(len(req.Counters)))
			return cn.cli.GetCounts(ctx, req)
		})
		if err == nil && len(resp.GetCounts()) != hi-lo {
			err = status.Errorf(codes.Internal, "abacus client: GetCounts answered %d counts for %d counters", len(resp.GetCounts()), hi-lo)
		}
		if err != nil {
			return nil, chunkError(err, "counters", lo, hi, len(refs))
		}
		for _, n := range resp.GetCounts() {
			counts = append(counts, n.GetCount())
		}
	}
	return counts, nil
}

// chunkError says which items of a batch method failed when the method
// needed more than one RPC; with one RPC the error is the RPC's own.
func chunkError(err error, field string, lo, hi, n int) error {
	if lo == 0 && hi == n {
		return err
	}
	return fmt.Errorf("abacus client: %s[%d:%d] of %d failed (the RPCs for the items before %d succeeded): %w", field, lo, hi, n, lo, err)
}
