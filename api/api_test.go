package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/api"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/gen/abacus/v1/abacusv1connect"
)

var articleTime = time.Date(2024, 10, 5, 14, 48, 0, 0, time.UTC)

func tokenPB(id string, t time.Time) *abacusv1.IdempotencyToken {
	return &abacusv1.IdempotencyToken{Token: id, GenerationTime: timestamppb.New(t)}
}

func mustOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := wireCode(err); got != want {
		t.Fatalf("%s: code %v (%v), want %v", what, got, err, want)
	}
}

func wantProto(t *testing.T, what string, got, want proto.Message) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}

// fullNamespace returns a namespace with every field set, on the wire and in
// the domain.
func fullNamespace() (*abacusv1.Namespace, *abacus.Namespace) {
	day := 24 * time.Hour
	p := &abacusv1.Namespace{
		Name:               "views",
		CounterType:        abacusv1.CounterType_ACCURATE,
		CounterCardinality: abacusv1.Cardinality_HIGH,
		Ttl:                durationpb.New(time.Hour),
		AcceptLimit:        durationpb.New(5*time.Second + 500*time.Millisecond),
		TimePartition:      &abacusv1.TimePartition{BucketsPerId: 4, SecondsPerBucket: 600, SecondsPerSlice: 86400},
		QueueConfig:        &abacusv1.QueueConfig{NumQueues: 8, CoalesceMs: 10000, CapacityBytes: 1 << 20},
		RollupBatchCount:   32,
		Retention:          &abacusv1.Retention{CloseAfter: durationpb.New(7 * day), DeleteAfter: durationpb.New(30 * day)},
		Storage: &abacusv1.Storage{
			Cache:         &abacusv1.PhysicalStorage{Type: "MEMORY", Cluster: "c1", Dataset: "d1"},
			CounterRollup: &abacusv1.PhysicalStorage{Type: "EMBEDDED", Cluster: "c2", Dataset: "d2"},
			EventStorage:  &abacusv1.PhysicalStorage{Type: "EMBEDDED", Cluster: "c3", Dataset: "d3"},
		},
		Description: "page views",
	}
	d := &abacus.Namespace{
		Name:             "views",
		Type:             abacus.Accurate,
		Cardinality:      abacus.High,
		TTL:              time.Hour,
		AcceptLimit:      5*time.Second + 500*time.Millisecond,
		Partition:        abacus.TimePartition{BucketsPerID: 4, BucketWidth: 10 * time.Minute, SliceWidth: day},
		Queue:            abacus.QueueConfig{NumQueues: 8, Coalesce: 10 * time.Second, CapacityBytes: 1 << 20},
		RollupBatchCount: 32,
		Retention:        abacus.Retention{CloseAfter: 7 * day, DeleteAfter: 30 * day},
		Storage: abacus.Storage{
			Cache:  abacus.PhysicalStorage{Type: "MEMORY", Cluster: "c1", Dataset: "d1"},
			Rollup: abacus.PhysicalStorage{Type: "EMBEDDED", Cluster: "c2", Dataset: "d2"},
			Events: abacus.PhysicalStorage{Type: "EMBEDDED", Cluster: "c3", Dataset: "d3"},
		},
		Description: "page views",
	}
	return p, d
}

// TestEveryRPC calls every method of both services over every transport and
// checks what reached the service and what came back.
func TestEveryRPC(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			ctx := t.Context()
			e := newEnv(t)
			c := tr.dial(t, e)

			tok := tokenPB("some_event_id", articleTime)
			add, err := c.counter.AddCount(ctx, &abacusv1.AddCountRequest{Namespace: "my_dataset", CounterName: "counter123", Delta: 2, IdempotencyToken: tok})
			mustOK(t, "AddCount", err)
			wantProto(t, "AddCount token", add.GetIdempotencyToken(), tok)
			want := abacus.AddRequest{Namespace: "my_dataset", Counter: "counter123", Delta: 2, Token: abacus.Token{ID: "some_event_id", Time: articleTime}}
			if got := e.fake.lastAdd(); !reflect.DeepEqual(got, want) {
				t.Fatalf("service got %+v, want %+v", got, want)
			}

			add, err = c.counter.AddCount(ctx, &abacusv1.AddCountRequest{Namespace: "my_dataset", CounterName: "counter123", Delta: 3})
			mustOK(t, "AddCount without token", err)
			wantProto(t, "server-assigned token", add.GetIdempotencyToken(), tokenPB("server-1", articleTime))
			if got := e.fake.lastAdd().Token; got != (abacus.Token{}) {
				t.Fatalf("absent token reached the service as %+v, want the zero Token", got)
			}

			aag, err := c.counter.AddAndGetCount(ctx, &abacusv1.AddCountRequest{Namespace: "my_dataset", CounterName: "counter123", Delta: -1, IdempotencyToken: tokenPB("e2", articleTime)})
			mustOK(t, "AddAndGetCount", err)
			wantProto(t, "AddAndGetCount", aag, &abacusv1.AddAndGetCountResponse{Count: 4, IdempotencyToken: tokenPB("e2", articleTime)})

			get, err := c.counter.GetCount(ctx, &abacusv1.GetCountRequest{Namespace: "my_dataset", CounterName: "counter123"})
			mustOK(t, "GetCount", err)
			wantProto(t, "GetCount", get, &abacusv1.GetCountResponse{Count: 4})

			clr, err := c.counter.ClearCount(ctx, &abacusv1.ClearCountRequest{Namespace: "my_dataset", CounterName: "counter123", IdempotencyToken: tokenPB("c1", articleTime)})
			mustOK(t, "ClearCount", err)
			wantProto(t, "ClearCount", clr, &abacusv1.ClearCountResponse{IdempotencyToken: tokenPB("c1", articleTime)})
			if got := e.fake.lastClear(); got != (abacus.Token{ID: "c1", Time: articleTime}) {
				t.Fatalf("clear token reached the service as %+v", got)
			}
			get, err = c.counter.GetCount(ctx, &abacusv1.GetCountRequest{Namespace: "my_dataset", CounterName: "counter123"})
			mustOK(t, "GetCount after clear", err)
			wantProto(t, "GetCount after clear", get, &abacusv1.GetCountResponse{Count: 0})

			adds, err := c.counter.AddCounts(ctx, &abacusv1.AddCountsRequest{Adds: []*abacusv1.AddCountRequest{
				{Namespace: "ns", CounterName: "a", Delta: 5, IdempotencyToken: tokenPB("b1", articleTime)},
				{Namespace: "ns", CounterName: "b", Delta: 7, IdempotencyToken: tokenPB("b2", articleTime)},
			}})
			mustOK(t, "AddCounts", err)
			wantProto(t, "AddCounts", adds, &abacusv1.AddCountsResponse{Results: []*abacusv1.AddCountResponse{
				{IdempotencyToken: tokenPB("b1", articleTime)},
				{IdempotencyToken: tokenPB("b2", articleTime)},
			}})

			gets, err := c.counter.GetCounts(ctx, &abacusv1.GetCountsRequest{Counters: []*abacusv1.GetCountRequest{
				{Namespace: "ns", CounterName: "b"}, {Namespace: "ns", CounterName: "a"}, {Namespace: "ns", CounterName: "never"},
			}})
			mustOK(t, "GetCounts", err)
			wantProto(t, "GetCounts", gets, &abacusv1.GetCountsResponse{Counts: []*abacusv1.GetCountResponse{{Count: 7}, {Count: 5}, {Count: 0}}})

			nsPB, nsDomain := fullNamespace()
			in := proto.Clone(nsPB).(*abacusv1.Namespace)
			in.CreateTime = timestamppb.New(time.Unix(1, 0)) // output only: must be ignored
			created, err := c.ns.CreateNamespace(ctx, &abacusv1.CreateNamespaceRequest{Namespace: in})
			mustOK(t, "CreateNamespace", err)
			if got := e.fake.lastNamespace(); !reflect.DeepEqual(got, nsDomain) {
				t.Fatalf("CreateNamespace reached the service as\n %+v\nwant\n %+v", got, nsDomain)
			}
			stored := proto.Clone(nsPB).(*abacusv1.Namespace)
			stored.CreateTime, stored.UpdateTime = timestamppb.New(articleTime), timestamppb.New(articleTime)
			wantProto(t, "CreateNamespace", created.GetNamespace(), stored)

			got, err := c.ns.GetNamespace(ctx, &abacusv1.GetNamespaceRequest{Name: "views"})
			mustOK(t, "GetNamespace", err)
			wantProto(t, "GetNamespace", got.GetNamespace(), stored)

			list, err := c.ns.ListNamespaces(ctx, &abacusv1.ListNamespacesRequest{})
			mustOK(t, "ListNamespaces", err)
			wantProto(t, "ListNamespaces", list, &abacusv1.ListNamespacesResponse{Namespaces: []*abacusv1.Namespace{stored}})

			upd := proto.Clone(nsPB).(*abacusv1.Namespace)
			upd.Description = "updated"
			updated, err := c.ns.UpdateNamespace(ctx, &abacusv1.UpdateNamespaceRequest{Namespace: upd})
			mustOK(t, "UpdateNamespace", err)
			if got := e.fake.lastNamespace().Description; got != "updated" {
				t.Fatalf("UpdateNamespace reached the service with description %q", got)
			}
			wantUpd := proto.Clone(upd).(*abacusv1.Namespace)
			wantUpd.CreateTime, wantUpd.UpdateTime = timestamppb.New(articleTime), timestamppb.New(articleTime.Add(time.Minute))
			wantProto(t, "UpdateNamespace", updated.GetNamespace(), wantUpd)

			_, err = c.ns.DeleteNamespace(ctx, &abacusv1.DeleteNamespaceRequest{Name: "views"})
			mustOK(t, "DeleteNamespace", err)
			_, err = c.ns.GetNamespace(ctx, &abacusv1.GetNamespaceRequest{Name: "views"})
			wantCode(t, "GetNamespace after delete", err, codes.NotFound)
			_, err = c.ns.DeleteNamespace(ctx, &abacusv1.DeleteNamespaceRequest{Name: "views"})
			wantCode(t, "DeleteNamespace twice", err, codes.NotFound)
		})
	}
}

// TestErrorCodes checks that each domain code reaches every transport as the
// same wire code and message, and as Connect's HTTP status over JSON.
func TestErrorCodes(t *testing.T) {
	cases := []struct {
		err        error
		code       codes.Code
		httpStatus int
		message    string
	}{
		{abacus.Errorf(abacus.InvalidArgument, "bad name"), codes.InvalidArgument, 400, "bad name"},
		{abacus.Errorf(abacus.NotFound, "no namespace"), codes.NotFound, 404, "no namespace"},
		{abacus.Errorf(abacus.AlreadyExists, "token reused"), codes.AlreadyExists, 409, "token reused"},
		{abacus.Errorf(abacus.FailedPrecondition, "outside window"), codes.FailedPrecondition, 400, "outside window"},
		{abacus.Errorf(abacus.OutOfRange, "overflow"), codes.OutOfRange, 400, "overflow"},
		{abacus.Wrap(abacus.Unavailable, errors.New("disk"), "store down"), codes.Unavailable, 503, "store down: disk"},
		{abacus.Errorf(abacus.Canceled, "gone"), codes.Canceled, 499, "gone"},
		{abacus.Errorf(abacus.DeadlineExceeded, "late"), codes.DeadlineExceeded, 504, "late"},
		{fmt.Errorf("service: %w", abacus.Errorf(abacus.NotFound, "wrapped")), codes.NotFound, 404, "wrapped"},
		{context.DeadlineExceeded, codes.DeadlineExceeded, 504, "context deadline exceeded"},
		{abacus.Errorf(abacus.Internal, "secret invariant"), codes.Internal, 500, ""},
		{errors.New("secret disk path /var/x"), codes.Internal, 500, ""},
		{&abacus.Error{Code: 99, Msg: "secret future code"}, codes.Internal, 500, ""},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			e := newEnv(t)
			c := tr.dial(t, e)
			for _, tc := range cases {
				e.fake.script(tc.err)
				_, err := c.counter.GetCount(t.Context(), &abacusv1.GetCountRequest{Namespace: "n", CounterName: "c"})
				wantCode(t, tc.err.Error(), err, tc.code)
				msg := wireMessage(err)
				if tc.code == codes.Internal {
					if strings.Contains(msg, "secret") {
						t.Errorf("%v: internal detail sent to the client: %q", tc.err, msg)
					}
					if !strings.Contains(e.logs.String(), tc.err.Error()) {
						t.Errorf("%v: internal error not logged; log:\n%s", tc.err, e.logs.String())
					}
				} else if msg != tc.message {
					t.Errorf("%v: message %q, want %q", tc.err, msg, tc.message)
				}
				var he *httpError
				if errors.As(err, &he) && he.Status != tc.httpStatus {
					t.Errorf("%v: HTTP status %d, want %d", tc.err, he.Status, tc.httpStatus)
				}
			}
		})
	}
}

// TestTokenConversion checks how idempotency tokens that the domain cannot
// express, or that are incomplete, are handled on every transport.
func TestTokenConversion(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			ctx := t.Context()
			e := newEnv(t)
			c := tr.dial(t, e)

			// No generation_time: passed on with a zero Time for the service to refuse.
			_, err := c.counter.AddCount(ctx, &abacusv1.AddCountRequest{Namespace: "n", CounterName: "c", Delta: 1, IdempotencyToken: &abacusv1.IdempotencyToken{Token: "t"}})
			wantCode(t, "token without generation_time", err, codes.InvalidArgument)
			if got := e.fake.lastAdd().Token; got != (abacus.Token{ID: "t"}) {
				t.Fatalf("token without time reached the service as %+v", got)
			}

			// An empty token object: refused here, since the domain would read it as "no token".
			n := e.fake.numAdds()
			_, err = c.counter.AddCount(ctx, &abacusv1.AddCountRequest{Namespace: "n", CounterName: "c", Delta: 1, IdempotencyToken: &abacusv1.IdempotencyToken{}})
			wantCode(t, "empty token", err, codes.InvalidArgument)
			if msg := wireMessage(err); !strings.Contains(msg, "idempotency_token.token is required") {
				t.Fatalf("empty token: message %q", msg)
			}
			_, err = c.counter.ClearCount(ctx, &abacusv1.ClearCountRequest{Namespace: "n", CounterName: "c", IdempotencyToken: &abacusv1.IdempotencyToken{GenerationTime: timestamppb.New(articleTime)}})
			wantCode(t, "clear with empty token", err, codes.InvalidArgument)
			_, err = c.counter.AddCounts(ctx, &abacusv1.AddCountsRequest{Adds: []*abacusv1.AddCountRequest{
				{Namespace: "n", CounterName: "c", Delta: 1},
				{Namespace: "n", CounterName: "c", Delta: 1, IdempotencyToken: &abacusv1.IdempotencyToken{}},
			}})
			wantCode(t, "batch with empty token", err, codes.InvalidArgument)
			if msg := wireMessage(err); !strings.Contains(msg, "adds[1].idempotency_token.token") {
				t.Fatalf("batch item error does not name the item: %q", msg)
			}
			if e.fake.numAdds() != n {
				t.Fatalf("refused requests reached the service")
			}

			// A timestamp protobuf can carry but time.Time cannot: JSON cannot
			// even express it, so only binary transports reach the check.
			bad := &abacusv1.IdempotencyToken{Token: "t", GenerationTime: &timestamppb.Timestamp{Seconds: -1 << 50}}
			if tr.name != "http-json-post" && tr.name != "connect-json" {
				_, err = c.counter.AddCount(ctx, &abacusv1.AddCountRequest{Namespace: "n", CounterName: "c", Delta: 1, IdempotencyToken: bad})
				wantCode(t, "invalid timestamp", err, codes.InvalidArgument)
				if msg := wireMessage(err); !strings.Contains(msg, "idempotency_token.generation_time") {
					t.Fatalf("invalid timestamp: message %q", msg)
				}
				if e.fake.numAdds() != n {
					t.Fatalf("invalid timestamp reached the service")
				}
			}
		})
	}
}

// TestBatchLimit checks that batches are bounded on every transport.
func TestBatchLimit(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			ctx := t.Context()
			e := newEnv(t)
			c := tr.dial(t, e)
			mk := func(n int) ([]*abacusv1.AddCountRequest, []*abacusv1.GetCountRequest) {
				adds := make([]*abacusv1.AddCountRequest, n)
				gets := make([]*abacusv1.GetCountRequest, n)
				for i := range adds {
					adds[i] = &abacusv1.AddCountRequest{Namespace: "n", CounterName: fmt.Sprint("c", i), Delta: 1}
					gets[i] = &abacusv1.GetCountRequest{Namespace: "n", CounterName: fmt.Sprint("c", i)}
				}
				return adds, gets
			}
			adds, gets := mk(abacus.MaxBatch)
			res, err := c.counter.AddCounts(ctx, &abacusv1.AddCountsRequest{Adds: adds})
			mustOK(t, "AddCounts at the limit", err)
			if len(res.GetResults()) != abacus.MaxBatch {
				t.Fatalf("AddCounts: %d results", len(res.GetResults()))
			}
			_, err = c.counter.GetCounts(ctx, &abacusv1.GetCountsRequest{Counters: gets})
			mustOK(t, "GetCounts at the limit", err)

			adds, gets = mk(abacus.MaxBatch + 1)
			_, err = c.counter.AddCounts(ctx, &abacusv1.AddCountsRequest{Adds: adds})
			wantCode(t, "AddCounts over the limit", err, codes.InvalidArgument)
			if msg := wireMessage(err); !strings.Contains(msg, "adds has 10001 items; at most 10000") {
				t.Fatalf("AddCounts over the limit: message %q", msg)
			}
			_, err = c.counter.GetCounts(ctx, &abacusv1.GetCountsRequest{Counters: gets})
			wantCode(t, "GetCounts over the limit", err, codes.InvalidArgument)
			if msg := wireMessage(err); !strings.Contains(msg, "counters has 10001 items; at most 10000") {
				t.Fatalf("GetCounts over the limit: message %q", msg)
			}
		})
	}
}

// TestNamespaceConversion checks namespace fields the domain cannot hold and
// that zero fields stay zero on the way in but are all present on the way out.
func TestNamespaceConversion(t *testing.T) {
	e := newEnv(t)
	const create = abacusv1connect.NamespaceServiceCreateNamespaceProcedure
	bad := map[string]string{
		`{"namespace":{"name":"x","counter_type":7}}`:                                              "counter_type: unknown value 7",
		`{"namespace":{"name":"x","counter_cardinality":-1}}`:                                      "counter_cardinality: unknown value -1",
		`{"namespace":{"name":"x","ttl":"315576000000s"}}`:                                         "ttl: 315576000000 is out of range",
		`{"namespace":{"name":"x","time_partition":{"seconds_per_bucket":"9223372036854775807"}}}`: "time_partition.seconds_per_bucket",
		`{"namespace":{"name":"x","queue_config":{"coalesce_ms":"-9223372036854775807"}}}`:         "queue_config.coalesce_ms",
		`{}`: "namespace is required",
	}
	for body, want := range bad {
		status, res := postJSON(t, e.http.URL, create, body)
		if status != 400 || !strings.Contains(res, want) || !strings.Contains(res, `"invalid_argument"`) {
			t.Errorf("%s: %d %s, want 400 invalid_argument containing %q", body, status, res, want)
		}
	}

	status, res := postJSON(t, e.http.URL, create, `{"namespace":{"name":"x","counter_type":"EVENTUAL"}}`)
	if status != 200 {
		t.Fatalf("create: %d %s", status, res)
	}
	if got, want := e.fake.lastNamespace(), (&abacus.Namespace{Name: "x", Type: abacus.Eventual}); !reflect.DeepEqual(got, want) {
		t.Fatalf("zero fields reached the service as %+v", got)
	}
	var out struct {
		Namespace map[string]any `json:"namespace"`
	}
	if err := json.Unmarshal([]byte(res), &out); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"name", "counter_type", "counter_cardinality", "ttl", "accept_limit", "time_partition", "queue_config", "rollup_batch_count", "retention", "storage", "description", "create_time", "update_time"} {
		if _, ok := out.Namespace[field]; !ok {
			t.Errorf("response lacks %q: %s", field, res)
		}
	}
	if out.Namespace["ttl"] != "0s" || out.Namespace["counter_cardinality"] != "CARDINALITY_UNSPECIFIED" {
		t.Errorf("zero fields not shown as zero: %s", res)
	}
}

// TestArticleBody posts the article's exact body and checks the domain
// request and the JSON answer.
func TestArticleBody(t *testing.T) {
	e := newEnv(t)
	body := `{"namespace":"my_dataset","counter_name":"counter123","delta":2,"idempotency_token":{"token":"some_event_id","generation_time":"2024-10-05T14:48:00Z"}}`
	status, res := postJSON(t, e.http.URL, abacusv1connect.CounterServiceAddCountProcedure, body)
	if status != 200 {
		t.Fatalf("%d %s", status, res)
	}
	want := abacus.AddRequest{Namespace: "my_dataset", Counter: "counter123", Delta: 2, Token: abacus.Token{ID: "some_event_id", Time: articleTime}}
	if got := e.fake.lastAdd(); !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	wantJSON(t, res, `{"idempotency_token":{"token":"some_event_id","generation_time":"2024-10-05T14:48:00Z"}}`)

	status, res = postJSON(t, e.http.URL, abacusv1connect.CounterServiceAddAndGetCountProcedure, strings.Replace(body, "some_event_id", "other", 1))
	if status != 200 {
		t.Fatalf("%d %s", status, res)
	}
	wantJSON(t, res, `{"count":"4","idempotency_token":{"token":"other","generation_time":"2024-10-05T14:48:00Z"}}`)

	// A count of zero is shown, not omitted.
	_, res = postJSON(t, e.http.URL, abacusv1connect.CounterServiceGetCountProcedure, `{"namespace":"my_dataset","counter_name":"never"}`)
	wantJSON(t, res, `{"count":"0"}`)
	// protojson also reads lowerCamelCase names.
	status, res = postJSON(t, e.http.URL, abacusv1connect.CounterServiceGetCountProcedure, `{"namespace":"my_dataset","counterName":"counter123"}`)
	if status != 200 {
		t.Fatalf("%d %s", status, res)
	}
	wantJSON(t, res, `{"count":"4"}`)
	// An empty body is the empty request.
	status, res = postJSON(t, e.http.URL, abacusv1connect.NamespaceServiceListNamespacesProcedure, ``)
	if status != 200 {
		t.Fatalf("empty body: %d %s", status, res)
	}
	wantJSON(t, res, `{"namespaces":[]}`)
}

// wantJSON compares JSON documents, ignoring the whitespace protojson varies.
func wantJSON(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("response %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("response %s, want %s", got, want)
	}
}

// TestMalformedJSON checks that bodies protojson refuses are client errors.
func TestMalformedJSON(t *testing.T) {
	e := newEnv(t)
	for _, body := range []string{
		`{`,
		`not json`,
		`[]`,
		`null`,
		`{"namespace":1}`,
		`{"delta":"two"}`,
		`{"delta":1.5}`,
		`{"namespace":"a","counter_name":"b","delta":2,"bogus":true}`,
		`{"namespace":"a","counter_name":"b","delta":2,"idempotency_token":{"token":"t","generation_time":"yesterday"}}`,
		`{"namespace":"a","counter_name":"b","delta":2,"idempotency_token":{"token":"t","generation_time":"0000-01-01T00:00:00Z"}}`,
		`{"namespace":"a","counter_name":"b","delta":2,"idempotency_tokn":{"token":"t","generation_time":"2024-10-05T14:48:00Z"}}`,
	} {
		status, res := postJSON(t, e.http.URL, abacusv1connect.CounterServiceAddCountProcedure, body)
		var ce struct{ Code string }
		_ = json.Unmarshal([]byte(res), &ce)
		if status != 400 || ce.Code != "invalid_argument" {
			t.Errorf("%s: %d %s, want 400 invalid_argument", body, status, res)
		}
	}
	if n := e.fake.numAdds(); n != 0 {
		t.Errorf("%d malformed requests reached the service", n)
	}

	big := `{"namespace":"` + strings.Repeat("a", api.MaxMessageBytes) + `"}`
	status, res := postJSON(t, e.http.URL, abacusv1connect.CounterServiceGetCountProcedure, big)
	if status != http.StatusTooManyRequests || !strings.Contains(res, "resource_exhausted") {
		t.Errorf("oversized body: %d %.200s", status, res)
	}
}

// TestHTTPEndpoints checks /healthz, /readyz in both states, /metrics, and
// that unknown methods add no metric series.
func TestHTTPEndpoints(t *testing.T) {
	e := newEnv(t)
	get := func(path string) (int, string) {
		res, err := http.Get(e.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz while ready: %d", code)
	}
	e.ready.Store(false)
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz while not ready: %d", code)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz while not ready: %d", code)
	}
	if res, err := http.Post(e.http.URL+"/healthz", "text/plain", nil); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %v %v", res.StatusCode, err)
	}

	for _, tr := range transports {
		c := tr.dial(t, e)
		_, err := c.counter.GetCount(t.Context(), &abacusv1.GetCountRequest{Namespace: "n", CounterName: "c"})
		mustOK(t, tr.name, err)
		_, err = c.counter.GetCount(t.Context(), &abacusv1.GetCountRequest{})
		wantCode(t, tr.name, err, codes.InvalidArgument)
	}
	// AddCount and AddCounts are served from the wire over gRPC (see
	// addsWire): their series are named as the generated handlers' are.
	c := transports[0].dial(t, e)
	_, err := c.counter.AddCount(t.Context(), &abacusv1.AddCountRequest{Namespace: "n", CounterName: "c", Delta: 1})
	mustOK(t, transports[0].name, err)
	_, err = c.counter.AddCounts(t.Context(), &abacusv1.AddCountsRequest{Adds: []*abacusv1.AddCountRequest{{Namespace: "n", CounterName: "c", Delta: 1}}})
	mustOK(t, transports[0].name, err)
	if err := e.grpcConn.Invoke(t.Context(), "/abacus.v1.CounterService/Invented", &abacusv1.GetCountRequest{}, &abacusv1.GetCountResponse{}); wireCode(err) != codes.Unimplemented {
		t.Errorf("unknown gRPC method: %v", err)
	}
	if code, _ := postJSON(t, e.http.URL, "/abacus.v1.CounterService/Invented", `{}`); code != 404 {
		t.Errorf("unknown HTTP method: %d", code)
	}

	code, metrics := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`abacus_requests_total{code="ok",method="abacus.v1.CounterService/GetCount",transport="grpc"} 1`,
		`abacus_requests_total{code="ok",method="abacus.v1.CounterService/GetCount",transport="http"} 5`,
		`abacus_requests_total{code="invalid_argument",method="abacus.v1.CounterService/GetCount",transport="http"} 5`,
		`abacus_request_duration_seconds_count{method="abacus.v1.CounterService/GetCount",transport="grpc"} 2`,
		`abacus_requests_total{code="ok",method="abacus.v1.CounterService/AddCount",transport="grpc"} 1`,
		`abacus_requests_total{code="ok",method="abacus.v1.CounterService/AddCounts",transport="grpc"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, "Invented") {
		t.Errorf("unknown methods made metric series:\n%s", metrics)
	}
}

// TestGRPCHealthAndReflection checks what grpcurl and load balancers use.
func TestGRPCHealthAndReflection(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t)
	hc := healthpb.NewHealthClient(e.grpcConn)
	for _, svc := range []string{"", "abacus.v1.CounterService", "abacus.v1.NamespaceService"} {
		res, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		mustOK(t, "health "+svc, err)
		if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v", svc, res.GetStatus())
		}
	}

	stream, err := reflectionpb.NewServerReflectionClient(e.grpcConn).ServerReflectionInfo(ctx)
	mustOK(t, "reflection", err)
	mustOK(t, "reflection send", stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}))
	res, err := stream.Recv()
	mustOK(t, "reflection recv", err)
	var names []string
	for _, s := range res.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"abacus.v1.CounterService", "abacus.v1.NamespaceService", "grpc.health.v1.Health"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("reflection lists %v, lacks %s", names, want)
		}
	}
	// grpcurl describes and calls methods from the file descriptors.
	mustOK(t, "reflection send", stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "abacus.v1.CounterService"}}))
	res, err = stream.Recv()
	mustOK(t, "reflection recv", err)
	if len(res.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Errorf("no file descriptor for abacus.v1.CounterService: %v", res)
	}
	mustOK(t, "reflection close", stream.CloseSend())

	e.health.Shutdown()
	r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
	mustOK(t, "health after shutdown", err)
	if r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health after Shutdown: %v", r.GetStatus())
	}
}

// TestPanicRecovered checks that a panicking service fails one call, not the node.
func TestPanicRecovered(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			e := newEnv(t)
			c := tr.dial(t, e)
			e.fake.setPanic("secret panic value")
			_, err := c.counter.GetCount(t.Context(), &abacusv1.GetCountRequest{Namespace: "n", CounterName: "c"})
			wantCode(t, "panicking call", err, codes.Internal)
			if strings.Contains(wireMessage(err), "secret") || !strings.Contains(e.logs.String(), "secret panic value") {
				t.Errorf("panic: client saw %q; log:\n%s", wireMessage(err), e.logs.String())
			}
			e.fake.setPanic("")
			_, err = c.counter.GetCount(t.Context(), &abacusv1.GetCountRequest{Namespace: "n", CounterName: "c"})
			mustOK(t, "call after panic", err)
		})
	}
}

// TestH2C checks that Connect JSON also works over cleartext HTTP/2, which
// the server accepts because of HTTPProtocols.
func TestH2C(t *testing.T) {
	e := newEnv(t)
	c := abacusv1connect.NewCounterServiceClient(e.h2c, e.http.URL, connect.WithProtoJSON())
	req := connect.NewRequest(&abacusv1.GetCountRequest{Namespace: "n", CounterName: "c"})
	res, err := c.GetCount(t.Context(), req)
	mustOK(t, "GetCount over h2c", err)
	if res.Msg.GetCount() != 0 {
		t.Fatalf("count %d", res.Msg.GetCount())
	}
	p := api.HTTPProtocols()
	if !p.HTTP1() || !p.UnencryptedHTTP2() || !p.HTTP2() {
		t.Errorf("HTTPProtocols: %v", p)
	}
}
