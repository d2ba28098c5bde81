package api

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/gen/abacus/v1/abacusv1connect"
)

// GRPCOptions configures NewGRPCServer. The zero value is usable.
type GRPCOptions struct {
	// Metrics, if not nil, records each unary call (transport="grpc").
	Metrics *Metrics
	// Logger receives Internal errors and recovered panics. Default: slog.Default().
	Logger *slog.Logger
	// Auth, if not nil, turns access control on: every call needs a bearer
	// token in its "authorization" metadata with the rights its method
	// needs on its namespaces (see the README's Security section).
	Auth Authenticator
	// DefaultTimeout is the deadline of a call whose client set none, so
	// that a call stuck on a failing store ends; 0: none.
	DefaultTimeout time.Duration
	// MaxMessageBytes bounds a request message; default MaxMessageBytes.
	MaxMessageBytes int
	// ServerOptions are passed to grpc.NewServer after this package's own:
	// TLS credentials, keepalive, connection limits, more interceptors (which
	// run inside the metrics interceptor).
	ServerOptions []grpc.ServerOption
}

// NewGRPCServer returns a grpc-go server serving CounterService and
// NamespaceService over svc, with the gRPC health service and server
// reflection (so grpcurl works without the .proto files), and the health
// server. Health reports SERVING for "" and both abacus services; call
// Shutdown on it when the process starts to drain, so that load balancers stop
// sending work before GracefulStop. The caller serves it on a listener.
func NewGRPCServer(svc Service, opts GRPCOptions) (*grpc.Server, *health.Server) {
	sopts := []grpc.ServerOption{grpc.MaxRecvMsgSize(cmp.Or(opts.MaxMessageBytes, MaxMessageBytes)),
		grpc.ForceServerCodecV2(serverCodec{})}
	if opts.Metrics != nil {
		sopts = append(sopts, grpc.ChainUnaryInterceptor(opts.Metrics.UnaryServerInterceptor()),
			grpc.ChainStreamInterceptor(opts.Metrics.StreamServerInterceptor()))
	}
	s := grpc.NewServer(append(sopts, opts.ServerOptions...)...)
	o := newOps(svc, opts.Logger)
	o.auth = opts.Auth
	o.timeout = opts.DefaultTimeout
	// AddCounts from the wire (see addsWire): this server's codec is
	// serverCodec. RegisterGRPC, for servers built elsewhere, keeps the
	// generated service.
	s.RegisterService(counterServiceDesc(), grpcCounterServer{o: o})
	abacusv1.RegisterNamespaceServiceServer(s, grpcNamespaceServer{o: o})

	hs := health.NewServer()
	for _, name := range []string{"", abacusv1connect.CounterServiceName, abacusv1connect.NamespaceServiceName} {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(s, hs)
	reflection.Register(s)
	return s, hs
}

// RegisterGRPC registers CounterService and NamespaceService over svc on s,
// for callers that build their own server (they add metrics with
// Metrics.UnaryServerInterceptor). A nil logger means slog.Default().
func RegisterGRPC(s grpc.ServiceRegistrar, svc Service, logger *slog.Logger) {
	registerGRPC(s, newOps(svc, logger))
}

func registerGRPC(s grpc.ServiceRegistrar, o *ops) {
	abacusv1.RegisterCounterServiceServer(s, grpcCounterServer{o: o})
	abacusv1.RegisterNamespaceServiceServer(s, grpcNamespaceServer{o: o})
}

func newOps(svc Service, logger *slog.Logger) *ops {
	if logger == nil {
		logger = slog.Default()
	}
	return &ops{svc: svc, log: logger}
}

// grpcCall runs one operation and maps its error to a gRPC status.
func grpcCall[Req, Res any](ctx context.Context, o *ops, procedure string, op func(context.Context, Req) (Res, error), req Req) (Res, error) {
	var authorization string
	if o.auth != nil {
		if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
			authorization = v[0]
		}
	}
	res, err := call(ctx, o, authorization, op, req)
	return res, grpcError(ctx, o.log, procedure, err)
}

// grpcCounterServer implements abacusv1.CounterServiceServer.
type grpcCounterServer struct {
	abacusv1.UnimplementedCounterServiceServer
	o *ops
}

func (s grpcCounterServer) AddCount(ctx context.Context, r *abacusv1.AddCountRequest) (*abacusv1.AddCountResponse, error) {
	return grpcCall(ctx, s.o, abacusv1connect.CounterServiceAddCountProcedure, s.o.addCount, r)
}

func (s grpcCounterServer) AddAndGetCount(ctx context.Context, r *abacusv1.AddCountRequest) (*abacusv1.AddAndGetCountResponse, error) {
	return grpcCall(ctx, s.o, abacusv1connect.CounterServiceAddAndGetCountProcedure, s.o.addAndGetCount, r)
}

func (s grpcCounterServer) GetCount(ctx context.Context, r *abacusv1.GetCountRequest) (*abacusv1.GetCountResponse, error) {
	return grpcCall(ctx, s.o, abacusv1connect.CounterServiceGetCountProcedure, s.o.getCount, r)
}

func (s grpcCounterServer) ClearCount(ctx context.Context, r *abacusv1.ClearCountRequest) (*abacusv1.ClearCountResponse, error) {
	return grpcCall(ctx, s.o, abacusv1connect.CounterServiceClearCountProcedure, s.o.clearCount, r)
}

func (s grpcCounterServer) AddCounts(ctx context.Context, r *abacusv1.AddCountsRequest) (*abacusv1.AddCountsResponse, error) {
	return grpcCall(ctx, s.o, abacusv1connect.CounterServiceAddCountsProcedure, s.o.addCounts, r)
}

func (s grpcCounterServer) GetCounts(ctx context.Context, r *abacusv1.GetCountsRequest) (*abacusv1.GetCountsResponse, error) {
	return grpcCall(ctx, s.o, abacusv1connect.CounterServiceGetCountsProcedure, s.o.getCounts, r)
}

func (s grpcCounterServer) ListEvents(ctx context.Context, r *abacusv1.ListEventsRequest) (*abacusv1.ListEventsResponse, error) {
	return grpcCall(ctx, s.o, abacusv1connect.CounterServiceListEventsProcedure, s.o.listEvents, r)
}

func (s grpcCounterServer) ExportEvents(r *abacusv1.ExportEventsRequest, stream grpc.ServerStreamingServer[abacusv1.ExportEventsResponse]) error {
	_, err := grpcCall(stream.Context(), s.o.streaming(), abacusv1connect.CounterServiceExportEventsProcedure,
		func(ctx context.Context, r *abacusv1.ExportEventsRequest) (struct{}, error) {
			return struct{}{}, s.o.exportEvents(ctx, r, stream.Send)
		}, r)
	return err
}

func (s grpcCounterServer) Recount(ctx context.Context, r *abacusv1.RecountRequest) (*abacusv1.RecountResponse, error) {
	return grpcCall(ctx, s.o, abacusv1connect.CounterServiceRecountProcedure, s.o.recount, r)
}

func (s grpcCounterServer) ListCounters(ctx context.Context, r *abacusv1.ListCountersRequest) (*abacusv1.ListCountersResponse, error) {
	return grpcCall(ctx, s.o, abacusv1connect.CounterServiceListCountersProcedure, s.o.listCounters, r)
}

// grpcNamespaceServer implements abacusv1.NamespaceServiceServer.
type grpcNamespaceServer struct {
	abacusv1.UnimplementedNamespaceServiceServer
	o *ops
}

func (s grpcNamespaceServer) CreateNamespace(ctx context.Context, r *abacusv1.CreateNamespaceRequest) (*abacusv1.CreateNamespaceResponse, error) {
	return grpcCall(ctx, s.o, abacusv1connect.NamespaceServiceCreateNamespaceProcedure, s.o.createNamespace, r)
}

func (s grpcNamespaceServer) GetNamespace(ctx context.Context, r *abacusv1.GetNamespaceRequest) (*abacusv1.GetNamespaceResponse, error) {
	return grpcCall(ctx, s.o, abacusv1connect.NamespaceServiceGetNamespaceProcedure, s.o.getNamespace, r)
}

func (s grpcNamespaceServer) ListNamespaces(ctx context.Context, r *abacusv1.ListNamespacesRequest) (*abacusv1.ListNamespacesResponse, error) {
	return grpcCall(ctx, s.o, abacusv1connect.NamespaceServiceListNamespacesProcedure, s.o.listNamespaces, r)
}

func (s grpcNamespaceServer) UpdateNamespace(ctx context.Context, r *abacusv1.UpdateNamespaceRequest) (*abacusv1.UpdateNamespaceResponse, error) {
	return grpcCall(ctx, s.o, abacusv1connect.NamespaceServiceUpdateNamespaceProcedure, s.o.updateNamespace, r)
}

func (s grpcNamespaceServer) DeleteNamespace(ctx context.Context, r *abacusv1.DeleteNamespaceRequest) (*abacusv1.DeleteNamespaceResponse, error) {
	return grpcCall(ctx, s.o, abacusv1connect.NamespaceServiceDeleteNamespaceProcedure, s.o.deleteNamespace, r)
}
