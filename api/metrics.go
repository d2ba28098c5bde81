package api

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Metrics records per-method request counts and latencies for both
// transports. Create one per process and pass it to both NewGRPCServer and
// NewHTTPHandler: the series share names and differ by the transport label.
//
// Label values are bounded: transport is "grpc" or "http" (the HTTP port,
// whichever of Connect, gRPC or gRPC-Web the client spoke); method is a
// registered full method name such as "abacus.v1.CounterService/AddCount"
// (interceptors run only for registered methods, so clients cannot invent
// values); code is one of the 17 gRPC codes in Connect's snake_case form, or
// "ok". Requests refused before they are decoded (malformed or oversized
// bodies, unknown methods) never reach an interceptor and are not counted.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// series caches the children of each (transport, procedure): the
	// vectors' WithLabelValues validates, hashes and looks up the label
	// values on every call, which cost a third of this package's share of
	// a unary call. Keys are seriesKey, values *methodSeries.
	series sync.Map
}

// seriesKey names the series of one method on one transport.
type seriesKey struct{ transport, procedure string }

// methodSeries are the metric children of one method on one transport.
// Only the codes a method has answered get a requests child, as with
// WithLabelValues, so that /metrics shows no series that never moved.
type methodSeries struct {
	duration prometheus.Observer
	requests [numCodes]atomic.Pointer[prometheus.Counter]
}

// numCodes is the number of gRPC codes, OK (0) to Unauthenticated (16).
const numCodes = 17

// NewMetrics creates the request metrics and registers them on reg:
// abacus_requests_total{transport,method,code} and
// abacus_request_duration_seconds{transport,method}.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abacus_requests_total",
			Help: "RPCs completed, by transport, method and status code.",
		}, []string{"transport", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "abacus_request_duration_seconds",
			Help: "Time to serve an RPC after its request was decoded, by transport and method.",
			// From 100µs: the target is single-digit milliseconds, so the
			// buckets are dense there and coarse beyond a second.
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"transport", "method"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observe(transport, procedure string, c codes.Code, d time.Duration) {
	s := m.seriesOf(transport, procedure)
	s.duration.Observe(d.Seconds())
	if c >= numCodes {
		// Not a code of gRPC's: not cached, but still counted.
		m.requests.WithLabelValues(transport, strings.TrimPrefix(procedure, "/"), codeLabel(c)).Inc()
		return
	}
	p := s.requests[c].Load()
	if p == nil {
		// Racing callers get the same child from the vector.
		ctr := m.requests.WithLabelValues(transport, strings.TrimPrefix(procedure, "/"), codeLabel(c))
		p = &ctr
		s.requests[c].Store(p)
	}
	(*p).Inc()
}

// seriesOf returns the cached children of a method on a transport. The
// procedures are registered methods only (see Metrics), so the cache is as
// bounded as the label values.
func (m *Metrics) seriesOf(transport, procedure string) *methodSeries {
	k := seriesKey{transport, procedure}
	if v, ok := m.series.Load(k); ok {
		return v.(*methodSeries)
	}
	s := &methodSeries{duration: m.duration.WithLabelValues(transport, strings.TrimPrefix(procedure, "/"))}
	v, _ := m.series.LoadOrStore(k, s)
	return v.(*methodSeries)
}

// UnaryServerInterceptor records the metrics of each unary gRPC call.
// NewGRPCServer installs it; it is exported for servers built with RegisterGRPC.
func (m *Metrics) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		res, err := handler(ctx, req)
		m.observe("grpc", info.FullMethod, status.Code(err), time.Since(start))
		return res, err
	}
}

// StreamServerInterceptor records the metrics of each gRPC server stream
// (ExportEvents): its duration is the whole stream's. NewGRPCServer installs
// it; it is exported for servers built with RegisterGRPC.
func (m *Metrics) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		m.observe("grpc", info.FullMethod, status.Code(err), time.Since(start))
		return err
	}
}

// connectMetrics records the metrics of each Connect, gRPC or gRPC-Web
// call served by the HTTP handler, unary or streaming.
type connectMetrics struct{ m *Metrics }

func (m *Metrics) connectInterceptor() connect.Interceptor { return connectMetrics{m} }

func codeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	return codes.Code(connect.CodeOf(err))
}

func (c connectMetrics) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		res, err := next(ctx, req)
		c.m.observe("http", req.Spec().Procedure, codeOf(err), time.Since(start))
		return res, err
	}
}

func (c connectMetrics) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		err := next(ctx, conn)
		c.m.observe("http", conn.Spec().Procedure, codeOf(err), time.Since(start))
		return err
	}
}

// WrapStreamingClient is not used: the handler makes no client calls.
func (connectMetrics) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}
