package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/abacus-dev/abacus/api"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/gen/abacus/v1/abacusv1connect"
)

// env is one node's API: a fake service behind a gRPC server on a real
// listener and the HTTP handler on an httptest server that speaks h2c.
type env struct {
	fake     *fakeService
	ready    atomic.Bool
	reg      *prometheus.Registry
	logs     *syncBuffer
	grpcAddr string
	grpcConn *grpc.ClientConn
	health   *health.Server
	http     *httptest.Server
	h2c      *http.Client // cleartext HTTP/2 only
}

// envOption changes the API options of a newEnv.
type envOption func(g *api.GRPCOptions, h *api.HTTPOptions)

// withAuth turns access control on, with a.
func withAuth(a api.Authenticator) envOption {
	return func(g *api.GRPCOptions, h *api.HTTPOptions) { g.Auth, h.Auth = a, a }
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	e := &env{fake: newFake(), reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	e.ready.Store(true)
	logger := slog.New(slog.NewTextHandler(e.logs, nil))
	m, err := api.NewMetrics(e.reg)
	if err != nil {
		t.Fatal(err)
	}

	gopts := api.GRPCOptions{Metrics: m, Logger: logger}
	hopts := api.HTTPOptions{
		Ready:    e.ready.Load,
		Gatherer: e.reg,
		Metrics:  m,
		Logger:   logger,
	}
	for _, o := range opts {
		o(&gopts, &hopts)
	}
	gs, hs := api.NewGRPCServer(e.fake, gopts)
	e.health = hs
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	e.grpcAddr = lis.Addr().String()
	e.grpcConn, err = grpc.NewClient(e.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.grpcConn.Close() })

	h := api.NewHTTPHandler(e.fake, hopts)
	e.http = httptest.NewUnstartedServer(h)
	e.http.Config.Protocols = api.HTTPProtocols()
	e.http.Start()
	t.Cleanup(e.http.Close)
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	e.h2c = &http.Client{Transport: &http.Transport{Protocols: p}}
	t.Cleanup(e.h2c.CloseIdleConnections)
	return e
}

// clients is one way of calling the API, through the gRPC client interfaces.
type clients struct {
	counter abacusv1.CounterServiceClient
	ns      abacusv1.NamespaceServiceClient
}

// transport names a way of calling the API and says how to build its clients.
type transport struct {
	name string
	dial func(t testing.TB, e *env) clients
}

// transports are every way a client reaches a node. Each test that is table
// driven over them runs identically over all.
var transports = []transport{
	{"grpc", func(_ testing.TB, e *env) clients {
		return clients{abacusv1.NewCounterServiceClient(e.grpcConn), abacusv1.NewNamespaceServiceClient(e.grpcConn)}
	}},
	{"http-json-post", func(_ testing.TB, e *env) clients {
		j := &jsonPost{base: e.http.URL}
		return clients{jsonCounter{j: j}, jsonNamespace{j}}
	}},
	{"connect-json", func(_ testing.TB, e *env) clients {
		return connectClients(e.http.Client(), e.http.URL, connect.WithProtoJSON())
	}},
	{"connect-proto", func(_ testing.TB, e *env) clients {
		return connectClients(e.http.Client(), e.http.URL)
	}},
	{"grpc-web", func(_ testing.TB, e *env) clients {
		return connectClients(e.http.Client(), e.http.URL, connect.WithGRPCWeb())
	}},
	{"grpc-on-http-port-h2c", func(t testing.TB, e *env) clients {
		// grpc-go, as grpcurl would use it, against connect-go's gRPC handler.
		cc, err := grpc.NewClient(strings.TrimPrefix(e.http.URL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cc.Close() })
		return clients{abacusv1.NewCounterServiceClient(cc), abacusv1.NewNamespaceServiceClient(cc)}
	}},
}

// wireCode returns the code of an error from any transport.
func wireCode(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return codes.Code(ce.Code())
	}
	return status.Code(err)
}

// wireMessage returns the message of an error from any transport.
func wireMessage(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return status.Convert(err).Message()
}

// syncBuffer is a bytes.Buffer safe for the servers' concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// --- connect-go clients behind the gRPC client interfaces ---

func connectClients(hc connect.HTTPClient, base string, opts ...connect.ClientOption) clients {
	return clients{
		connectCounter{c: abacusv1connect.NewCounterServiceClient(hc, base, opts...)},
		connectNamespace{abacusv1connect.NewNamespaceServiceClient(hc, base, opts...)},
	}
}

func msg[T any](res *connect.Response[T], err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

// connectCounter leaves ExportEvents, a stream, to the embedded nil client:
// the tests that stream call the Connect client directly.
type connectCounter struct {
	abacusv1.CounterServiceClient
	c abacusv1connect.CounterServiceClient
}

func (a connectCounter) AddCount(ctx context.Context, r *abacusv1.AddCountRequest, _ ...grpc.CallOption) (*abacusv1.AddCountResponse, error) {
	return msg(a.c.AddCount(ctx, connect.NewRequest(r)))
}

func (a connectCounter) AddAndGetCount(ctx context.Context, r *abacusv1.AddCountRequest, _ ...grpc.CallOption) (*abacusv1.AddAndGetCountResponse, error) {
	return msg(a.c.AddAndGetCount(ctx, connect.NewRequest(r)))
}

func (a connectCounter) GetCount(ctx context.Context, r *abacusv1.GetCountRequest, _ ...grpc.CallOption) (*abacusv1.GetCountResponse, error) {
	return msg(a.c.GetCount(ctx, connect.NewRequest(r)))
}

func (a connectCounter) ClearCount(ctx context.Context, r *abacusv1.ClearCountRequest, _ ...grpc.CallOption) (*abacusv1.ClearCountResponse, error) {
	return msg(a.c.ClearCount(ctx, connect.NewRequest(r)))
}

func (a connectCounter) AddCounts(ctx context.Context, r *abacusv1.AddCountsRequest, _ ...grpc.CallOption) (*abacusv1.AddCountsResponse, error) {
	return msg(a.c.AddCounts(ctx, connect.NewRequest(r)))
}

func (a connectCounter) GetCounts(ctx context.Context, r *abacusv1.GetCountsRequest, _ ...grpc.CallOption) (*abacusv1.GetCountsResponse, error) {
	return msg(a.c.GetCounts(ctx, connect.NewRequest(r)))
}

func (a connectCounter) ListEvents(ctx context.Context, r *abacusv1.ListEventsRequest, _ ...grpc.CallOption) (*abacusv1.ListEventsResponse, error) {
	return msg(a.c.ListEvents(ctx, connect.NewRequest(r)))
}

func (a connectCounter) Recount(ctx context.Context, r *abacusv1.RecountRequest, _ ...grpc.CallOption) (*abacusv1.RecountResponse, error) {
	return msg(a.c.Recount(ctx, connect.NewRequest(r)))
}

func (a connectCounter) ListCounters(ctx context.Context, r *abacusv1.ListCountersRequest, _ ...grpc.CallOption) (*abacusv1.ListCountersResponse, error) {
	return msg(a.c.ListCounters(ctx, connect.NewRequest(r)))
}

type connectNamespace struct {
	c abacusv1connect.NamespaceServiceClient
}

func (a connectNamespace) CreateNamespace(ctx context.Context, r *abacusv1.CreateNamespaceRequest, _ ...grpc.CallOption) (*abacusv1.CreateNamespaceResponse, error) {
	return msg(a.c.CreateNamespace(ctx, connect.NewRequest(r)))
}

func (a connectNamespace) GetNamespace(ctx context.Context, r *abacusv1.GetNamespaceRequest, _ ...grpc.CallOption) (*abacusv1.GetNamespaceResponse, error) {
	return msg(a.c.GetNamespace(ctx, connect.NewRequest(r)))
}

func (a connectNamespace) ListNamespaces(ctx context.Context, r *abacusv1.ListNamespacesRequest, _ ...grpc.CallOption) (*abacusv1.ListNamespacesResponse, error) {
	return msg(a.c.ListNamespaces(ctx, connect.NewRequest(r)))
}

func (a connectNamespace) UpdateNamespace(ctx context.Context, r *abacusv1.UpdateNamespaceRequest, _ ...grpc.CallOption) (*abacusv1.UpdateNamespaceResponse, error) {
	return msg(a.c.UpdateNamespace(ctx, connect.NewRequest(r)))
}

func (a connectNamespace) DeleteNamespace(ctx context.Context, r *abacusv1.DeleteNamespaceRequest, _ ...grpc.CallOption) (*abacusv1.DeleteNamespaceResponse, error) {
	return msg(a.c.DeleteNamespace(ctx, connect.NewRequest(r)))
}

// --- plain http.Post of JSON bodies, as curl would send them ---

// jsonPost calls the API the way a curl user does: snake_case JSON bodies
// POSTed with http.Post, answers decoded strictly (unknown fields fail).
type jsonPost struct {
	base string
}

// httpError is a Connect error body with the HTTP status it came with.
type httpError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *httpError) Error() string { return e.Code + ": " + e.Message }

// GRPCStatus lets status.Code and status.Convert read the Connect code.
func (e *httpError) GRPCStatus() *status.Status {
	var c connect.Code
	if err := c.UnmarshalText([]byte(e.Code)); err != nil {
		return status.New(codes.Unknown, e.Error())
	}
	return status.New(codes.Code(c), e.Message)
}

// postJSON posts body to the procedure and returns the status and response body.
func postJSON(t testing.TB, base, procedure, body string) (int, string) {
	t.Helper()
	res, err := http.Post(base+procedure, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

func (j *jsonPost) call(procedure string, req, res proto.Message) error {
	body, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(req)
	if err != nil {
		return err
	}
	hr, err := http.Post(j.base+procedure, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer hr.Body.Close()
	b, err := io.ReadAll(hr.Body)
	if err != nil {
		return err
	}
	if hr.StatusCode != http.StatusOK {
		e := &httpError{Status: hr.StatusCode}
		if err := json.Unmarshal(b, e); err != nil {
			return errors.New(hr.Status + ": " + string(b))
		}
		return e
	}
	return protojson.Unmarshal(b, res)
}

// jsonCounter leaves ExportEvents, a stream, to the embedded nil client.
type jsonCounter struct {
	abacusv1.CounterServiceClient
	j *jsonPost
}

func (a jsonCounter) AddCount(_ context.Context, r *abacusv1.AddCountRequest, _ ...grpc.CallOption) (*abacusv1.AddCountResponse, error) {
	res := new(abacusv1.AddCountResponse)
	return res, a.j.call(abacusv1connect.CounterServiceAddCountProcedure, r, res)
}

func (a jsonCounter) AddAndGetCount(_ context.Context, r *abacusv1.AddCountRequest, _ ...grpc.CallOption) (*abacusv1.AddAndGetCountResponse, error) {
	res := new(abacusv1.AddAndGetCountResponse)
	return res, a.j.call(abacusv1connect.CounterServiceAddAndGetCountProcedure, r, res)
}

func (a jsonCounter) GetCount(_ context.Context, r *abacusv1.GetCountRequest, _ ...grpc.CallOption) (*abacusv1.GetCountResponse, error) {
	res := new(abacusv1.GetCountResponse)
	return res, a.j.call(abacusv1connect.CounterServiceGetCountProcedure, r, res)
}

func (a jsonCounter) ClearCount(_ context.Context, r *abacusv1.ClearCountRequest, _ ...grpc.CallOption) (*abacusv1.ClearCountResponse, error) {
	res := new(abacusv1.ClearCountResponse)
	return res, a.j.call(abacusv1connect.CounterServiceClearCountProcedure, r, res)
}

func (a jsonCounter) AddCounts(_ context.Context, r *abacusv1.AddCountsRequest, _ ...grpc.CallOption) (*abacusv1.AddCountsResponse, error) {
	res := new(abacusv1.AddCountsResponse)
	return res, a.j.call(abacusv1connect.CounterServiceAddCountsProcedure, r, res)
}

func (a jsonCounter) GetCounts(_ context.Context, r *abacusv1.GetCountsRequest, _ ...grpc.CallOption) (*abacusv1.GetCountsResponse, error) {
	res := new(abacusv1.GetCountsResponse)
	return res, a.j.call(abacusv1connect.CounterServiceGetCountsProcedure, r, res)
}

func (a jsonCounter) ListEvents(_ context.Context, r *abacusv1.ListEventsRequest, _ ...grpc.CallOption) (*abacusv1.ListEventsResponse, error) {
	res := new(abacusv1.ListEventsResponse)
	return res, a.j.call(abacusv1connect.CounterServiceListEventsProcedure, r, res)
}

func (a jsonCounter) Recount(_ context.Context, r *abacusv1.RecountRequest, _ ...grpc.CallOption) (*abacusv1.RecountResponse, error) {
	res := new(abacusv1.RecountResponse)
	return res, a.j.call(abacusv1connect.CounterServiceRecountProcedure, r, res)
}

func (a jsonCounter) ListCounters(_ context.Context, r *abacusv1.ListCountersRequest, _ ...grpc.CallOption) (*abacusv1.ListCountersResponse, error) {
	res := new(abacusv1.ListCountersResponse)
	return res, a.j.call(abacusv1connect.CounterServiceListCountersProcedure, r, res)
}

type jsonNamespace struct{ j *jsonPost }

func (a jsonNamespace) CreateNamespace(_ context.Context, r *abacusv1.CreateNamespaceRequest, _ ...grpc.CallOption) (*abacusv1.CreateNamespaceResponse, error) {
	res := new(abacusv1.CreateNamespaceResponse)
	return res, a.j.call(abacusv1connect.NamespaceServiceCreateNamespaceProcedure, r, res)
}

func (a jsonNamespace) GetNamespace(_ context.Context, r *abacusv1.GetNamespaceRequest, _ ...grpc.CallOption) (*abacusv1.GetNamespaceResponse, error) {
	res := new(abacusv1.GetNamespaceResponse)
	return res, a.j.call(abacusv1connect.NamespaceServiceGetNamespaceProcedure, r, res)
}

func (a jsonNamespace) ListNamespaces(_ context.Context, r *abacusv1.ListNamespacesRequest, _ ...grpc.CallOption) (*abacusv1.ListNamespacesResponse, error) {
	res := new(abacusv1.ListNamespacesResponse)
	return res, a.j.call(abacusv1connect.NamespaceServiceListNamespacesProcedure, r, res)
}

func (a jsonNamespace) UpdateNamespace(_ context.Context, r *abacusv1.UpdateNamespaceRequest, _ ...grpc.CallOption) (*abacusv1.UpdateNamespaceResponse, error) {
	res := new(abacusv1.UpdateNamespaceResponse)
	return res, a.j.call(abacusv1connect.NamespaceServiceUpdateNamespaceProcedure, r, res)
}

func (a jsonNamespace) DeleteNamespace(_ context.Context, r *abacusv1.DeleteNamespaceRequest, _ ...grpc.CallOption) (*abacusv1.DeleteNamespaceResponse, error) {
	res := new(abacusv1.DeleteNamespaceResponse)
	return res, a.j.call(abacusv1connect.NamespaceServiceDeleteNamespaceProcedure, r, res)
}
