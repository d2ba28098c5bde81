package api

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/gen/abacus/v1/abacusv1connect"
)

// HTTPOptions configures NewHTTPHandler. The zero value is usable.
type HTTPOptions struct {
	// Ready reports whether the node should receive traffic (stores open,
	// namespaces loaded, not draining); GET /readyz answers 200 while it
	// returns true and 503 otherwise. Nil means always ready.
	Ready func() bool
	// Gatherer is served at GET /metrics. Nil: no /metrics route.
	Gatherer prometheus.Gatherer
	// Metrics, if not nil, records each unary call (transport="http").
	Metrics *Metrics
	// Logger receives Internal errors and recovered panics. Default: slog.Default().
	Logger *slog.Logger
	// Auth, if not nil, turns access control on: every API call needs an
	// "Authorization: Bearer <token>" header with the rights its method
	// needs on its namespaces. /healthz, /readyz and /metrics stay open.
	Auth Authenticator
	// DefaultTimeout is the deadline of a call whose client set none, so
	// that a call stuck on a failing store ends; 0: none.
	DefaultTimeout time.Duration
	// MaxMessageBytes bounds a request body; default MaxMessageBytes. A body
	// declared larger is refused with RESOURCE_EXHAUSTED before it is read;
	// one that grows larger is cut off, with the same code, at the limit.
	MaxMessageBytes int
	// HandlerOptions are appended to this package's connect options, e.g.
	// authentication interceptors (which run inside the metrics interceptor).
	HandlerOptions []connect.HandlerOption
}

// NewHTTPHandler returns the HTTP API: CounterService and NamespaceService
// under /abacus.v1.CounterService/ and /abacus.v1.NamespaceService/ in the
// Connect (JSON or binary), gRPC and gRPC-Web protocols; GET /healthz (200
// "ok" while the process serves), GET /readyz, and GET /metrics when
// opts.Gatherer is set. Server reflection and gRPC health are served only by
// NewGRPCServer's server.
//
// JSON is protojson with proto (snake_case) names, every field emitted and
// unknown fields refused; request messages are limited to MaxMessageBytes.
//
// The http.Server that serves it should set Protocols to HTTPProtocols(), so
// that gRPC clients can use cleartext HTTP/2 (h2c) on the same port, and
// ReadHeaderTimeout and IdleTimeout, so idle or slow clients cannot hold
// connections forever.
func NewHTTPHandler(svc Service, opts HTTPOptions) http.Handler {
	o := newOps(svc, opts.Logger)
	o.auth = opts.Auth
	o.timeout = opts.DefaultTimeout
	maxBytes := cmp.Or(opts.MaxMessageBytes, MaxMessageBytes)
	copts := []connect.HandlerOption{connect.WithReadMaxBytes(maxBytes)}
	for _, name := range jsonCodecNames {
		copts = append(copts, connect.WithCodec(jsonCodec{name: name}))
	}
	if opts.Metrics != nil {
		copts = append(copts, connect.WithInterceptors(opts.Metrics.connectInterceptor()))
	}
	copts = append(copts, opts.HandlerOptions...)

	mux := http.NewServeMux()
	limit := limitBody(maxBytes, connect.NewErrorWriter(copts...))
	mux.Handle(limit(abacusv1connect.NewCounterServiceHandler(connectCounterHandler{o: o}, copts...)))
	mux.Handle(limit(abacusv1connect.NewNamespaceServiceHandler(connectNamespaceHandler{o: o}, copts...)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		plain(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if opts.Ready == nil || opts.Ready() {
			plain(w, http.StatusOK, "ready\n")
			return
		}
		plain(w, http.StatusServiceUnavailable, "not ready\n")
	})
	if opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(o.log.Handler(), slog.LevelError),
		}))
	}
	return mux
}

// HTTPProtocols returns the protocols the API's http.Server should accept
// without TLS: HTTP/1.1 and cleartext HTTP/2 (h2c, which gRPC clients need),
// plus HTTP/2 over TLS for servers configured with certificates.
func HTTPProtocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return p
}

// limitBody refuses, before reading it, a request body whose declared
// length exceeds max (plus the 5 bytes that frame a gRPC message), with
// RESOURCE_EXHAUSTED in the request's protocol (HTTP 429 for Connect): a
// client that sends 50 MiB must not make the node read 50 MiB, nor even the
// first max bytes, to say no. A body of unknown length
// (chunked, or HTTP/2 without content-length) is cut off just past max by an
// http.MaxBytesReader, which connect reports as RESOURCE_EXHAUSTED and which
// makes the server close the connection rather than read on: connect's own
// read limit would refuse the message, but first read the rest of the body,
// however long, to keep the connection reusable.
func limitBody(max int, ew *connect.ErrorWriter) func(path string, h http.Handler) (string, http.Handler) {
	return func(path string, h http.Handler) (string, http.Handler) {
		// A gRPC or gRPC-Web body frames the message, which alone is held to
		// max, with a 5-byte prefix.
		const envelopePrefix = 5
		limit := int64(max) + envelopePrefix
		return path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > limit {
				w.Header().Set("Connection", "close")
				_ = ew.Write(w, r, connect.NewError(connect.CodeResourceExhausted,
					fmt.Errorf("request body of %d bytes exceeds the limit of %d bytes (--max-request-bytes)", r.ContentLength, max)))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			h.ServeHTTP(w, r)
		})
	}
}

func plain(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// connectCall runs one operation and maps its error to a *connect.Error.
func connectCall[Req, Res any](ctx context.Context, o *ops, req *connect.Request[Req], op func(context.Context, *Req) (*Res, error)) (*connect.Response[Res], error) {
	res, err := call(ctx, o, req.Header().Get("Authorization"), op, req.Msg)
	if err != nil {
		return nil, connectError(ctx, o.log, req.Spec().Procedure, err)
	}
	return connect.NewResponse(res), nil
}

// connectCounterHandler implements abacusv1connect.CounterServiceHandler.
type connectCounterHandler struct{ o *ops }

var _ abacusv1connect.CounterServiceHandler = connectCounterHandler{}

func (h connectCounterHandler) AddCount(ctx context.Context, r *connect.Request[abacusv1.AddCountRequest]) (*connect.Response[abacusv1.AddCountResponse], error) {
	return connectCall(ctx, h.o, r, h.o.addCount)
}

func (h connectCounterHandler) AddAndGetCount(ctx context.Context, r *connect.Request[abacusv1.AddCountRequest]) (*connect.Response[abacusv1.AddAndGetCountResponse], error) {
	return connectCall(ctx, h.o, r, h.o.addAndGetCount)
}

func (h connectCounterHandler) GetCount(ctx context.Context, r *connect.Request[abacusv1.GetCountRequest]) (*connect.Response[abacusv1.GetCountResponse], error) {
	return connectCall(ctx, h.o, r, h.o.getCount)
}

func (h connectCounterHandler) ClearCount(ctx context.Context, r *connect.Request[abacusv1.ClearCountRequest]) (*connect.Response[abacusv1.ClearCountResponse], error) {
	return connectCall(ctx, h.o, r, h.o.clearCount)
}

func (h connectCounterHandler) AddCounts(ctx context.Context, r *connect.Request[abacusv1.AddCountsRequest]) (*connect.Response[abacusv1.AddCountsResponse], error) {
	return connectCall(ctx, h.o, r, h.o.addCounts)
}

func (h connectCounterHandler) GetCounts(ctx context.Context, r *connect.Request[abacusv1.GetCountsRequest]) (*connect.Response[abacusv1.GetCountsResponse], error) {
	return connectCall(ctx, h.o, r, h.o.getCounts)
}

func (h connectCounterHandler) ListEvents(ctx context.Context, r *connect.Request[abacusv1.ListEventsRequest]) (*connect.Response[abacusv1.ListEventsResponse], error) {
	return connectCall(ctx, h.o, r, h.o.listEvents)
}

func (h connectCounterHandler) ExportEvents(ctx context.Context, r *connect.Request[abacusv1.ExportEventsRequest], stream *connect.ServerStream[abacusv1.ExportEventsResponse]) error {
	_, err := call(ctx, h.o.streaming(), r.Header().Get("Authorization"), func(ctx context.Context, m *abacusv1.ExportEventsRequest) (struct{}, error) {
		return struct{}{}, h.o.exportEvents(ctx, m, stream.Send)
	}, r.Msg)
	return connectError(ctx, h.o.log, r.Spec().Procedure, err)
}

func (h connectCounterHandler) Recount(ctx context.Context, r *connect.Request[abacusv1.RecountRequest]) (*connect.Response[abacusv1.RecountResponse], error) {
	return connectCall(ctx, h.o, r, h.o.recount)
}

func (h connectCounterHandler) ListCounters(ctx context.Context, r *connect.Request[abacusv1.ListCountersRequest]) (*connect.Response[abacusv1.ListCountersResponse], error) {
	return connectCall(ctx, h.o, r, h.o.listCounters)
}

// connectNamespaceHandler implements abacusv1connect.NamespaceServiceHandler.
type connectNamespaceHandler struct{ o *ops }

var _ abacusv1connect.NamespaceServiceHandler = connectNamespaceHandler{}

func (h connectNamespaceHandler) CreateNamespace(ctx context.Context, r *connect.Request[abacusv1.CreateNamespaceRequest]) (*connect.Response[abacusv1.CreateNamespaceResponse], error) {
	return connectCall(ctx, h.o, r, h.o.createNamespace)
}

func (h connectNamespaceHandler) GetNamespace(ctx context.Context, r *connect.Request[abacusv1.GetNamespaceRequest]) (*connect.Response[abacusv1.GetNamespaceResponse], error) {
	return connectCall(ctx, h.o, r, h.o.getNamespace)
}

func (h connectNamespaceHandler) ListNamespaces(ctx context.Context, r *connect.Request[abacusv1.ListNamespacesRequest]) (*connect.Response[abacusv1.ListNamespacesResponse], error) {
	return connectCall(ctx, h.o, r, h.o.listNamespaces)
}

func (h connectNamespaceHandler) UpdateNamespace(ctx context.Context, r *connect.Request[abacusv1.UpdateNamespaceRequest]) (*connect.Response[abacusv1.UpdateNamespaceResponse], error) {
	return connectCall(ctx, h.o, r, h.o.updateNamespace)
}

func (h connectNamespaceHandler) DeleteNamespace(ctx context.Context, r *connect.Request[abacusv1.DeleteNamespaceRequest]) (*connect.Response[abacusv1.DeleteNamespaceResponse], error) {
	return connectCall(ctx, h.o, r, h.o.deleteNamespace)
}
