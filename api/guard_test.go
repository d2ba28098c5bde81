package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/abacus-dev/abacus/auth"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/gen/abacus/v1/abacusv1connect"
)

func tokensFor(t *testing.T) *auth.Set {
	t.Helper()
	h := func(s string) string { b := sha256.Sum256([]byte(s)); return hex.EncodeToString(b[:]) }
	s, err := auth.Parse([]byte(`tokens:
  - {name: reader, sha256: ` + h("reader-secret") + `, grants: [{namespaces: [views], rights: [read]}]}
  - {name: writer, sha256: ` + h("writer-secret") + `, grants: [{namespaces: ["exp_*"], rights: [write]}]}
  - {name: rw, sha256: ` + h("rw-secret") + `, grants: [{namespaces: [views], rights: [read, write]}]}
  - {name: admin, sha256: ` + h("admin-secret") + `, grants: [{namespaces: ["*"], rights: [admin]}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAccessRights runs every method with every kind of caller over gRPC
// and over HTTP/JSON, and checks the code, the HTTP status, and that the
// message names the method and the namespace but never the token.
func TestAccessRights(t *testing.T) {
	e := newEnv(t, withAuth(tokensFor(t)))
	add := func(ns string) proto.Message {
		return &abacusv1.AddCountRequest{Namespace: ns, CounterName: "c", Delta: 1}
	}
	get := func(ns string) proto.Message { return &abacusv1.GetCountRequest{Namespace: ns, CounterName: "c"} }
	tests := []struct {
		name, header, procedure, ns string
		req                         proto.Message
		want                        codes.Code
	}{
		{"no token", "", abacusv1connect.CounterServiceGetCountProcedure, "views", get("views"), codes.Unauthenticated},
		{"unknown token", "Bearer nope", abacusv1connect.CounterServiceGetCountProcedure, "views", get("views"), codes.Unauthenticated},
		{"malformed header", "reader-secret", abacusv1connect.CounterServiceGetCountProcedure, "views", get("views"), codes.Unauthenticated},
		{"read may get", "Bearer reader-secret", abacusv1connect.CounterServiceGetCountProcedure, "views", get("views"), codes.OK},
		{"read may not add", "Bearer reader-secret", abacusv1connect.CounterServiceAddCountProcedure, "views", add("views"), codes.PermissionDenied},
		{"read elsewhere", "Bearer reader-secret", abacusv1connect.CounterServiceGetCountProcedure, "other", get("other"), codes.PermissionDenied},
		{"write by prefix", "Bearer writer-secret", abacusv1connect.CounterServiceAddCountProcedure, "exp_1", add("exp_1"), codes.OK},
		{"write may not get", "Bearer writer-secret", abacusv1connect.CounterServiceGetCountProcedure, "exp_1", get("exp_1"), codes.PermissionDenied},
		{"add-and-get needs read too", "Bearer writer-secret", abacusv1connect.CounterServiceAddAndGetCountProcedure, "exp_1", add("exp_1"), codes.PermissionDenied},
		{"add-and-get with both", "Bearer rw-secret", abacusv1connect.CounterServiceAddAndGetCountProcedure, "views", add("views"), codes.OK},
		{"clear is a write", "Bearer reader-secret", abacusv1connect.CounterServiceClearCountProcedure, "views",
			&abacusv1.ClearCountRequest{Namespace: "views", CounterName: "c"}, codes.PermissionDenied},
		{"batch: every namespace", "Bearer rw-secret", abacusv1connect.CounterServiceAddCountsProcedure, "exp_1",
			&abacusv1.AddCountsRequest{Adds: []*abacusv1.AddCountRequest{{Namespace: "views", CounterName: "c", Delta: 1}, {Namespace: "exp_1", CounterName: "c", Delta: 1}}}, codes.PermissionDenied},
		{"get batch", "Bearer rw-secret", abacusv1connect.CounterServiceGetCountsProcedure, "views",
			&abacusv1.GetCountsRequest{Counters: []*abacusv1.GetCountRequest{{Namespace: "views", CounterName: "a"}, {Namespace: "views", CounterName: "b"}}}, codes.OK},
		{"create needs admin", "Bearer rw-secret", abacusv1connect.NamespaceServiceCreateNamespaceProcedure, "views",
			&abacusv1.CreateNamespaceRequest{Namespace: &abacusv1.Namespace{Name: "views", CounterType: abacusv1.CounterType_EVENTUAL}}, codes.PermissionDenied},
		{"admin may delete", "Bearer admin-secret", abacusv1connect.NamespaceServiceDeleteNamespaceProcedure, "gone",
			&abacusv1.DeleteNamespaceRequest{Name: "gone"}, codes.NotFound},
		{"get namespace with any right", "Bearer writer-secret", abacusv1connect.NamespaceServiceGetNamespaceProcedure, "exp_1",
			&abacusv1.GetNamespaceRequest{Name: "exp_1"}, codes.NotFound},
		{"list events needs read", "Bearer writer-secret", abacusv1connect.CounterServiceListEventsProcedure, "exp_1",
			&abacusv1.ListEventsRequest{Namespace: "exp_1", CounterName: "c"}, codes.PermissionDenied},
		{"list events with read", "Bearer reader-secret", abacusv1connect.CounterServiceListEventsProcedure, "views",
			&abacusv1.ListEventsRequest{Namespace: "views", CounterName: "c"}, codes.OK},
		{"list counters with read", "Bearer reader-secret", abacusv1connect.CounterServiceListCountersProcedure, "views",
			&abacusv1.ListCountersRequest{Namespace: "views"}, codes.OK},
		{"recount with read", "Bearer reader-secret", abacusv1connect.CounterServiceRecountProcedure, "views",
			&abacusv1.RecountRequest{Namespace: "views", CounterName: "c"}, codes.OK},
		{"repair needs admin", "Bearer rw-secret", abacusv1connect.CounterServiceRecountProcedure, "views",
			&abacusv1.RecountRequest{Namespace: "views", CounterName: "c", Repair: true}, codes.PermissionDenied},
		{"get namespace without a right", "Bearer writer-secret", abacusv1connect.NamespaceServiceGetNamespaceProcedure, "views",
			&abacusv1.GetNamespaceRequest{Name: "views"}, codes.PermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, tr := range []string{"grpc", "http"} {
				var code codes.Code
				var message string
				var httpStatus int
				if tr == "grpc" {
					ctx := context.Background()
					if tt.header != "" {
						ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tt.header)
					}
					res := proto.Clone(responseOf(tt.procedure))
					err := e.grpcConn.Invoke(ctx, tt.procedure, tt.req, res, grpc.WaitForReady(true))
					code, message = status.Code(err), status.Convert(err).Message()
				} else {
					httpStatus, code, message = postWithHeader(t, e.http.URL+tt.procedure, tt.header, tt.req)
					want := map[codes.Code]int{codes.OK: 200, codes.Unauthenticated: 401, codes.PermissionDenied: 403, codes.NotFound: 404}[tt.want]
					if httpStatus != want {
						t.Errorf("%s: HTTP %d, want %d", tr, httpStatus, want)
					}
				}
				if code != tt.want {
					t.Fatalf("%s: %v %q, want %v", tr, code, message, tt.want)
				}
				if code == codes.Unauthenticated || code == codes.PermissionDenied {
					method := tt.procedure[strings.LastIndex(tt.procedure, "/")+1:]
					if !strings.Contains(message, method) || !strings.Contains(message, `"`+tt.ns+`"`) {
						t.Errorf("%s: message %q does not name %s and %q", tr, message, method, tt.ns)
					}
					if strings.Contains(message, "secret") {
						t.Errorf("%s: message %q shows the token", tr, message)
					}
				}
			}
		})
	}
}

// TestListNamespacesShowsOnlyGranted: ListNamespaces lists the namespaces
// the token has some right on, and needs a valid token.
func TestListNamespacesShowsOnlyGranted(t *testing.T) {
	e := newEnv(t, withAuth(tokensFor(t)))
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer admin-secret")
	ns := abacusv1.NewNamespaceServiceClient(e.grpcConn)
	for _, name := range []string{"views", "exp_1", "other"} {
		if _, err := ns.CreateNamespace(ctx, &abacusv1.CreateNamespaceRequest{Namespace: &abacusv1.Namespace{Name: name, CounterType: abacusv1.CounterType_EVENTUAL}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		token string
		want  []string
	}{
		{"admin-secret", []string{"exp_1", "other", "views"}},
		{"writer-secret", []string{"exp_1"}},
		{"reader-secret", []string{"views"}},
	} {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tt.token)
		res, err := ns.ListNamespaces(ctx, &abacusv1.ListNamespacesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range res.GetNamespaces() {
			got = append(got, n.GetName())
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s lists %q, want %q", tt.token, got, tt.want)
		}
	}
	if _, err := ns.ListNamespaces(context.Background(), &abacusv1.ListNamespacesRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no token: %v", err)
	}
	if !strings.Contains(e.logs.String(), "msg=audit token=admin method=CreateNamespace namespace=views result=ok") {
		t.Errorf("no audit line for the create in:\n%s", e.logs.String())
	}
}

func responseOf(procedure string) proto.Message {
	switch procedure {
	case abacusv1connect.CounterServiceAddCountProcedure:
		return &abacusv1.AddCountResponse{}
	case abacusv1connect.CounterServiceClearCountProcedure:
		return &abacusv1.ClearCountResponse{}
	case abacusv1connect.CounterServiceAddAndGetCountProcedure:
		return &abacusv1.AddAndGetCountResponse{}
	case abacusv1connect.CounterServiceGetCountProcedure:
		return &abacusv1.GetCountResponse{}
	case abacusv1connect.CounterServiceAddCountsProcedure:
		return &abacusv1.AddCountsResponse{}
	case abacusv1connect.CounterServiceGetCountsProcedure:
		return &abacusv1.GetCountsResponse{}
	case abacusv1connect.CounterServiceListEventsProcedure:
		return &abacusv1.ListEventsResponse{}
	case abacusv1connect.CounterServiceListCountersProcedure:
		return &abacusv1.ListCountersResponse{}
	case abacusv1connect.CounterServiceRecountProcedure:
		return &abacusv1.RecountResponse{}
	case abacusv1connect.NamespaceServiceCreateNamespaceProcedure:
		return &abacusv1.CreateNamespaceResponse{}
	case abacusv1connect.NamespaceServiceDeleteNamespaceProcedure:
		return &abacusv1.DeleteNamespaceResponse{}
	default:
		return &abacusv1.GetNamespaceResponse{}
	}
}

// postWithHeader POSTs req as JSON with an Authorization header (if not
// empty) and returns the HTTP status, the Connect code and the message.
func postWithHeader(t *testing.T, url, header string, req proto.Message) (int, codes.Code, string) {
	t.Helper()
	body, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	hr, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Type", "application/json")
	if header != "" {
		hr.Header.Set("Authorization", header)
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode == 200 {
		return 200, codes.OK, ""
	}
	var ce struct{ Code, Message string }
	_ = json.Unmarshal(b, &ce)
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if strings.EqualFold(strings.ReplaceAll(c.String(), "_", ""), strings.ReplaceAll(ce.Code, "_", "")) {
			return res.StatusCode, c, ce.Message
		}
	}
	return res.StatusCode, codes.Unknown, string(b)
}
