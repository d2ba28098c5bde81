package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// TestRetryAfterAcceptWindow retries writes against a built abacusd, over
// gRPC and HTTP/JSON, after their accept window has passed: a retry of a
// counted write is answered as a success (and not counted again), the same
// token with another delta is ALREADY_EXISTS, and only a write whose event
// is not stored is FAILED_PRECONDITION.
func TestRetryAfterAcceptWindow(t *testing.T) {
	const accept = 200 * time.Millisecond
	d := newDaemon(t, writeFile(t, "ns.yaml", `
namespaces:
  - name: retry_ev
    counter_type: EVENTUAL
    accept_limit: 200ms
    queue_config: {coalesce_ms: 100}
    time_partition: {buckets_per_id: 2, seconds_per_bucket: 1, seconds_per_slice: 10}
    retention: {close_after: 2s, delete_after: 1h}
`))
	d.start()
	c, _ := client(t, d.grpcAddr)
	ctx := ctxT(t, time.Minute)
	at := time.Now().UTC()
	tok := func(id string) *abacusv1.IdempotencyToken {
		return &abacusv1.IdempotencyToken{Token: id, GenerationTime: timestamppb.New(at)}
	}
	add := func(counter, id string, delta int64) *abacusv1.AddCountRequest {
		return &abacusv1.AddCountRequest{Namespace: "retry_ev", CounterName: counter, Delta: delta, IdempotencyToken: tok(id)}
	}
	if _, err := c.AddCount(ctx, add("grpc", "g1", 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddAndGetCount(ctx, add("grpc", "g2", 4)); err != nil {
		t.Fatal(err)
	}
	httpPost := func(method string, body string) (int, string) {
		resp, err := http.Post("http://"+d.httpAddr+"/abacus.v1.CounterService/"+method, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	httpAdd := func(id string, delta int64) string {
		return fmt.Sprintf(`{"namespace":"retry_ev","counter_name":"http","delta":%d,"idempotency_token":{"token":%q,"generation_time":%q}}`,
			delta, id, at.Format(time.RFC3339Nano))
	}
	if st, body := httpPost("AddCount", httpAdd("h1", 5)); st != http.StatusOK {
		t.Fatalf("first HTTP add: %d %s", st, body)
	}
	time.Sleep(3 * accept) // now every write above is outside its window

	grpcCases := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"AddCount retry", func() error { _, err := c.AddCount(ctx, add("grpc", "g1", 3)); return err }, codes.OK},
		{"AddAndGetCount retry", func() error { _, err := c.AddAndGetCount(ctx, add("grpc", "g2", 4)); return err }, codes.OK},
		{"AddCounts retry", func() error {
			_, err := c.AddCounts(ctx, &abacusv1.AddCountsRequest{Adds: []*abacusv1.AddCountRequest{add("grpc", "g1", 3), add("grpc", "g2", 4)}})
			return err
		}, codes.OK},
		{"another delta", func() error { _, err := c.AddCount(ctx, add("grpc", "g1", 30)); return err }, codes.AlreadyExists},
		{"never written", func() error { _, err := c.AddCount(ctx, add("grpc", "g3", 3)); return err }, codes.FailedPrecondition},
	}
	for _, tc := range grpcCases {
		if err := tc.call(); code(err) != tc.want {
			t.Errorf("gRPC %s: %v, want %v", tc.name, err, tc.want)
		}
	}
	httpCases := []struct {
		name, method, body string
		want               int
		code               string
	}{
		{"AddCount retry", "AddCount", httpAdd("h1", 5), 200, ""},
		{"AddAndGetCount retry", "AddAndGetCount", httpAdd("h1", 5), 200, ""},
		{"another delta", "AddCount", httpAdd("h1", 6), 409, "already_exists"},
		{"never written", "AddCount", httpAdd("h2", 5), 400, "failed_precondition"},
	}
	for _, tc := range httpCases {
		st, body := httpPost(tc.method, tc.body)
		if st != tc.want || !strings.Contains(body, tc.code) {
			t.Errorf("HTTP %s: %d %s, want %d %s", tc.name, st, body, tc.want, tc.code)
		}
	}
	// Counted once each: 3+4 and 5, once the counters have converged.
	for counter, want := range map[string]int64{"grpc": 7, "http": 5} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, err := c.GetCount(ctx, &abacusv1.GetCountRequest{Namespace: "retry_ev", CounterName: counter})
			if err != nil {
				t.Fatal(err)
			}
			if got.Count == want {
				break
			}
			if got.Count > want || time.Now().After(deadline) {
				t.Fatalf("%s: count %d, want %d", counter, got.Count, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The HTTP answer to a retried AddAndGetCount is a count, as inside the window.
	_, body := httpPost("AddAndGetCount", httpAdd("h1", 5))
	var reply struct{ Count string }
	if err := json.Unmarshal([]byte(body), &reply); err != nil || reply.Count != "5" {
		t.Errorf("AddAndGetCount retry body %s, want count 5", body)
	}
}
