package api

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/auth"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ops holds the proto-level operations both transports share. They return
// domain errors; each transport maps them to its wire form in errors.go.
type ops struct {
	svc Service
	log *slog.Logger
	// auth, if not nil, turns access control on (guard.go).
	auth Authenticator
	// timeout is the deadline of a call whose client set none; 0: none.
	timeout time.Duration
}

// call runs op, turning a panic in the service into an Internal error: grpc-go
// does not recover handler panics, and one bad request must not take the node
// down.
//
// authorization is the request's Authorization header value, checked by the
// op through allow when access control is on.
func call[Req, Res any](ctx context.Context, o *ops, authorization string, op func(context.Context, Req) (Res, error), req Req) (res Res, err error) {
	defer func() {
		if p := recover(); p != nil {
			o.log.ErrorContext(ctx, "panic serving request", "panic", p, "stack", string(debug.Stack()))
			err = abacus.Errorf(abacus.Internal, "panic: %v", p)
		}
	}()
	if _, ok := ctx.Deadline(); !ok && o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	return op(o.withCaller(ctx, authorization), req)
}

// streaming returns o for a server stream: an export runs as long as it
// has events to send, so the default deadline of unary calls does not
// apply to it (the client's own deadline does).
func (o *ops) streaming() *ops {
	so := *o
	so.timeout = 0
	return &so
}

func (o *ops) addCount(ctx context.Context, r *abacusv1.AddCountRequest) (*abacusv1.AddCountResponse, error) {
	return addOne(ctx, o, r.GetNamespace(), r, addFromProto)
}

// addOne serves an AddCount whose request r, to namespace ns, converts
// with request: the generated message or addWire.
func addOne[R any](ctx context.Context, o *ops, ns string, r R, request func(R) (abacus.AddRequest, error)) (*abacusv1.AddCountResponse, error) {
	if err := o.allow(ctx, "AddCount", auth.Write, ns); err != nil {
		return nil, err
	}
	add, err := request(r)
	if err != nil {
		return nil, err
	}
	tok, err := o.svc.Add(ctx, add)
	if err != nil {
		return nil, err
	}
	return addCountResponse(tok), nil
}

// addResult is an AddCount response with its token and the token's
// timestamp, so that the three messages take one allocation instead of
// three: a unary add is the call the node serves most, and a batch of them
// (addCountsResponse) takes one array of these instead of three per item.
type addResult struct {
	res abacusv1.AddCountResponse
	tok abacusv1.IdempotencyToken
	ts  timestamppb.Timestamp
}

// set fills r with tok and returns its response.
func (r *addResult) set(tok abacus.Token) *abacusv1.AddCountResponse {
	if tok == (abacus.Token{}) {
		return &r.res
	}
	r.tok.Token = tok.ID
	if !tok.Time.IsZero() {
		r.ts.Seconds, r.ts.Nanos = tok.Time.Unix(), int32(tok.Time.Nanosecond())
		r.tok.GenerationTime = &r.ts
	}
	r.res.IdempotencyToken = &r.tok
	return &r.res
}

// addCountResponse builds the response to an AddCount in one allocation.
func addCountResponse(tok abacus.Token) *abacusv1.AddCountResponse {
	if tok == (abacus.Token{}) {
		return &abacusv1.AddCountResponse{}
	}
	return new(addResult).set(tok)
}

func (o *ops) addAndGetCount(ctx context.Context, r *abacusv1.AddCountRequest) (*abacusv1.AddAndGetCountResponse, error) {
	if err := o.allow(ctx, "AddAndGetCount", auth.Read|auth.Write, r.GetNamespace()); err != nil {
		return nil, err
	}
	add, err := addFromProto(r)
	if err != nil {
		return nil, err
	}
	n, tok, err := o.svc.AddAndGet(ctx, add)
	if err != nil {
		return nil, err
	}
	return &abacusv1.AddAndGetCountResponse{Count: n, IdempotencyToken: tokenToProto(tok)}, nil
}

func (o *ops) getCount(ctx context.Context, r *abacusv1.GetCountRequest) (*abacusv1.GetCountResponse, error) {
	if err := o.allow(ctx, "GetCount", auth.Read, r.GetNamespace()); err != nil {
		return nil, err
	}
	n, err := o.svc.Get(ctx, refFromProto(r))
	if err != nil {
		return nil, err
	}
	return &abacusv1.GetCountResponse{Count: n}, nil
}

func (o *ops) clearCount(ctx context.Context, r *abacusv1.ClearCountRequest) (_ *abacusv1.ClearCountResponse, err error) {
	defer func() { o.audit(ctx, "ClearCount", r.GetNamespace(), err) }()
	if err := o.allow(ctx, "ClearCount", auth.Write, r.GetNamespace()); err != nil {
		return nil, err
	}
	tok, err := tokenFromProto("idempotency_token", r.GetIdempotencyToken())
	if err != nil {
		return nil, err
	}
	tok, err = o.svc.Clear(ctx, refFromProto(r), tok)
	if err != nil {
		return nil, err
	}
	return &abacusv1.ClearCountResponse{IdempotencyToken: tokenToProto(tok)}, nil
}

func (o *ops) addCounts(ctx context.Context, r *abacusv1.AddCountsRequest) (*abacusv1.AddCountsResponse, error) {
	adds := r.GetAdds()
	if err := o.allowEach(ctx, "AddCounts", auth.Write, len(adds), func(i int) string { return adds[i].GetNamespace() }); err != nil {
		return nil, err
	}
	reqs, err := addsFromProto(r)
	if err != nil {
		return nil, err
	}
	return o.addBatch(ctx, reqs)
}

// addCountsWire is addCounts for a request the gRPC server decoded itself
// (see addsWire), answered with a response it writes itself (addsResult).
func (o *ops) addCountsWire(ctx context.Context, w *addsWire) (*addsResult, error) {
	if err := o.allowEach(ctx, "AddCounts", auth.Write, len(w.adds), func(i int) string { return w.adds[i].ns }); err != nil {
		return nil, err
	}
	reqs, err := w.requests()
	if err != nil {
		return nil, err
	}
	toks, err := o.addTokens(ctx, reqs)
	if err != nil {
		return nil, err
	}
	return &addsResult{toks: toks}, nil
}

// addCountWire is addCount for a request the gRPC server decoded itself
// (see addWire).
func (o *ops) addCountWire(ctx context.Context, w *addWire) (*abacusv1.AddCountResponse, error) {
	return addOne(ctx, o, w.add.ns, w, (*addWire).request)
}

func (o *ops) addBatch(ctx context.Context, reqs []abacus.AddRequest) (*abacusv1.AddCountsResponse, error) {
	toks, err := o.addTokens(ctx, reqs)
	if err != nil {
		return nil, err
	}
	return addCountsResponse(toks), nil
}

// addTokens applies the adds and returns their tokens, one per add.
func (o *ops) addTokens(ctx context.Context, reqs []abacus.AddRequest) ([]abacus.Token, error) {
	toks, err := o.svc.AddBatch(ctx, reqs)
	if err != nil {
		return nil, err
	}
	if err := sameLen("AddBatch", len(reqs), len(toks)); err != nil {
		return nil, err
	}
	return toks, nil
}

// addCountsResponse builds the response to an AddCounts in three
// allocations, whatever the number of items.
func addCountsResponse(toks []abacus.Token) *abacusv1.AddCountsResponse {
	rs := make([]addResult, len(toks))
	res := &abacusv1.AddCountsResponse{Results: make([]*abacusv1.AddCountResponse, len(toks))}
	for i, tok := range toks {
		res.Results[i] = rs[i].set(tok)
	}
	return res
}

func (o *ops) getCounts(ctx context.Context, r *abacusv1.GetCountsRequest) (*abacusv1.GetCountsResponse, error) {
	cs := r.GetCounters()
	if err := o.allowEach(ctx, "GetCounts", auth.Read, len(cs), func(i int) string { return cs[i].GetNamespace() }); err != nil {
		return nil, err
	}
	refs, err := refsFromProto(r)
	if err != nil {
		return nil, err
	}
	ns, err := o.svc.GetBatch(ctx, refs)
	if err != nil {
		return nil, err
	}
	if err := sameLen("GetBatch", len(refs), len(ns)); err != nil {
		return nil, err
	}
	res := &abacusv1.GetCountsResponse{Counts: make([]*abacusv1.GetCountResponse, len(ns))}
	for i, n := range ns {
		res.Counts[i] = &abacusv1.GetCountResponse{Count: n}
	}
	return res, nil
}

// sameLen guards the in-order contract of the batch calls: answering a batch
// with results shifted against its requests would report wrong counts.
func sameLen(method string, want, got int) error {
	if want != got {
		return abacus.Errorf(abacus.Internal, "%s returned %d results for %d requests", method, got, want)
	}
	return nil
}

func (o *ops) createNamespace(ctx context.Context, r *abacusv1.CreateNamespaceRequest) (_ *abacusv1.CreateNamespaceResponse, err error) {
	name := r.GetNamespace().GetName()
	defer func() { o.audit(ctx, "CreateNamespace", name, err) }()
	if err := o.allow(ctx, "CreateNamespace", auth.Admin, name); err != nil {
		return nil, err
	}
	ns, err := namespaceFromProto(r.GetNamespace())
	if err != nil {
		return nil, err
	}
	ns, err = o.svc.CreateNamespace(ctx, ns)
	if err != nil {
		return nil, err
	}
	return &abacusv1.CreateNamespaceResponse{Namespace: namespaceToProto(ns)}, nil
}

func (o *ops) getNamespace(ctx context.Context, r *abacusv1.GetNamespaceRequest) (*abacusv1.GetNamespaceResponse, error) {
	if err := o.allowAny(ctx, "GetNamespace", r.GetName()); err != nil {
		return nil, err
	}
	ns, err := o.svc.GetNamespace(ctx, r.GetName())
	if err != nil {
		return nil, err
	}
	return &abacusv1.GetNamespaceResponse{Namespace: namespaceToProto(ns)}, nil
}

func (o *ops) listNamespaces(ctx context.Context, _ *abacusv1.ListNamespacesRequest) (*abacusv1.ListNamespacesResponse, error) {
	if o.auth != nil {
		if c := callerOf(ctx); c.err != nil {
			return nil, abacus.Errorf(abacus.Unauthenticated, "ListNamespaces: %v", c.err)
		}
	}
	nss, err := o.svc.ListNamespaces(ctx)
	if err != nil {
		return nil, err
	}
	res := &abacusv1.ListNamespacesResponse{Namespaces: make([]*abacusv1.Namespace, 0, len(nss))}
	for _, ns := range nss {
		if o.visible(ctx, ns.Name) {
			res.Namespaces = append(res.Namespaces, namespaceToProto(ns))
		}
	}
	return res, nil
}

func (o *ops) updateNamespace(ctx context.Context, r *abacusv1.UpdateNamespaceRequest) (_ *abacusv1.UpdateNamespaceResponse, err error) {
	name := r.GetNamespace().GetName()
	defer func() { o.audit(ctx, "UpdateNamespace", name, err) }()
	if err := o.allow(ctx, "UpdateNamespace", auth.Admin, name); err != nil {
		return nil, err
	}
	ns, err := namespaceFromProto(r.GetNamespace())
	if err != nil {
		return nil, err
	}
	ns, err = o.svc.UpdateNamespace(ctx, ns)
	if err != nil {
		return nil, err
	}
	return &abacusv1.UpdateNamespaceResponse{Namespace: namespaceToProto(ns)}, nil
}

func (o *ops) deleteNamespace(ctx context.Context, r *abacusv1.DeleteNamespaceRequest) (_ *abacusv1.DeleteNamespaceResponse, err error) {
	defer func() { o.audit(ctx, "DeleteNamespace", r.GetName(), err) }()
	if err := o.allow(ctx, "DeleteNamespace", auth.Admin, r.GetName()); err != nil {
		return nil, err
	}
	if err := o.svc.DeleteNamespace(ctx, r.GetName()); err != nil {
		return nil, err
	}
	return &abacusv1.DeleteNamespaceResponse{}, nil
}
