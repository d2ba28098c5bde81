package node

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/api"
	"github.com/abacus-dev/abacus/history"
)

// stubService answers the counter calls talliedService wraps.
type stubService struct{ api.Service }

func (stubService) Add(context.Context, abacus.AddRequest) (abacus.Token, error) {
	return abacus.Token{}, nil
}
func (stubService) AddAndGet(context.Context, abacus.AddRequest) (int64, abacus.Token, error) {
	return 0, abacus.Token{}, nil
}
func (stubService) Get(context.Context, abacus.Ref) (int64, error) { return 0, nil }
func (stubService) Clear(context.Context, abacus.Ref, abacus.Token) (abacus.Token, error) {
	return abacus.Token{}, nil
}
func (stubService) AddBatch(_ context.Context, rs []abacus.AddRequest) ([]abacus.Token, error) {
	return make([]abacus.Token, len(rs)), nil
}
func (stubService) GetBatch(_ context.Context, rs []abacus.Ref) ([]int64, error) {
	return make([]int64, len(rs)), nil
}

func TestTalliedService(t *testing.T) {
	add := func(ns string) abacus.AddRequest { return abacus.AddRequest{Namespace: ns, Counter: "c", Delta: 1} }
	ref := func(ns string) abacus.Ref { return abacus.Ref{Namespace: ns, Counter: "c"} }
	tests := []struct {
		name string
		call func(s api.Service)
		want map[string][2]uint64 // requests, increments
	}{
		{"add", func(s api.Service) { _, _ = s.Add(t.Context(), add("a")) }, map[string][2]uint64{"a": {1, 1}}},
		{"add and get", func(s api.Service) { _, _, _ = s.AddAndGet(t.Context(), add("a")) }, map[string][2]uint64{"a": {1, 1}}},
		{"get", func(s api.Service) { _, _ = s.Get(t.Context(), ref("b")) }, map[string][2]uint64{"b": {1, 0}}},
		{"clear", func(s api.Service) { _, _ = s.Clear(t.Context(), ref("b"), abacus.Token{}) }, map[string][2]uint64{"b": {1, 0}}},
		{"batch: a request per run of one namespace, an increment per add", func(s api.Service) {
			_, _ = s.AddBatch(t.Context(), []abacus.AddRequest{add("a"), add("a"), add("b"), add("a")})
		}, map[string][2]uint64{"a": {2, 3}, "b": {1, 1}}},
		{"get batch", func(s api.Service) {
			_, _ = s.GetBatch(t.Context(), []abacus.Ref{ref("a"), ref("a"), ref("b")})
		}, map[string][2]uint64{"a": {1, 0}, "b": {1, 0}}},
		{"unknown namespaces are not counted", func(s api.Service) { _, _ = s.Add(t.Context(), add("ghost")) }, map[string][2]uint64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tally := new(history.Tally)
			tally.SetNamespaces([]string{"a", "b"})
			tt.call(talliedService{Service: stubService{}, tally: tally})
			for ns, got := range tally.Totals() {
				if got != tt.want[ns] {
					t.Errorf("%s: %v, want %v", ns, got, tt.want[ns])
				}
			}
		})
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestNodeUI: a node serves the dashboard and its history by default, and
// neither with NoUI.
func TestNodeUI(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, noUI := range []bool{false, true} {
		n, err := Start(context.Background(), Config{DataDir: t.TempDir(), NoUI: noUI, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + n.HTTPAddr()
		code, body := get(t, base+"/ui/")
		if noUI {
			if code != http.StatusNotFound {
				t.Errorf("NoUI: /ui/ answers %d", code)
			}
			if _, m := get(t, base+"/metrics"); strings.Contains(m, "abacus_ui_history_bytes") {
				t.Error("NoUI: the history's metric is registered")
			}
		} else {
			if code != http.StatusOK || !strings.Contains(body, "abacus") {
				t.Errorf("/ui/ answers %d: %.200s", code, body)
			}
			// A call of the API shows in the history's requests, gathered
			// from the history's own registry, and the store's size is
			// sampled too.
			resp, err := http.Post(base+"/abacus.v1.NamespaceService/ListNamespaces", "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, h := get(t, base+"/ui/api/history")
				if strings.Contains(h, `"group":"store"`) && strings.Contains(h, `"NamespaceService/ListNamespaces ok"`) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no store size or request rate in the history after 10s: %s", h)
				}
				time.Sleep(100 * time.Millisecond)
			}
			// The node's own registry still has everything.
			if _, m := get(t, base+"/metrics"); !strings.Contains(m, "go_goroutines") || !strings.Contains(m, "abacus_requests_total") {
				t.Error("/metrics lost metrics to the history's registry")
			}
		}
		if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
			t.Errorf("/healthz answers %d beside the dashboard", code)
		}
		if err := n.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDirBytes(t *testing.T) {
	dir := t.TempDir()
	for name, size := range map[string]int{"a": 10, "sub/b": 20} {
		p := filepath.Join(dir, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if n, ok := dirBytes(dir); !ok || n != 30 {
		t.Errorf("dirBytes = %d, %v; want 30", n, ok)
	}
}

// BenchmarkNodeSample is the history's cost per second on a real node:
// one Sample, over the node's whole registry (Go and process collectors,
// the embedded store's metrics, the rollup queues, the request metrics).
func BenchmarkNodeSample(b *testing.B) {
	n, err := Start(context.Background(), Config{DataDir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	s := n.view.sampler
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Sample(context.Background(), now.Add(time.Duration(i)*time.Second))
	}
}
