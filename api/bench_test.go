package api

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/abacus-dev/abacus"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/gen/abacus/v1/abacusv1connect"
)

// addOnly is a Service whose Add returns the request's token at once: the
// benchmarks below measure this package's share of a call.
type addOnly struct{ Service }

func (addOnly) Add(_ context.Context, r abacus.AddRequest) (abacus.Token, error) { return r.Token, nil }

// BenchmarkUnaryAddCount measures what this package adds to a unary
// AddCount served over gRPC, without the transport and the service: the
// metrics interceptor, the panic guard, the proto conversions both ways and
// the response. Compare B/op and allocs/op before and after a change of the
// request path.
func BenchmarkUnaryAddCount(b *testing.B) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	o := newOps(addOnly{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := grpcCounterServer{o: o}
	intercept := m.UnaryServerInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/" + abacusv1connect.CounterServiceAddCountProcedure[1:]}
	handler := func(ctx context.Context, req any) (any, error) {
		return srv.AddCount(ctx, req.(*abacusv1.AddCountRequest))
	}
	req := &abacusv1.AddCountRequest{Namespace: "bench", CounterName: "c1", Delta: 1,
		IdempotencyToken: &abacusv1.IdempotencyToken{Token: "0b0e9a54-8f7c-4d1e-9a43-3c1d2f6e5a7b", GenerationTime: timestamppb.New(time.Now())}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := intercept(ctx, req, info, handler); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// addCountResponse builds in one allocation the response tokenToProto
// builds in three, and addCountsResponse a batch of them in three: the same
// messages for every kind of token.
func TestAddCountResponse(t *testing.T) {
	var toks []abacus.Token
	for _, tok := range []abacus.Token{
		{},
		{ID: "t1"},
		{ID: "t2", Time: time.Date(2024, 10, 5, 14, 48, 0, 123456789, time.UTC)},
		{ID: "t3", Time: time.Date(1969, 12, 31, 23, 59, 59, 5, time.UTC)}, // before the epoch: negative seconds
		{ID: "t4", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))},
	} {
		got := addCountResponse(tok)
		want := &abacusv1.AddCountResponse{IdempotencyToken: tokenToProto(tok)}
		if !proto.Equal(got, want) {
			t.Errorf("addCountResponse(%+v) = %v, want %v", tok, got, want)
		}
		if tok.ID != "" {
			if back, err := tokenFromProto("t", got.GetIdempotencyToken()); err != nil || back.ID != tok.ID || !back.Time.Equal(tok.Time) {
				t.Errorf("round trip of %+v = %+v, %v", tok, back, err)
			}
		}
		toks = append(toks, tok)
	}
	// The batch form, with every kind of token side by side in one array.
	got := addCountsResponse(toks)
	want := &abacusv1.AddCountsResponse{}
	for _, tok := range toks {
		want.Results = append(want.Results, &abacusv1.AddCountResponse{IdempotencyToken: tokenToProto(tok)})
	}
	if !proto.Equal(got, want) {
		t.Errorf("addCountsResponse(%+v) = %v, want %v", toks, got, want)
	}
	if n := testing.AllocsPerRun(10, func() { addCountsResponse(toks) }); n > 3 {
		t.Errorf("addCountsResponse of %d tokens made %v allocations, want at most 3", len(toks), n)
	}
}

// The cached metric children count into the same series as the vectors:
// per transport, method and code, created only for the codes seen, from
// many goroutines at once.
func TestMetricsCachedSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				c := codes.OK
				if i%4 == 0 {
					c = codes.NotFound
				}
				tr := "grpc"
				if g%2 == 1 {
					tr = "http"
				}
				m.observe(tr, "/abacus.v1.CounterService/AddCount", c, time.Millisecond)
			}
		})
	}
	wg.Wait()
	m.observe("grpc", "/abacus.v1.CounterService/GetCount", codes.Code(99), time.Millisecond)
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"grpc", "abacus.v1.CounterService/AddCount", "ok"}, 300},
		{[]string{"grpc", "abacus.v1.CounterService/AddCount", "not_found"}, 100},
		{[]string{"http", "abacus.v1.CounterService/AddCount", "ok"}, 300},
		{[]string{"http", "abacus.v1.CounterService/AddCount", "not_found"}, 100},
		{[]string{"grpc", "abacus.v1.CounterService/GetCount", codeLabel(codes.Code(99))}, 1},
	} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(c.labels...)); got != c.want {
			t.Errorf("requests%v = %v, want %v", c.labels, got, c.want)
		}
	}
	// No series for codes never answered, and one duration per method.
	if n := testutil.CollectAndCount(m.requests); n != 5 {
		t.Errorf("%d request series, want 5", n)
	}
	if n := testutil.CollectAndCount(m.duration); n != 3 {
		t.Errorf("%d duration series, want 3", n)
	}
}
