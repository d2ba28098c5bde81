package client

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// rpc is one request the fake received.
type rpc struct {
	method string
	req    proto.Message
}

// adds returns the adds an AddCount or AddCounts request carried.
func (r rpc) adds() []*abacusv1.AddCountRequest {
	switch m := r.req.(type) {
	case *abacusv1.AddCountRequest:
		return []*abacusv1.AddCountRequest{m}
	case *abacusv1.AddCountsRequest:
		return m.GetAdds()
	}
	return nil
}

// fake is an in-process CounterService that records every request, applies
// adds once per idempotency key (except on BEST_EFFORT namespaces, which,
// as on the real server, apply every request), and lets a test delay or
// fail requests through hook. A counter named "bad" is refused with
// INVALID_ARGUMENT, the whole AddCounts call with it, as the real server
// does.
//
// It also serves NamespaceService.GetNamespace from types, which starts
// with the tests' namespace "ns" as EVENTUAL; other namespaces are not
// found. Lookups are counted apart (lookups), not recorded with the
// CounterService requests, and the hook does not see them.
type fake struct {
	abacusv1.UnimplementedCounterServiceServer
	abacusv1.UnimplementedNamespaceServiceServer

	mu     sync.Mutex
	rpcs   []rpc
	counts map[string]int64 // by namespace/counter
	seen   map[string]bool  // applied idempotency keys
	// hook, if set, runs before a request is served; n counts the requests
	// of that method so far, from 1. A non-nil error is the answer, and
	// "apply" in its message applies the request before failing it (an
	// answer lost after the write).
	hook func(ctx context.Context, method string, n int) error
	// received gets the method of every request, if set (buffered by tests).
	received chan string

	types   map[string]abacusv1.CounterType // by namespace
	lookups int                             // GetNamespace requests
	// lookupErr, if set, answers GetNamespace requests.
	lookupErr error
	// loseFirst makes the fake apply the first attempt of every add request
	// (AddCount, AddAndGetCount, AddCounts; told apart by its first item's
	// token) and answer it UNAVAILABLE, as if the answer were lost; later
	// attempts are served normally. tried holds the tokens seen.
	loseFirst bool
	tried     map[string]bool
}

// startFake serves a fake on a loopback port until the test ends.
func startFake(t *testing.T) (*fake, string) {
	t.Helper()
	f := &fake{counts: map[string]int64{}, seen: map[string]bool{},
		types: map[string]abacusv1.CounterType{"ns": abacusv1.CounterType_EVENTUAL}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	abacusv1.RegisterCounterServiceServer(srv, f)
	abacusv1.RegisterNamespaceServiceServer(srv, f)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return f, ln.Addr().String()
}

func (f *fake) setHook(h func(ctx context.Context, method string, n int) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

// record notes a request and runs the hook.
func (f *fake) record(ctx context.Context, method string, req proto.Message) error {
	f.mu.Lock()
	f.rpcs = append(f.rpcs, rpc{method, proto.Clone(req)})
	n := 0
	for _, r := range f.rpcs {
		if r.method == method {
			n++
		}
	}
	hook, received := f.hook, f.received
	f.mu.Unlock()
	if received != nil {
		received <- method
	}
	if hook != nil {
		return hook(ctx, method, n)
	}
	return nil
}

// calls returns the requests received so far, optionally of one method.
func (f *fake) calls(method string) []rpc {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []rpc
	for _, r := range f.rpcs {
		if method == "" || r.method == method {
			out = append(out, r)
		}
	}
	return out
}

func (f *fake) count(ns, counter string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[ns+"/"+counter]
}

// apply applies adds all-or-nothing, once per idempotency key.
func (f *fake) apply(adds []*abacusv1.AddCountRequest, batch bool) error {
	for i, a := range adds {
		if a.GetCounterName() == "bad" {
			prefix := ""
			if batch {
				prefix = fmt.Sprintf("adds[%d].", i)
			}
			return status.Errorf(codes.InvalidArgument, "%scounter_name: bad name", prefix)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range adds {
		t := a.GetIdempotencyToken()
		key := t.GetToken() + "@" + t.GetGenerationTime().AsTime().String()
		if f.types[a.GetNamespace()] != abacusv1.CounterType_BEST_EFFORT {
			if f.seen[key] {
				continue
			}
			f.seen[key] = true
		}
		f.counts[a.GetNamespace()+"/"+a.GetCounterName()] += a.GetDelta()
	}
	return nil
}

// firstAttempt reports, with loseFirst set, whether a request carrying adds
// is the first attempt of its writes.
func (f *fake) firstAttempt(adds []*abacusv1.AddCountRequest) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.loseFirst || len(adds) == 0 {
		return false
	}
	if f.tried == nil {
		f.tried = map[string]bool{}
	}
	tok := adds[0].GetIdempotencyToken().GetToken()
	first := !f.tried[tok]
	f.tried[tok] = true
	return first
}

func (f *fake) setLoseFirst(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loseFirst = on
}

// serve runs the hook around applying adds, so that a hook error whose
// message contains "apply" fails the request after applying it.
func (f *fake) serve(ctx context.Context, method string, req proto.Message, adds []*abacusv1.AddCountRequest) error {
	err := f.record(ctx, method, req)
	if err == nil && f.firstAttempt(adds) {
		err = status.Error(codes.Unavailable, "apply, then lose the answer of a first attempt")
	}
	if err != nil && !strings.Contains(err.Error(), "apply") {
		return err
	}
	if aerr := f.apply(adds, method == "AddCounts"); aerr != nil {
		return aerr
	}
	return err
}

func (f *fake) AddCount(ctx context.Context, r *abacusv1.AddCountRequest) (*abacusv1.AddCountResponse, error) {
	if err := f.serve(ctx, "AddCount", r, []*abacusv1.AddCountRequest{r}); err != nil {
		return nil, err
	}
	return &abacusv1.AddCountResponse{IdempotencyToken: r.GetIdempotencyToken()}, nil
}

func (f *fake) AddAndGetCount(ctx context.Context, r *abacusv1.AddCountRequest) (*abacusv1.AddAndGetCountResponse, error) {
	if err := f.serve(ctx, "AddAndGetCount", r, []*abacusv1.AddCountRequest{r}); err != nil {
		return nil, err
	}
	return &abacusv1.AddAndGetCountResponse{Count: f.count(r.GetNamespace(), r.GetCounterName()), IdempotencyToken: r.GetIdempotencyToken()}, nil
}

func (f *fake) AddCounts(ctx context.Context, r *abacusv1.AddCountsRequest) (*abacusv1.AddCountsResponse, error) {
	if err := f.serve(ctx, "AddCounts", r, r.GetAdds()); err != nil {
		return nil, err
	}
	res := &abacusv1.AddCountsResponse{}
	for _, a := range r.GetAdds() {
		res.Results = append(res.Results, &abacusv1.AddCountResponse{IdempotencyToken: a.GetIdempotencyToken()})
	}
	return res, nil
}

func (f *fake) GetCount(ctx context.Context, r *abacusv1.GetCountRequest) (*abacusv1.GetCountResponse, error) {
	if err := f.record(ctx, "GetCount", r); err != nil {
		return nil, err
	}
	if r.GetNamespace() == "missing" {
		return nil, status.Errorf(codes.NotFound, "namespace %q not found", r.GetNamespace())
	}
	return &abacusv1.GetCountResponse{Count: f.count(r.GetNamespace(), r.GetCounterName())}, nil
}

func (f *fake) GetCounts(ctx context.Context, r *abacusv1.GetCountsRequest) (*abacusv1.GetCountsResponse, error) {
	if err := f.record(ctx, "GetCounts", r); err != nil {
		return nil, err
	}
	res := &abacusv1.GetCountsResponse{}
	for i, g := range r.GetCounters() {
		if g.GetNamespace() == "missing" {
			return nil, status.Errorf(codes.NotFound, "counters[%d]: namespace %q not found", i, g.GetNamespace())
		}
		res.Counts = append(res.Counts, &abacusv1.GetCountResponse{Count: f.count(g.GetNamespace(), g.GetCounterName())})
	}
	return res, nil
}

func (f *fake) ClearCount(ctx context.Context, r *abacusv1.ClearCountRequest) (*abacusv1.ClearCountResponse, error) {
	if err := f.record(ctx, "ClearCount", r); err != nil {
		return nil, err
	}
	f.mu.Lock()
	delete(f.counts, r.GetNamespace()+"/"+r.GetCounterName())
	f.mu.Unlock()
	return &abacusv1.ClearCountResponse{IdempotencyToken: r.GetIdempotencyToken()}, nil
}

// setType sets (or, with COUNTER_TYPE_UNSPECIFIED, deletes) a namespace.
func (f *fake) setType(ns string, typ abacusv1.CounterType) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if typ == abacusv1.CounterType_COUNTER_TYPE_UNSPECIFIED {
		delete(f.types, ns)
		return
	}
	f.types[ns] = typ
}

func (f *fake) setLookupErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookupErr = err
}

// typesSettled reports whether the client has finished looking up the
// namespaces ns (whatever the answers): a test waits for it before it
// depends on what the client knows.
func typesSettled(c *Client, ns ...string) bool {
	for _, n := range ns {
		if ok, wait := c.types.durable(n); !ok && wait != nil {
			return false
		}
		if _, found := c.types.load(n); !found {
			return false
		}
	}
	return true
}

func (f *fake) lookupCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lookups
}

func (f *fake) GetNamespace(ctx context.Context, r *abacusv1.GetNamespaceRequest) (*abacusv1.GetNamespaceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	if f.lookupErr != nil {
		return nil, f.lookupErr
	}
	typ, ok := f.types[r.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "namespace %q not found", r.GetName())
	}
	return &abacusv1.GetNamespaceResponse{Namespace: &abacusv1.Namespace{Name: r.GetName(), CounterType: typ}}, nil
}

// gate holds requests until opened: a test uses it to keep a batch in flight
// while it queues more calls behind it.
type gate struct {
	once sync.Once
	ch   chan struct{}
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// wait blocks until the gate opens or ctx ends.
func (g *gate) wait(ctx context.Context) error {
	select {
	case <-g.ch:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// newClient connects a client to addr and closes it when the test ends.
func newClient(t testing.TB, addr string, opts ...Option) *Client {
	t.Helper()
	opts = append([]Option{WithBackoff(time.Millisecond, 5*time.Millisecond)}, opts...)
	c, err := New(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually polls cond until it holds, failing the test after a long
// bound: it waits for goroutines to reach a state, never measures time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// occupy takes every in-flight slot of a batcher, as batches in flight would,
// so that calls queue; release makes them leave as when those batches return.
func (q *batcher) occupy() (release func()) {
	q.mu.Lock()
	n := q.c.o.inFlight - q.inFlight
	q.inFlight += n
	q.wg.Add(n)
	q.mu.Unlock()
	return func() {
		for range n {
			q.release()
		}
	}
}

// The namespace writes and ListNamespaces are recorded and see the hook,
// for the tests of Namespaces; they change nothing.

func (f *fake) ListNamespaces(ctx context.Context, r *abacusv1.ListNamespacesRequest) (*abacusv1.ListNamespacesResponse, error) {
	if err := f.record(ctx, "ListNamespaces", r); err != nil {
		return nil, err
	}
	return &abacusv1.ListNamespacesResponse{}, nil
}

func (f *fake) CreateNamespace(ctx context.Context, r *abacusv1.CreateNamespaceRequest) (*abacusv1.CreateNamespaceResponse, error) {
	if err := f.record(ctx, "CreateNamespace", r); err != nil {
		return nil, err
	}
	return &abacusv1.CreateNamespaceResponse{Namespace: r.GetNamespace()}, nil
}

func (f *fake) UpdateNamespace(ctx context.Context, r *abacusv1.UpdateNamespaceRequest) (*abacusv1.UpdateNamespaceResponse, error) {
	if err := f.record(ctx, "UpdateNamespace", r); err != nil {
		return nil, err
	}
	return &abacusv1.UpdateNamespaceResponse{Namespace: r.GetNamespace()}, nil
}

func (f *fake) DeleteNamespace(ctx context.Context, r *abacusv1.DeleteNamespaceRequest) (*abacusv1.DeleteNamespaceResponse, error) {
	if err := f.record(ctx, "DeleteNamespace", r); err != nil {
		return nil, err
	}
	return &abacusv1.DeleteNamespaceResponse{}, nil
}
