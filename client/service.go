package client

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/abacus-dev/abacus"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// Service returns the client as an abacus.CounterService, so that code
// written against that interface (the CLI, the load generator) runs the same
// over the network as in-process over package counter.
//
// Its calls follow the rules of the methods above: a write is retried and
// hedged only where the server deduplicates it (see WithBestEffortRetries),
// Add and Get join natural batches when batching is on, and Add, AddAndGet
// and Clear are sent as AddCount, AddAndGetCount and ClearCount. AddBatch
// and GetBatch are one AddCounts or GetCounts RPC each, whatever
// WithMaxBatch says, because the interface makes AddBatch all or none; the
// server refuses more than abacus.MaxBatch items.
//
// A request that carries a token is sent with exactly that token, on every
// attempt, so that a caller can rerun a write whose outcome it does not
// know. One that carries none gets a new one, as AddCount's writes do
// (AddBatch items: a shared random prefix and "/" and the item's index, and
// one generation time). The tokens used are returned, with an error too.
//
// Every error is an *abacus.Error, found by errors.As or abacus.ErrorCode,
// with the server's code and message and the wire error as its cause
// (status.Code still reads codes outside abacus's set, such as
// UNIMPLEMENTED, which are Internal here). A write that may have been
// applied returns an *AmbiguousError around that *abacus.Error. A client
// that is closed answers Canceled, wrapping ErrClosed.
func (c *Client) Service() abacus.CounterService { return service{c} }

// service is the abacus.CounterService of a Client.
type service struct{ c *Client }

var _ abacus.CounterService = service{}

// Add adds r.Delta to a counter and returns the token it was sent with.
func (s service) Add(ctx context.Context, r abacus.AddRequest) (abacus.Token, error) {
	c := s.c
	if c.o.batching {
		// An invalid item would fail its whole natural batch and make the
		// client re-send every item alone: refuse it here, with the
		// server's own check and message.
		if err := r.Check(); err != nil {
			return r.Token, err
		}
	}
	if c.closed.Load() {
		return r.Token, serviceError(ErrClosed)
	}
	tok := c.tokenFor(r.Namespace, r.Token)
	it := item{ns: r.Namespace, counter: r.Counter, delta: r.Delta, id: tok.ID, noTime: tok.Time.IsZero()}
	if !it.noTime {
		it.sec, it.nanos = tok.Time.Unix(), int32(tok.Time.Nanosecond())
	}
	if !c.o.batching {
		one := it // a copy, so that it stays on the stack on the batching path
		return tok, serviceError(c.addOne(ctx, &one, false))
	}
	_, err := c.adds.submit(ctx, it)
	return tok, serviceError(err)
}

// AddAndGet adds r.Delta and returns the count the server answered, and the
// token. It is never batched.
func (s service) AddAndGet(ctx context.Context, r abacus.AddRequest) (int64, abacus.Token, error) {
	req, tok, err := s.c.serviceAdd(r)
	if err != nil {
		return 0, tok, serviceError(err)
	}
	n, err := s.c.addAndGet(ctx, req)
	return n, tok, serviceError(err)
}

// Get returns a counter's count.
func (s service) Get(ctx context.Context, r abacus.Ref) (int64, error) {
	c := s.c
	if c.closed.Load() {
		return 0, serviceError(ErrClosed)
	}
	it := item{ns: r.Namespace, counter: r.Counter}
	if !c.o.batching {
		n, err := c.getOne(ctx, getRequest(&it))
		return n, serviceError(err)
	}
	// As for Add: a bad name must not fail the other reads of its batch.
	if err := r.Check(); err != nil {
		return 0, err
	}
	n, err := c.gets.submit(ctx, it)
	return n, serviceError(err)
}

// Clear resets a counter to zero with tok, or a new token if tok is zero,
// and returns the token used. It is never batched.
func (s service) Clear(ctx context.Context, r abacus.Ref, tok abacus.Token) (abacus.Token, error) {
	c := s.c
	if c.closed.Load() {
		return tok, serviceError(ErrClosed)
	}
	tok = c.tokenFor(r.Namespace, tok)
	req := &abacusv1.ClearCountRequest{Namespace: r.Namespace, CounterName: r.Counter, IdempotencyToken: tokenProto(tok)}
	return tok, serviceError(c.clear(ctx, req))
}

// AddBatch applies the adds rs in one AddCounts RPC, all or none, and
// returns their tokens. It is retried and hedged only if every item's
// namespace is known to deduplicate writes (see AddCounts). An
// *AmbiguousError carries the first item's key; the tokens returned beside
// it are every item's.
func (s service) AddBatch(ctx context.Context, rs []abacus.AddRequest) ([]abacus.Token, error) {
	c := s.c
	if c.closed.Load() {
		return nil, serviceError(ErrClosed)
	}
	toks := make([]abacus.Token, len(rs))
	ss := make([]*slot, len(rs))
	slots := make([]slot, len(rs))
	base, now := "", c.o.now()
	for i, r := range rs {
		if i == 0 || r.Namespace != rs[i-1].Namespace {
			c.touch(r.Namespace, now)
		}
		toks[i] = r.Token
		if r.Token == (abacus.Token{}) {
			if base == "" {
				base = c.tokens.next() + "/"
			}
			toks[i] = abacus.Token{ID: base + strconv.Itoa(i), Time: now}
		}
		slots[i].it = tokenItem(r.Namespace, r.Counter, r.Delta, toks[i])
		ss[i] = &slots[i]
	}
	_, maybe, err := c.addsRPC(ctx, ss)
	if err != nil {
		var first abacus.Token
		if len(toks) > 0 {
			first = toks[0]
		}
		return toks, serviceError(writeError(err, maybe, first.ID, first.Time))
	}
	return toks, nil
}

// GetBatch reads the counters rs in one GetCounts RPC, retried as reads are.
func (s service) GetBatch(ctx context.Context, rs []abacus.Ref) ([]int64, error) {
	c := s.c
	if c.closed.Load() {
		return nil, serviceError(ErrClosed)
	}
	req := &abacusv1.GetCountsRequest{Counters: make([]*abacusv1.GetCountRequest, len(rs))}
	for i, r := range rs {
		req.Counters[i] = &abacusv1.GetCountRequest{Namespace: r.Namespace, CounterName: r.Counter}
	}
	resp, _, err := invoke(c, ctx, nil, func(ctx context.Context, cn *conn) (*abacusv1.GetCountsResponse, error) {
		c.stats.getRPCs.Add(1)
		c.stats.getItems.Add(int64(len(rs)))
		return cn.cli.GetCounts(ctx, req)
	})
	if err != nil {
		return nil, serviceError(err)
	}
	if len(resp.GetCounts()) != len(rs) {
		return nil, abacus.Errorf(abacus.Internal, "abacus client: GetCounts answered %d counts for %d counters", len(resp.GetCounts()), len(rs))
	}
	counts := make([]int64, len(rs))
	for i, n := range resp.GetCounts() {
		counts[i] = n.GetCount()
	}
	return counts, nil
}

// serviceAdd makes the request of an add, with r's token or a new one.
func (c *Client) serviceAdd(r abacus.AddRequest) (*abacusv1.AddCountRequest, abacus.Token, error) {
	if c.closed.Load() {
		return nil, r.Token, ErrClosed
	}
	tok := c.tokenFor(r.Namespace, r.Token)
	return &abacusv1.AddCountRequest{Namespace: r.Namespace, CounterName: r.Counter, Delta: r.Delta, IdempotencyToken: tokenProto(tok)}, tok, nil
}

// tokenFor returns the token a write to ns is sent with, tok when the
// caller chose one and a new one otherwise, and notes the write (see
// counterTypes.touch).
func (c *Client) tokenFor(ns string, tok abacus.Token) abacus.Token {
	if tok == (abacus.Token{}) {
		tok = c.NewToken()
		c.touch(ns, tok.Time)
		return tok
	}
	c.touch(ns, c.o.now())
	return tok
}

// NewToken returns a token such as the client gives a write that carries
// none: a random (version 4) UUID and the time of the client's clock. It is
// for callers that choose one half of a token and leave the other to the
// client, as the CLI's --token and --time flags do.
func (c *Client) NewToken() abacus.Token {
	return abacus.Token{ID: c.tokens.next(), Time: c.o.now()}
}

// tokenProto is the wire form of a token the caller chose: sent as it is,
// so that a token without a time reaches the server, which refuses it with
// its own message, instead of being stamped here.
func tokenProto(t abacus.Token) *abacusv1.IdempotencyToken {
	p := &abacusv1.IdempotencyToken{Token: t.ID}
	if !t.Time.IsZero() {
		p.GenerationTime = timestamppb.New(t.Time)
	}
	return p
}

// domainCodes maps the gRPC codes the server sends back to abacus's codes:
// the inverse of the server's one table (package api, wireCodes).
var domainCodes = map[codes.Code]abacus.Code{
	codes.Internal:           abacus.Internal,
	codes.InvalidArgument:    abacus.InvalidArgument,
	codes.NotFound:           abacus.NotFound,
	codes.AlreadyExists:      abacus.AlreadyExists,
	codes.FailedPrecondition: abacus.FailedPrecondition,
	codes.OutOfRange:         abacus.OutOfRange,
	codes.Unavailable:        abacus.Unavailable,
	codes.Canceled:           abacus.Canceled,
	codes.DeadlineExceeded:   abacus.DeadlineExceeded,
	codes.ResourceExhausted:  abacus.ResourceExhausted,
	codes.Unauthenticated:    abacus.Unauthenticated,
	codes.PermissionDenied:   abacus.PermissionDenied,
}

// serviceError turns an error of the client's own methods into the errors
// Service documents; nil stays nil and *abacus.Error values (the local
// checks) pass as they are.
func serviceError(err error) error {
	if err == nil {
		return nil
	}
	if amb, ok := errors.AsType[*AmbiguousError](err); ok {
		return &AmbiguousError{Token: amb.Token, Time: amb.Time, Err: domainError(amb.Err)}
	}
	return domainError(err)
}

func domainError(err error) error {
	if _, ok := errors.AsType[*abacus.Error](err); ok {
		return err
	}
	if errors.Is(err, ErrClosed) {
		return &abacus.Error{Code: abacus.Canceled, Msg: err.Error(), Err: err}
	}
	if s, ok := status.FromError(err); ok {
		code, known := domainCodes[s.Code()]
		if !known {
			code = abacus.Internal
		}
		e := &abacus.Error{Code: code, Msg: s.Message(), Err: err}
		for _, d := range s.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				e.RetryAfter = ri.GetRetryDelay().AsDuration()
			}
		}
		return e
	}
	// Context errors of a caller who left a natural batch.
	return &abacus.Error{Code: abacus.ErrorCode(err), Msg: err.Error(), Err: err}
}
