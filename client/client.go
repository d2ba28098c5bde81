package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// Client is a Go client of an abacus node's CounterService. It is safe for
// concurrent use, and meant to be shared: natural batching only pays off
// when many goroutines call through the same Client.
type Client struct {
	o      options
	conns  []conn
	rr     atomic.Uint32
	tokens tokens
	stats  stats
	// types caches the namespaces' counter types; nil with
	// WithBestEffortRetries on, when the client does not need them.
	types *counterTypes

	// root is cancelled by Close; natural batches, which belong to no single
	// caller, run under it.
	root   context.Context
	cancel context.CancelFunc
	closed atomic.Bool
	once   sync.Once

	adds, gets *batcher
}

// New returns a client of the node at addr ("host:port", or any target
// grpc.NewClient accepts). It does not connect: the first call does, and a
// node that is down shows up as UNAVAILABLE errors of calls (retried as
// configured). The connections use insecure (plaintext) credentials unless
// WithDialOptions gives others.
func New(addr string, opts ...Option) (*Client, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("abacus client: %w", err)
	}
	if o.inFlight == 0 {
		o.inFlight = o.conns
	}
	c := &Client{o: o}
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, o.dial...)
	for range o.conns {
		cc, err := grpc.NewClient(addr, dial...)
		if err != nil {
			c.closeConns()
			return nil, fmt.Errorf("abacus client: %s: %w", addr, err)
		}
		c.conns = append(c.conns, conn{cc: cc, cli: abacusv1.NewCounterServiceClient(cc), ns: abacusv1.NewNamespaceServiceClient(cc)})
	}
	c.root, c.cancel = context.WithCancel(context.Background())
	if !o.bestEffortRetries {
		c.types = newCounterTypes(c)
	}
	c.adds = newBatcher(c, sendAdds, true)
	c.gets = newBatcher(c, sendGets, false)
	return c, nil
}

// Close fails calls still queued for a natural batch with ErrClosed (they
// were never sent), cancels the calls in flight (a write among them returns
// an *AmbiguousError), waits for the client's goroutines and closes the
// connections. Calls made after Close return ErrClosed. Close is idempotent.
func (c *Client) Close() error {
	var err error
	c.once.Do(func() {
		c.closed.Store(true)
		c.adds.close()
		c.gets.close()
		if c.types != nil {
			c.types.close()
		}
		c.cancel()
		if c.types != nil {
			c.types.wait()
		}
		err = c.closeConns()
		c.adds.wait()
		c.gets.wait()
	})
	return err
}

func (c *Client) closeConns() error {
	var errs []error
	for _, cn := range c.conns {
		errs = append(errs, cn.cc.Close())
	}
	return errors.Join(errs...)
}

// Unary returns the generated CounterService client, with none of this
// client's tokens, retries, hedging or batching: for plain unary calls (a
// benchmark of the RPC floor, say) and for writes with a token of the
// caller's choosing. With several connections it takes them in turn.
func (c *Client) Unary() abacusv1.CounterServiceClient {
	if len(c.conns) == 1 {
		return c.conns[0].cli
	}
	return roundRobin{c}
}

// pick returns the connection for the next attempt, in turn, so that a retry
// or a hedge goes to another connection than the attempt before it.
func (c *Client) pick() *conn {
	if len(c.conns) == 1 {
		return &c.conns[0]
	}
	return &c.conns[int(c.rr.Add(1)%uint32(len(c.conns)))]
}

// conn is one gRPC connection, with the generated clients over it.
type conn struct {
	cc  *grpc.ClientConn
	cli abacusv1.CounterServiceClient
	ns  abacusv1.NamespaceServiceClient // for Namespaces and counter type lookups
}

// ack sends a write whose reply carries nothing the client needs: AddCount
// and AddCounts replies echo the tokens the client chose. The reply is not
// decoded at all (see wireCodec), so the echoed fields cost neither a
// message, a token and a time per item, nor a copy; and an addsMsg request
// is written straight from its items.
func (cn *conn) ack(ctx context.Context, method string, req proto.Message) error {
	return cn.cc.Invoke(ctx, method, req, new(emptypb.Empty), wireCall...)
}

// roundRobin is the generated client over all connections in turn.
type roundRobin struct{ c *Client }

func (r roundRobin) AddCount(ctx context.Context, in *abacusv1.AddCountRequest, opts ...grpc.CallOption) (*abacusv1.AddCountResponse, error) {
	return r.c.pick().cli.AddCount(ctx, in, opts...)
}

func (r roundRobin) AddAndGetCount(ctx context.Context, in *abacusv1.AddCountRequest, opts ...grpc.CallOption) (*abacusv1.AddAndGetCountResponse, error) {
	return r.c.pick().cli.AddAndGetCount(ctx, in, opts...)
}

func (r roundRobin) GetCount(ctx context.Context, in *abacusv1.GetCountRequest, opts ...grpc.CallOption) (*abacusv1.GetCountResponse, error) {
	return r.c.pick().cli.GetCount(ctx, in, opts...)
}

func (r roundRobin) ClearCount(ctx context.Context, in *abacusv1.ClearCountRequest, opts ...grpc.CallOption) (*abacusv1.ClearCountResponse, error) {
	return r.c.pick().cli.ClearCount(ctx, in, opts...)
}

func (r roundRobin) AddCounts(ctx context.Context, in *abacusv1.AddCountsRequest, opts ...grpc.CallOption) (*abacusv1.AddCountsResponse, error) {
	return r.c.pick().cli.AddCounts(ctx, in, opts...)
}

func (r roundRobin) GetCounts(ctx context.Context, in *abacusv1.GetCountsRequest, opts ...grpc.CallOption) (*abacusv1.GetCountsResponse, error) {
	return r.c.pick().cli.GetCounts(ctx, in, opts...)
}

func (r roundRobin) ListEvents(ctx context.Context, in *abacusv1.ListEventsRequest, opts ...grpc.CallOption) (*abacusv1.ListEventsResponse, error) {
	return r.c.pick().cli.ListEvents(ctx, in, opts...)
}

func (r roundRobin) ExportEvents(ctx context.Context, in *abacusv1.ExportEventsRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[abacusv1.ExportEventsResponse], error) {
	return r.c.pick().cli.ExportEvents(ctx, in, opts...)
}

func (r roundRobin) Recount(ctx context.Context, in *abacusv1.RecountRequest, opts ...grpc.CallOption) (*abacusv1.RecountResponse, error) {
	return r.c.pick().cli.Recount(ctx, in, opts...)
}

func (r roundRobin) ListCounters(ctx context.Context, in *abacusv1.ListCountersRequest, opts ...grpc.CallOption) (*abacusv1.ListCountersResponse, error) {
	return r.c.pick().cli.ListCounters(ctx, in, opts...)
}

// Stats counts what a client has sent since it was created. Every field
// counts attempts, so retries and hedges are included.
type Stats struct {
	// AddRPCs and AddItems count AddCount and AddCounts RPCs (natural
	// batches, the AddCounts method and lone adds) and the adds they carried.
	AddRPCs, AddItems int64
	// GetRPCs and GetItems are the same for GetCount and GetCounts.
	GetRPCs, GetItems int64
	// Retries counts attempts made after a failed one; Hedges counts hedged
	// duplicates sent.
	Retries, Hedges int64
	// Fallbacks counts items re-sent on their own after their natural batch
	// was refused as a whole.
	Fallbacks int64
	// Lookups counts GetNamespace RPCs made to learn namespaces' counter
	// types (see WithCounterTypeTTL): one per namespace and TTL, not one per
	// write.
	Lookups int64
}

type stats struct {
	addRPCs, addItems, getRPCs, getItems, retries, hedges, fallbacks, lookups atomic.Int64
}

// Stats returns the client's counts so far; with them a benchmark can report
// the average natural batch size (AddItems / AddRPCs).
func (c *Client) Stats() Stats {
	s := &c.stats
	return Stats{
		AddRPCs: s.addRPCs.Load(), AddItems: s.addItems.Load(),
		GetRPCs: s.getRPCs.Load(), GetItems: s.getItems.Load(),
		Retries: s.retries.Load(), Hedges: s.hedges.Load(), Fallbacks: s.fallbacks.Load(),
		Lookups: s.lookups.Load(),
	}
}
