package cli

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fake is an in-memory abacusd: map-backed counters with idempotency tokens,
// and namespaces. Faults can be scripted per method, and every request is
// recorded, so that tests can see what the CLI sent on each attempt.
type fake struct {
	abacusv1.UnimplementedCounterServiceServer
	abacusv1.UnimplementedNamespaceServiceServer

	mu         sync.Mutex
	namespaces map[string]*abacusv1.Namespace
	counts     map[string]int64  // "ns/counter" → count
	writes     map[string]string // idempotency key → payload, to dedupe retries
	faults     map[string][]fault
	requests   map[string][]proto.Message
	audit      auditState // events and checkpoints, for the audit methods
}

// fault is what the fake does instead of answering one call.
type fault struct {
	code codes.Code
	// apply makes the fake apply the request before failing, as a server
	// whose reply was lost would.
	apply bool
	// hang makes the fake wait for the caller's deadline instead of failing
	// with code.
	hang bool
}

// testEpoch is the create_time of the seeded namespaces.
var testEpoch = time.Date(2024, 10, 5, 14, 48, 0, 0, time.UTC)

func newFake() *fake {
	f := &fake{
		namespaces: map[string]*abacusv1.Namespace{},
		counts:     map[string]int64{"views/home": 7, "views/about": 2},
		writes:     map[string]string{},
		faults:     map[string][]fault{},
		requests:   map[string][]proto.Message{},
	}
	f.namespaces["views"] = &abacusv1.Namespace{
		Name:               "views",
		CounterType:        abacusv1.CounterType_EVENTUAL,
		CounterCardinality: abacusv1.Cardinality_LOW,
		Ttl:                durationpb.New(24 * time.Hour),
		AcceptLimit:        durationpb.New(5 * time.Second),
		TimePartition:      &abacusv1.TimePartition{BucketsPerId: 4, SecondsPerBucket: 600, SecondsPerSlice: 86400},
		QueueConfig:        &abacusv1.QueueConfig{NumQueues: 8, CoalesceMs: 1000, CapacityBytes: 1 << 20},
		RollupBatchCount:   32,
		Retention:          &abacusv1.Retention{CloseAfter: durationpb.New(48 * time.Hour), DeleteAfter: durationpb.New(720 * time.Hour)},
		Storage: &abacusv1.Storage{
			Cache:         &abacusv1.PhysicalStorage{Type: "MEMORY"},
			CounterRollup: &abacusv1.PhysicalStorage{Type: "EMBEDDED"},
			EventStorage:  &abacusv1.PhysicalStorage{Type: "EMBEDDED", Cluster: "local", Dataset: "views"},
		},
		Description: "page views",
		CreateTime:  timestamppb.New(testEpoch),
	}
	f.namespaces["clicks"] = &abacusv1.Namespace{
		Name:               "clicks",
		CounterType:        abacusv1.CounterType_BEST_EFFORT,
		CounterCardinality: abacusv1.Cardinality_HIGH,
		Ttl:                durationpb.New(90 * time.Minute),
		AcceptLimit:        durationpb.New(time.Minute),
		CreateTime:         timestamppb.New(testEpoch),
	}
	return f
}

// start serves f on a random local port until the test ends.
func (f *fake) start(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	abacusv1.RegisterCounterServiceServer(srv, f)
	abacusv1.RegisterNamespaceServiceServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// script queues faults for the next calls of method.
func (f *fake) script(method string, faults ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[method] = append(f.faults[method], faults...)
}

// sent returns the requests method received, in order.
func (f *fake) sent(method string) []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]proto.Message(nil), f.requests[method]...)
}

func (f *fake) count(key string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[key]
}

func (f *fake) namespace(name string) *abacusv1.Namespace {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.namespaces[name]
}

// serve records req, then plays the next scripted fault of method around
// apply, which runs under the lock.
func serve[R any](ctx context.Context, f *fake, method string, req proto.Message, apply func() (R, error)) (R, error) {
	var zero R
	f.mu.Lock()
	f.requests[method] = append(f.requests[method], proto.Clone(req))
	var flt *fault
	if q := f.faults[method]; len(q) > 0 {
		flt, f.faults[method] = &q[0], q[1:]
	}
	f.mu.Unlock()

	fail := func() (R, error) {
		if flt.hang {
			<-ctx.Done()
			return zero, status.FromContextError(ctx.Err()).Err()
		}
		return zero, status.Errorf(flt.code, "injected %s", codeName(flt.code))
	}
	if flt != nil && !flt.apply {
		return fail()
	}
	f.mu.Lock()
	resp, err := apply()
	f.mu.Unlock()
	if err != nil || flt == nil {
		return resp, err
	}
	return fail()
}

// write applies payload to counter key once per idempotency token, as the
// real service does: a retry is a no-op, a reuse with another payload is refused.
func (f *fake) write(ns, counter string, tok *abacusv1.IdempotencyToken, payload string, apply func(key string)) error {
	if _, ok := f.namespaces[ns]; !ok {
		return status.Errorf(codes.NotFound, "namespace %q not found", ns)
	}
	if tok.GetToken() == "" || tok.GetGenerationTime() == nil {
		return status.Error(codes.InvalidArgument, "the CLI always sends a token")
	}
	id := fmt.Sprintf("%s/%s/%s/%d", ns, counter, tok.GetToken(), tok.GetGenerationTime().AsTime().UnixNano())
	if prev, ok := f.writes[id]; ok {
		if prev != payload {
			return status.Errorf(codes.AlreadyExists, "token %q was used for another write", tok.GetToken())
		}
		return nil
	}
	f.writes[id] = payload
	apply(ns + "/" + counter)
	return nil
}

func (f *fake) add(req *abacusv1.AddCountRequest) error {
	if req.GetDelta() == 0 {
		return status.Error(codes.InvalidArgument, "delta must not be 0")
	}
	return f.write(req.GetNamespace(), req.GetCounterName(), req.GetIdempotencyToken(), fmt.Sprint("add ", req.GetDelta()),
		func(key string) { f.counts[key] += req.GetDelta() })
}

func (f *fake) AddCount(ctx context.Context, req *abacusv1.AddCountRequest) (*abacusv1.AddCountResponse, error) {
	return serve(ctx, f, "AddCount", req, func() (*abacusv1.AddCountResponse, error) {
		if err := f.add(req); err != nil {
			return nil, err
		}
		return &abacusv1.AddCountResponse{IdempotencyToken: req.GetIdempotencyToken()}, nil
	})
}

func (f *fake) AddAndGetCount(ctx context.Context, req *abacusv1.AddCountRequest) (*abacusv1.AddAndGetCountResponse, error) {
	return serve(ctx, f, "AddAndGetCount", req, func() (*abacusv1.AddAndGetCountResponse, error) {
		if err := f.add(req); err != nil {
			return nil, err
		}
		return &abacusv1.AddAndGetCountResponse{
			Count:            f.counts[req.GetNamespace()+"/"+req.GetCounterName()],
			IdempotencyToken: req.GetIdempotencyToken(),
		}, nil
	})
}

func (f *fake) get(req *abacusv1.GetCountRequest) (*abacusv1.GetCountResponse, error) {
	if _, ok := f.namespaces[req.GetNamespace()]; !ok {
		return nil, status.Errorf(codes.NotFound, "namespace %q not found", req.GetNamespace())
	}
	return &abacusv1.GetCountResponse{Count: f.counts[req.GetNamespace()+"/"+req.GetCounterName()]}, nil
}

func (f *fake) GetCount(ctx context.Context, req *abacusv1.GetCountRequest) (*abacusv1.GetCountResponse, error) {
	return serve(ctx, f, "GetCount", req, func() (*abacusv1.GetCountResponse, error) { return f.get(req) })
}

func (f *fake) GetCounts(ctx context.Context, req *abacusv1.GetCountsRequest) (*abacusv1.GetCountsResponse, error) {
	return serve(ctx, f, "GetCounts", req, func() (*abacusv1.GetCountsResponse, error) {
		resp := &abacusv1.GetCountsResponse{}
		for _, r := range req.GetCounters() {
			c, err := f.get(r)
			if err != nil {
				return nil, err
			}
			resp.Counts = append(resp.Counts, c)
		}
		return resp, nil
	})
}

func (f *fake) ClearCount(ctx context.Context, req *abacusv1.ClearCountRequest) (*abacusv1.ClearCountResponse, error) {
	return serve(ctx, f, "ClearCount", req, func() (*abacusv1.ClearCountResponse, error) {
		err := f.write(req.GetNamespace(), req.GetCounterName(), req.GetIdempotencyToken(), "clear",
			func(key string) { f.counts[key] = 0 })
		if err != nil {
			return nil, err
		}
		return &abacusv1.ClearCountResponse{IdempotencyToken: req.GetIdempotencyToken()}, nil
	})
}

func (f *fake) CreateNamespace(ctx context.Context, req *abacusv1.CreateNamespaceRequest) (*abacusv1.CreateNamespaceResponse, error) {
	return serve(ctx, f, "CreateNamespace", req, func() (*abacusv1.CreateNamespaceResponse, error) {
		ns := proto.Clone(req.GetNamespace()).(*abacusv1.Namespace)
		if ns.GetName() == "" {
			return nil, status.Error(codes.InvalidArgument, "namespace name is empty")
		}
		if _, ok := f.namespaces[ns.GetName()]; ok {
			return nil, status.Errorf(codes.AlreadyExists, "namespace %q exists", ns.GetName())
		}
		if ns.CounterCardinality == abacusv1.Cardinality_CARDINALITY_UNSPECIFIED {
			ns.CounterCardinality = abacusv1.Cardinality_LOW
		}
		ns.CreateTime = timestamppb.New(testEpoch)
		f.namespaces[ns.GetName()] = ns
		return &abacusv1.CreateNamespaceResponse{Namespace: ns}, nil
	})
}

func (f *fake) GetNamespace(ctx context.Context, req *abacusv1.GetNamespaceRequest) (*abacusv1.GetNamespaceResponse, error) {
	return serve(ctx, f, "GetNamespace", req, func() (*abacusv1.GetNamespaceResponse, error) {
		ns, ok := f.namespaces[req.GetName()]
		if !ok {
			return nil, status.Errorf(codes.NotFound, "namespace %q not found", req.GetName())
		}
		return &abacusv1.GetNamespaceResponse{Namespace: ns}, nil
	})
}

func (f *fake) ListNamespaces(ctx context.Context, req *abacusv1.ListNamespacesRequest) (*abacusv1.ListNamespacesResponse, error) {
	return serve(ctx, f, "ListNamespaces", req, func() (*abacusv1.ListNamespacesResponse, error) {
		resp := &abacusv1.ListNamespacesResponse{}
		for _, ns := range f.namespaces {
			resp.Namespaces = append(resp.Namespaces, ns)
		}
		sort.Slice(resp.Namespaces, func(i, j int) bool { return resp.Namespaces[i].GetName() < resp.Namespaces[j].GetName() })
		return resp, nil
	})
}

func (f *fake) UpdateNamespace(ctx context.Context, req *abacusv1.UpdateNamespaceRequest) (*abacusv1.UpdateNamespaceResponse, error) {
	return serve(ctx, f, "UpdateNamespace", req, func() (*abacusv1.UpdateNamespaceResponse, error) {
		ns := proto.Clone(req.GetNamespace()).(*abacusv1.Namespace)
		old, ok := f.namespaces[ns.GetName()]
		if !ok {
			return nil, status.Errorf(codes.NotFound, "namespace %q not found", ns.GetName())
		}
		if req.GetNamespace().GetCreateTime() != nil || req.GetNamespace().GetUpdateTime() != nil {
			return nil, status.Error(codes.InvalidArgument, "create_time and update_time are output only")
		}
		if ns.GetCounterType() != old.GetCounterType() {
			return nil, status.Error(codes.InvalidArgument, "counter_type cannot change")
		}
		ns.CreateTime = old.GetCreateTime()
		ns.UpdateTime = timestamppb.New(testEpoch.Add(time.Hour))
		f.namespaces[ns.GetName()] = ns
		return &abacusv1.UpdateNamespaceResponse{Namespace: ns}, nil
	})
}

func (f *fake) DeleteNamespace(ctx context.Context, req *abacusv1.DeleteNamespaceRequest) (*abacusv1.DeleteNamespaceResponse, error) {
	return serve(ctx, f, "DeleteNamespace", req, func() (*abacusv1.DeleteNamespaceResponse, error) {
		if _, ok := f.namespaces[req.GetName()]; !ok {
			return nil, status.Errorf(codes.NotFound, "namespace %q not found", req.GetName())
		}
		delete(f.namespaces, req.GetName())
		return &abacusv1.DeleteNamespaceResponse{}, nil
	})
}
