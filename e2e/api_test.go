package e2e

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/gen/abacus/v1/abacusv1connect"
	"github.com/abacus-dev/abacus/node"
)

// transport is one way of calling a node: grpc-go, or Connect over HTTP/JSON.
type transport struct {
	name string
	c    abacusv1.CounterServiceClient
	n    abacusv1.NamespaceServiceClient
}

// code returns the gRPC code of an error from either transport.
func code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if ce := new(connect.Error); errorsAs(err, &ce) {
		return codes.Code(ce.Code())
	}
	return status.Code(err)
}

func startNode(t *testing.T, nsFile string) *node.Node {
	t.Helper()
	n, err := node.Start(context.Background(), node.Config{
		DataDir: t.TempDir(), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", NamespacesFile: nsFile,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

func transports(t *testing.T, n *node.Node) []transport {
	cc, nc := client(t, n.GRPCAddr())
	base := "http://" + n.HTTPAddr()
	return []transport{
		{"grpc", cc, nc},
		{"http-json", connectCounter{c: abacusv1connect.NewCounterServiceClient(http.DefaultClient, base, connect.WithProtoJSON())},
			connectNamespace{abacusv1connect.NewNamespaceServiceClient(http.DefaultClient, base, connect.WithProtoJSON())}},
	}
}

const apiNamespaces = `
namespaces:
  - {name: acc, counter_type: ACCURATE, accept_limit: 10s}
  - {name: ev, counter_type: EVENTUAL, accept_limit: 1s, queue_config: {coalesce_ms: 10}}
  - {name: be, counter_type: BEST_EFFORT}
`

func tok(id string, at time.Time) *abacusv1.IdempotencyToken {
	return &abacusv1.IdempotencyToken{Token: id, GenerationTime: timestamppb.New(at)}
}

// TestCounterRPCs runs every CounterService RPC over both transports against a
// real node.
func TestCounterRPCs(t *testing.T) {
	n := startNode(t, writeFile(t, "ns.yaml", apiNamespaces))
	for _, tr := range transports(t, n) {
		t.Run(tr.name, func(t *testing.T) {
			ctx := ctxT(t, 30*time.Second)
			c := tr.c
			ctr := "ctr-" + tr.name
			now := time.Now()
			add := func(ns string, delta int64, tk *abacusv1.IdempotencyToken) error {
				_, err := c.AddCount(ctx, &abacusv1.AddCountRequest{Namespace: ns, CounterName: ctr, Delta: delta, IdempotencyToken: tk})
				return err
			}
			get := func(ns string) int64 {
				t.Helper()
				r, err := c.GetCount(ctx, &abacusv1.GetCountRequest{Namespace: ns, CounterName: ctr})
				if err != nil {
					t.Fatalf("GetCount %s: %v", ns, err)
				}
				return r.Count
			}
			// Idempotent retry: counted once.
			for range 3 {
				if err := add("acc", 5, tok("t1", now)); err != nil {
					t.Fatal(err)
				}
			}
			if got := get("acc"); got != 5 {
				t.Fatalf("after retries count = %d, want 5", got)
			}
			// Same token and time, another payload.
			if err := add("acc", 6, tok("t1", now)); code(err) != codes.AlreadyExists {
				t.Fatalf("token reuse: %v, want AlreadyExists", err)
			}
			// AddAndGet on ACCURATE includes the add.
			r, err := c.AddAndGetCount(ctx, &abacusv1.AddCountRequest{Namespace: "acc", CounterName: ctr, Delta: -2})
			if err != nil || r.Count != 3 {
				t.Fatalf("AddAndGetCount = %v, %v; want 3", r, err)
			}
			if r.IdempotencyToken.GetToken() == "" {
				t.Fatalf("no server-assigned token in %v", r)
			}
			// Clear, then add after it.
			if _, err := c.ClearCount(ctx, &abacusv1.ClearCountRequest{Namespace: "acc", CounterName: ctr, IdempotencyToken: tok("clr", time.Now())}); err != nil {
				t.Fatal(err)
			}
			if got := get("acc"); got != 0 {
				t.Fatalf("after clear = %d", got)
			}
			// Batch add across namespaces, then batch get.
			_, err = c.AddCounts(ctx, &abacusv1.AddCountsRequest{Adds: []*abacusv1.AddCountRequest{
				{Namespace: "acc", CounterName: ctr, Delta: 10},
				{Namespace: "be", CounterName: ctr, Delta: 4},
				{Namespace: "ev", CounterName: ctr, Delta: 7},
			}})
			if err != nil {
				t.Fatal(err)
			}
			gs, err := c.GetCounts(ctx, &abacusv1.GetCountsRequest{Counters: []*abacusv1.GetCountRequest{
				{Namespace: "acc", CounterName: ctr}, {Namespace: "be", CounterName: ctr},
			}})
			if err != nil || len(gs.Counts) != 2 || gs.Counts[0].Count != 10 || gs.Counts[1].Count != 4 {
				t.Fatalf("GetCounts = %v, %v", gs, err)
			}
			// EVENTUAL converges within accept_limit + skew + coalesce.
			deadline := time.Now().Add(10 * time.Second)
			for get("ev") != 7 {
				if time.Now().After(deadline) {
					t.Fatalf("eventual count did not converge to 7: %d", get("ev"))
				}
				time.Sleep(100 * time.Millisecond)
			}
			// BEST_EFFORT AddAndGet and overflow.
			r, err = c.AddAndGetCount(ctx, &abacusv1.AddCountRequest{Namespace: "be", CounterName: ctr, Delta: math.MaxInt64 - 4})
			if err != nil || r.Count != math.MaxInt64 {
				t.Fatalf("best-effort AddAndGet = %v, %v", r, err)
			}
			if err := add("be", 1, nil); code(err) != codes.OutOfRange {
				t.Fatalf("best-effort overflow: %v, want OutOfRange", err)
			}
			if err := add("acc", math.MaxInt64, nil); code(err) != codes.OutOfRange {
				t.Fatalf("accurate overflow: %v, want OutOfRange", err)
			}

			errCases := []struct {
				name string
				req  *abacusv1.AddCountRequest
				want codes.Code
				msg  string
			}{
				{"unknown namespace", &abacusv1.AddCountRequest{Namespace: "nope", CounterName: "x", Delta: 1}, codes.NotFound, "not found"},
				{"empty namespace", &abacusv1.AddCountRequest{CounterName: "x", Delta: 1}, codes.InvalidArgument, "namespace"},
				{"empty counter", &abacusv1.AddCountRequest{Namespace: "acc", Delta: 1}, codes.InvalidArgument, "counter_name"},
				{"long counter", &abacusv1.AddCountRequest{Namespace: "acc", CounterName: strings.Repeat("x", 1025), Delta: 1}, codes.InvalidArgument, "limit"},
				{"control char", &abacusv1.AddCountRequest{Namespace: "acc", CounterName: "a\x01b", Delta: 1}, codes.InvalidArgument, "control"},
				{"zero delta", &abacusv1.AddCountRequest{Namespace: "acc", CounterName: "x"}, codes.InvalidArgument, "zero"},
				{"old event", &abacusv1.AddCountRequest{Namespace: "acc", CounterName: "x", Delta: 1, IdempotencyToken: tok("o", time.Date(2024, 10, 5, 14, 48, 0, 0, time.UTC))}, codes.FailedPrecondition, "accept window"},
				{"future event", &abacusv1.AddCountRequest{Namespace: "acc", CounterName: "x", Delta: 1, IdempotencyToken: tok("f", time.Now().Add(time.Hour))}, codes.FailedPrecondition, "accept window"},
				{"token without time", &abacusv1.AddCountRequest{Namespace: "acc", CounterName: "x", Delta: 1, IdempotencyToken: &abacusv1.IdempotencyToken{Token: "x"}}, codes.InvalidArgument, "generation_time"},
				{"time without token", &abacusv1.AddCountRequest{Namespace: "acc", CounterName: "x", Delta: 1, IdempotencyToken: &abacusv1.IdempotencyToken{GenerationTime: timestamppb.Now()}}, codes.InvalidArgument, "token"},
			}
			for _, ec := range errCases {
				_, err := c.AddCount(ctx, ec.req)
				if code(err) != ec.want || !strings.Contains(err.Error(), ec.msg) {
					t.Errorf("%s: err = %v, want %v containing %q", ec.name, err, ec.want, ec.msg)
				}
			}
		})
	}
}

// TestNamespaceRPCs runs every NamespaceService RPC over both transports.
func TestNamespaceRPCs(t *testing.T) {
	n := startNode(t, "")
	for _, tr := range transports(t, n) {
		t.Run(tr.name, func(t *testing.T) {
			ctx := ctxT(t, 30*time.Second)
			name := "ns-" + tr.name
			created, err := tr.n.CreateNamespace(ctx, &abacusv1.CreateNamespaceRequest{Namespace: &abacusv1.Namespace{
				Name: name, CounterType: abacusv1.CounterType_EVENTUAL, AcceptLimit: durationpb.New(3 * time.Second),
			}})
			if err != nil {
				t.Fatal(err)
			}
			ns := created.Namespace
			if ns.AcceptLimit.AsDuration() != 3*time.Second || ns.QueueConfig.GetNumQueues() == 0 || ns.Storage.GetEventStorage().GetType() != "EMBEDDED" {
				t.Fatalf("created namespace lacks defaults: %v", ns)
			}
			if _, err := tr.n.CreateNamespace(ctx, &abacusv1.CreateNamespaceRequest{Namespace: &abacusv1.Namespace{Name: name, CounterType: abacusv1.CounterType_EVENTUAL}}); code(err) != codes.AlreadyExists {
				t.Fatalf("duplicate create: %v", err)
			}
			got, err := tr.n.GetNamespace(ctx, &abacusv1.GetNamespaceRequest{Name: name})
			if err != nil || got.Namespace.GetName() != name {
				t.Fatalf("get: %v %v", got, err)
			}
			list, err := tr.n.ListNamespaces(ctx, &abacusv1.ListNamespacesRequest{})
			if err != nil || !containsNS(list.Namespaces, name) {
				t.Fatalf("list: %v %v", list, err)
			}
			ns.Description = "updated"
			ns.AcceptLimit = durationpb.New(2 * time.Second)
			up, err := tr.n.UpdateNamespace(ctx, &abacusv1.UpdateNamespaceRequest{Namespace: ns})
			if err != nil || up.Namespace.Description != "updated" {
				t.Fatalf("update: %v %v", up, err)
			}
			// A partial update changes only what it names.
			up, err = tr.n.UpdateNamespace(ctx, &abacusv1.UpdateNamespaceRequest{Namespace: &abacusv1.Namespace{Name: name, Description: "partial"}})
			if err != nil || up.Namespace.Description != "partial" || up.Namespace.AcceptLimit.AsDuration() != 2*time.Second ||
				up.Namespace.CounterType != abacusv1.CounterType_EVENTUAL {
				t.Fatalf("partial update: %v %v", up, err)
			}
			ns.CounterType = abacusv1.CounterType_ACCURATE
			if _, err := tr.n.UpdateNamespace(ctx, &abacusv1.UpdateNamespaceRequest{Namespace: ns}); code(err) != codes.InvalidArgument {
				t.Fatalf("changing counter_type: %v, want InvalidArgument", err)
			}
			_, err = tr.n.CreateNamespace(ctx, &abacusv1.CreateNamespaceRequest{Namespace: &abacusv1.Namespace{
				Name: name + "-cass", CounterType: abacusv1.CounterType_EVENTUAL,
				Storage: &abacusv1.Storage{EventStorage: &abacusv1.PhysicalStorage{Type: "CASSANDRA"}},
			}})
			if code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "EMBEDDED") {
				t.Fatalf("CASSANDRA: %v, want InvalidArgument naming EMBEDDED", err)
			}
			if _, err := tr.n.DeleteNamespace(ctx, &abacusv1.DeleteNamespaceRequest{Name: name}); err != nil {
				t.Fatal(err)
			}
			if _, err := tr.n.GetNamespace(ctx, &abacusv1.GetNamespaceRequest{Name: name}); code(err) != codes.NotFound {
				t.Fatalf("get after delete: %v", err)
			}
			if _, err := tr.c.GetCount(ctx, &abacusv1.GetCountRequest{Namespace: name, CounterName: "x"}); code(err) != codes.NotFound {
				t.Fatalf("count in deleted namespace: %v", err)
			}
		})
	}
}

func containsNS(list []*abacusv1.Namespace, name string) bool {
	for _, ns := range list {
		if ns.Name == name {
			return true
		}
	}
	return false
}

// TestArticleBody posts the article's literal JSON body with curl's headers:
// its 2024 time is outside the accept window, and the same body with a current
// time is accepted.
func TestArticleBody(t *testing.T) {
	nsFile := writeFile(t, "ns.json", `{"namespaces":[{"name":"my_dataset","persistence_configuration":[{"id":"CACHE","physical_storage":{"type":"MEMORY"}},{"id":"COUNTER_ROLLUP","physical_storage":{"type":"EMBEDDED","cluster":"local","dataset":"my_dataset"},"counter_cardinality":"LOW","config":{"counter_type":"EVENTUAL","eventual_counter_config":{"internal_config":{"queue_config":{"num_queues":8,"coalesce_ms":10000,"capacity_bytes":16777216},"rollup_batch_count":32}}}},{"id":"EVENT_STORAGE","physical_storage":{"type":"EMBEDDED","cluster":"local","dataset":"my_dataset"},"config":{"time_partition":{"buckets_per_id":4,"seconds_per_bucket":"600","seconds_per_slice":"86400"},"accept_limit":"5s"},"lifecycleConfigs":{"lifecycleConfig":[{"type":"retention","config":{"close_after":"518400s","delete_after":"604800s"}}]}}]}]}`)
	n := startNode(t, nsFile)
	url := "http://" + n.HTTPAddr() + "/abacus.v1.CounterService/AddCount"
	post := func(body string) (int, string) {
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	article := `{"namespace":"my_dataset","counter_name":"counter123","delta":2,"idempotency_token":{"token":"some_event_id","generation_time":"2024-10-05T14:48:00Z"}}`
	st, body := post(article)
	if st != http.StatusBadRequest || !strings.Contains(body, "failed_precondition") || !strings.Contains(body, "accept window") {
		t.Fatalf("article body: %d %s", st, body)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	st, body = post(strings.Replace(article, "2024-10-05T14:48:00Z", now, 1))
	if st != http.StatusOK {
		t.Fatalf("current body: %d %s", st, body)
	}
	for _, bad := range []string{`{"namespace":`, `not json`, `{"namespace":"my_dataset","counter_name":"c","delta":"x"}`, `{"namespace":"my_dataset","counter_name":"c","delta":1,"bogus":1}`} {
		st, body = post(bad)
		if st != http.StatusBadRequest || !strings.Contains(body, "invalid_argument") {
			t.Errorf("body %q: %d %s, want 400 invalid_argument", bad, st, body)
		}
	}
	// GET endpoints.
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200} {
		resp, err := http.Get("http://" + n.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d", path, resp.StatusCode)
		}
		if path == "/metrics" {
			for _, m := range []string{"abacus_requests_total", "abacus_request_duration_seconds", "abacus_rollup_"} {
				if !strings.Contains(string(b), m) {
					t.Errorf("/metrics lacks %s", m)
				}
			}
		}
	}
}
