package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/embedded"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/gen/abacus/v1/abacusv1connect"
	"github.com/abacus-dev/abacus/internal/testservers"
	"github.com/abacus-dev/abacus/postgres"
)

const auditNamespaces = `
namespaces:
  - name: audited
    counter_type: ACCURATE
    accept_limit: 1s
    queue_config: {coalesce_ms: 100}
    retention: {close_after: 1h, delete_after: 2h}
  - name: quick
    counter_type: BEST_EFFORT
`

// auditStore is one store an audit test runs over: how to start a node on
// it, and how to reach the store directly while the node is down.
type auditStore struct {
	name  string
	flags func(t *testing.T) []string
	// open opens the node's store directly; the node must not be running
	// for the embedded store, which one process at a time may open.
	open func(t *testing.T, d *daemon) (abacus.RollupStore, abacus.NamespaceStore, func())
}

func auditStores() []auditStore {
	var pgURL string
	return []auditStore{
		{"embedded", func(*testing.T) []string { return nil }, func(t *testing.T, d *daemon) (abacus.RollupStore, abacus.NamespaceStore, func()) {
			st, err := embedded.Open(d.dataDir, embedded.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return st, st, func() { st.Close() }
		}},
		{"postgres", func(t *testing.T) []string {
			pgURL = testservers.StartPostgres(t).URL()
			return []string{"--postgres", pgURL}
		}, func(t *testing.T, _ *daemon) (abacus.RollupStore, abacus.NamespaceStore, func()) {
			st, err := postgres.Open(context.Background(), pgURL, postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return st, st, st.Close
		}},
	}
}

// TestAuditSurface writes events with tokens to a built abacusd on each
// store and checks, over gRPC and HTTP/JSON: the events listed and
// exported, the counters listed, a recount that matches; then corrupts a
// checkpoint directly in the store, and checks that a recount finds it and
// a repair fixes it.
func TestAuditSurface(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	for _, s := range auditStores() {
		t.Run(s.name, func(t *testing.T) {
			d := newDaemon(t, writeFile(t, "ns.yaml", auditNamespaces))
			d.extra = s.flags(t)
			d.start()
			g, _ := client(t, d.grpcAddr)
			h := abacusv1connect.NewCounterServiceClient(http.DefaultClient, "http://"+d.httpAddr, connect.WithProtoJSON())
			ctx := ctxT(t, 2*time.Minute)
			t0 := time.Now().Add(-500 * time.Millisecond).Truncate(time.Millisecond)
			var written []string
			for i := range 12 {
				c := fmt.Sprintf("page-%d", i%3)
				id := fmt.Sprintf("evt-%02d", i)
				_, err := g.AddCount(ctx, &abacusv1.AddCountRequest{Namespace: "audited", CounterName: c, Delta: int64(i + 1),
					IdempotencyToken: &abacusv1.IdempotencyToken{Token: id, GenerationTime: timestamppb.New(t0.Add(time.Duration(i) * time.Millisecond))}})
				if err != nil {
					t.Fatal(err)
				}
				if c == "page-0" {
					written = append(written, id)
				}
			}

			// ListEvents: the same pages over both transports.
			listAll := func(name string, list func(*abacusv1.ListEventsRequest) (*abacusv1.ListEventsResponse, error)) []string {
				var ids []string
				req := &abacusv1.ListEventsRequest{Namespace: "audited", CounterName: "page-0", PageSize: 2}
				for {
					res, err := list(req)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					for _, e := range res.GetEvents() {
						ids = append(ids, e.GetEventId())
					}
					if res.GetNextPageToken() == "" {
						return ids
					}
					req.PageToken = res.GetNextPageToken()
				}
			}
			viaGRPC := listAll("grpc", func(r *abacusv1.ListEventsRequest) (*abacusv1.ListEventsResponse, error) { return g.ListEvents(ctx, r) })
			viaHTTP := listAll("http", func(r *abacusv1.ListEventsRequest) (*abacusv1.ListEventsResponse, error) {
				res, err := h.ListEvents(ctx, connect.NewRequest(r))
				if err != nil {
					return nil, err
				}
				return res.Msg, nil
			})
			if fmt.Sprint(viaGRPC) != fmt.Sprint(written) || fmt.Sprint(viaHTTP) != fmt.Sprint(written) {
				t.Fatalf("events of page-0: grpc %v, http %v; want %v", viaGRPC, viaHTTP, written)
			}
			if _, err := g.ListEvents(ctx, &abacusv1.ListEventsRequest{Namespace: "quick", CounterName: "c"}); status.Code(err) != codes.FailedPrecondition {
				t.Errorf("ListEvents of a BEST_EFFORT namespace: %v, want FailedPrecondition", err)
			}

			// ExportEvents: the whole namespace, counters in name order, over
			// both transports.
			export := func(name string) int {
				n := 0
				prev := ""
				check := func(events []*abacusv1.Event) {
					for _, e := range events {
						if e.GetCounterName() < prev {
							t.Fatalf("%s: export out of counter order: %s after %s", name, e.GetCounterName(), prev)
						}
						prev = e.GetCounterName()
						n++
					}
				}
				if name == "grpc" {
					st, err := g.ExportEvents(ctx, &abacusv1.ExportEventsRequest{Namespace: "audited"})
					if err != nil {
						t.Fatal(err)
					}
					for {
						res, err := st.Recv()
						if errors.Is(err, io.EOF) {
							return n
						}
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						check(res.GetEvents())
					}
				}
				st, err := h.ExportEvents(ctx, connect.NewRequest(&abacusv1.ExportEventsRequest{Namespace: "audited"}))
				if err != nil {
					t.Fatal(err)
				}
				for st.Receive() {
					check(st.Msg().GetEvents())
				}
				if err := st.Err(); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				return n
			}
			for _, tr := range []string{"grpc", "http"} {
				if n := export(tr); n != 12 {
					t.Errorf("%s export: %d events, want 12", tr, n)
				}
			}

			// Counts converge; ListCounters and Recount agree with them.
			want := map[string]int64{"page-0": 1 + 4 + 7 + 10, "page-1": 2 + 5 + 8 + 11, "page-2": 3 + 6 + 9 + 12}
			deadline := time.Now().Add(30 * time.Second)
			for {
				res, err := g.ListCounters(ctx, &abacusv1.ListCountersRequest{Namespace: "audited", PageSize: 2})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.GetCounters()) != 2 || res.GetNextPageToken() == "" {
					t.Fatalf("first page of counters: %v", res)
				}
				rest, err := g.ListCounters(ctx, &abacusv1.ListCountersRequest{Namespace: "audited", PageSize: 2, PageToken: res.GetNextPageToken()})
				if err != nil {
					t.Fatal(err)
				}
				all := append(res.GetCounters(), rest.GetCounters()...)
				exact := len(all) == 3 && rest.GetNextPageToken() == ""
				for _, c := range all {
					exact = exact && c.GetCheckpointCount() == want[c.GetCounterName()]
				}
				if exact {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("counters never rolled up to %v: %v", want, all)
				}
				time.Sleep(200 * time.Millisecond)
			}
			for c, n := range want {
				res, err := g.Recount(ctx, &abacusv1.RecountRequest{Namespace: "audited", CounterName: c})
				if err != nil || !res.GetMatch() || res.GetRecounted() != n || res.GetEventsScanned() != 4 {
					t.Fatalf("recount of %s: %v, %v; want a match at %d", c, res, err, n)
				}
			}

			// Corrupt page-1's checkpoint in the store, with the node stopped
			// (gracefully: the embedded store's checkpoints are not fsynced
			// one by one, and a kill -9 could take them back).
			if err := d.stop(); err != nil {
				t.Fatal(err)
			}
			rs, nss, closeStore := s.open(t, d)
			ns, err := nss.GetNamespace(ctx, "audited")
			if err != nil {
				t.Fatal(err)
			}
			st, err := rs.RollupState(ctx, ns, "page-1")
			if err != nil {
				t.Fatal(err)
			}
			bad := abacus.Checkpoint{Count: st.Count.Add(1000), Through: st.Through}
			if _, ok, err := rs.RepairCheckpoint(ctx, ns, "page-1", st.Checkpoint, bad); err != nil || !ok {
				t.Fatalf("corrupting the checkpoint: %v, %v", ok, err)
			}
			closeStore()
			d.start()
			g, _ = client(t, d.grpcAddr)
			h = abacusv1connect.NewCounterServiceClient(http.DefaultClient, "http://"+d.httpAddr, connect.WithProtoJSON())

			res, err := h.Recount(ctx, connect.NewRequest(&abacusv1.RecountRequest{Namespace: "audited", CounterName: "page-1"}))
			if err != nil || res.Msg.GetMatch() || res.Msg.GetCheckpointCount() != want["page-1"]+1000 || res.Msg.GetRecounted() != want["page-1"] {
				t.Fatalf("recount of the corrupted checkpoint: %v, %v", res, err)
			}
			fixed, err := g.Recount(ctx, &abacusv1.RecountRequest{Namespace: "audited", CounterName: "page-1", Repair: true})
			if err != nil || !fixed.GetRepaired() {
				t.Fatalf("repair: %v, %v", fixed, err)
			}
			after, err := g.Recount(ctx, &abacusv1.RecountRequest{Namespace: "audited", CounterName: "page-1"})
			if err != nil || !after.GetMatch() {
				t.Fatalf("recount after the repair: %v, %v", after, err)
			}
			got, err := g.GetCount(ctx, &abacusv1.GetCountRequest{Namespace: "audited", CounterName: "page-1"})
			if err != nil || got.GetCount() != want["page-1"] {
				t.Fatalf("count after the repair: %v, %v; want %d", got, err, want["page-1"])
			}
		})
	}
}
