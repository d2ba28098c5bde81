package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/abacus-dev/abacus/api"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/gen/abacus/v1/abacusv1connect"
)

// TestChunkedBodyCutOff sends a body of unknown length (chunked), far over
// the limit, as fast as the server takes it: the answer must be
// RESOURCE_EXHAUSTED soon after the limit, not after the whole body (connect
// alone reads an oversized body to its end before refusing it).
func TestChunkedBodyCutOff(t *testing.T) {
	e := newEnv(t)
	const total = 64 << 20
	c, err := net.Dial("tcp", strings.TrimPrefix(e.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	head := "POST " + abacusv1connect.CounterServiceAddCountProcedure + " HTTP/1.1\r\nHost: x\r\n" +
		"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		chunk := strings.Repeat("a", 64<<10)
		first := `{"namespace":"` + chunk[:len(chunk)-len(`{"namespace":"`)]
		for p := first; sent.Load() < total; p = chunk {
			if _, err := fmt.Fprintf(c, "%x\r\n%s\r\n", len(p), p); err != nil {
				return
			}
			sent.Add(int64(len(p)))
		}
		_, _ = io.WriteString(c, "0\r\n\r\n")
	}()
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	at := sent.Load()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	c.Close()
	<-done
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "resource_exhausted") {
		t.Fatalf("HTTP %d %s, want 429 resource_exhausted", res.StatusCode, body)
	}
	if at >= total {
		t.Fatalf("answered after the whole %d-byte body was sent", at)
	}
	if n := e.fake.numAdds(); n != 0 {
		t.Errorf("%d oversized requests reached the service", n)
	}
}

// TestMessageAtLimit: a message of exactly MaxMessageBytes passes on every
// binary transport, the gRPC envelope's prefix included; one byte more is
// RESOURCE_EXHAUSTED.
func TestMessageAtLimit(t *testing.T) {
	e := newEnv(t)
	// name makes a GetCountRequest of size bytes: tag, 4-byte length, name.
	req := func(size int) *abacusv1.GetCountRequest {
		r := &abacusv1.GetCountRequest{Namespace: strings.Repeat("a", size-5)}
		if proto.Size(r) != size {
			t.Fatalf("request of %d bytes, want %d", proto.Size(r), size)
		}
		return r
	}
	for _, tr := range transports {
		if strings.Contains(tr.name, "json") {
			continue // JSON is larger than the message it carries
		}
		c := tr.dial(t, e)
		_, err := c.counter.GetCount(t.Context(), req(api.MaxMessageBytes))
		if wireCode(err) == codes.ResourceExhausted {
			t.Errorf("%s: a message of exactly the limit: %v", tr.name, err)
		}
		_, err = c.counter.GetCount(t.Context(), req(api.MaxMessageBytes+1))
		if wireCode(err) != codes.ResourceExhausted {
			t.Errorf("%s: a message one byte over the limit: %v, want ResourceExhausted", tr.name, err)
		}
	}
}

// TestDefaultTimeout: a call whose client sets no deadline gets
// DefaultTimeout, over gRPC and HTTP/JSON; one that sets its own keeps it.
func TestDefaultTimeout(t *testing.T) {
	e := newEnv(t, func(g *api.GRPCOptions, h *api.HTTPOptions) {
		g.DefaultTimeout, h.DefaultTimeout = time.Hour, time.Hour
	})
	deadline := func() time.Duration {
		e.fake.mu.Lock()
		defer e.fake.mu.Unlock()
		if e.fake.getDeadline.IsZero() {
			return 0
		}
		return time.Until(e.fake.getDeadline)
	}
	req := &abacusv1.GetCountRequest{Namespace: "n", CounterName: "c"}
	g := abacusv1.NewCounterServiceClient(e.grpcConn)
	if _, err := g.GetCount(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if d := deadline(); d < 59*time.Minute || d > time.Hour {
		t.Errorf("grpc, no client deadline: the service saw %v left, want about an hour", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := g.GetCount(ctx, req); err != nil {
		t.Fatal(err)
	}
	if d := deadline(); d <= 0 || d > time.Minute {
		t.Errorf("grpc, a 1m client deadline: the service saw %v left", d)
	}
	if status, body := postJSON(t, e.http.URL, abacusv1connect.CounterServiceGetCountProcedure, `{"namespace":"n","counter_name":"c"}`); status != 200 {
		t.Fatalf("http: %d %s", status, body)
	}
	if d := deadline(); d < 59*time.Minute || d > time.Hour {
		t.Errorf("http, no client deadline: the service saw %v left, want about an hour", d)
	}
}

// TestStreamMetrics: ExportEvents, a server stream, is counted in the
// request metrics over both transports, as unary calls are.
func TestStreamMetrics(t *testing.T) {
	e := newEnv(t)
	st, err := abacusv1.NewCounterServiceClient(e.grpcConn).ExportEvents(t.Context(), &abacusv1.ExportEventsRequest{Namespace: "n"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := st.Recv(); err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
	}
	hs, err := abacusv1connect.NewCounterServiceClient(e.http.Client(), e.http.URL, connect.WithProtoJSON()).
		ExportEvents(t.Context(), connect.NewRequest(&abacusv1.ExportEventsRequest{Namespace: "n"}))
	if err != nil {
		t.Fatal(err)
	}
	for hs.Receive() {
	}
	if err := hs.Err(); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(e.http.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, tr := range []string{"grpc", "http"} {
		want := `abacus_requests_total{code="ok",method="abacus.v1.CounterService/ExportEvents",transport="` + tr + `"} 1`
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
