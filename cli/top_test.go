package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
)

// fakeNode serves what top reads: a history whose rates change on every
// call, and two namespaces; it checks the bearer token.
func fakeNode(t *testing.T, token string) *httptest.Server {
	var calls atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/api/history", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"code":"unauthenticated","message":"history: no token"}`)
			return
		}
		n := calls.Add(1)
		fmt.Fprintf(w, `{"interval_ms":1000,"dropped":0,"times":[1000,2000],"series":[
			{"group":"requests","label":"CounterService/AddCount ok","namespace":"","values":[1,%d]},
			{"group":"increments","label":"all","namespace":"","values":[1,250]},
			{"group":"lag","label":"max","namespace":"","values":[0,2.5]},
			{"group":"queue","label":"counters","namespace":"","values":[0,42]},
			{"group":"fsync","label":"p99","namespace":"","values":[0.5,null]},
			{"group":"store","label":"bytes","namespace":"","values":[0,3145728]},
			{"group":"ns_requests","label":"","namespace":"views","values":[null,%d]},
			{"group":"ns_increments","label":"","namespace":"views","values":[null,250]},
			{"group":"ns_lag","label":"","namespace":"views","values":[null,2.5]},
			{"group":"ns_queue","label":"","namespace":"views","values":[null,42]},
			{"group":"ns_requests","label":"","namespace":"clicks","values":[null,7]}]}`, 1000+n, 900+n)
	})
	mux.HandleFunc("POST /abacus.v1.NamespaceService/ListNamespaces", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"namespaces":[{"name":"clicks","counter_type":"ACCURATE"},{"name":"views","counter_type":"EVENTUAL"}]}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestTopFetch(t *testing.T) {
	srv := fakeNode(t, "s3cret")
	src := &httpTopSource{base: srv.URL, token: "s3cret", hc: srv.Client()}
	d, err := src.fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want float64
	}{
		{"node requests", d.node.requests, 1001},
		{"node increments", d.node.increments, 250},
		{"node lag", d.node.lag, 2.5},
		{"node queue", d.node.queue, 42},
		{"fsync p99 falls back on the last value", d.node.fsyncP99, 0.5},
		{"store", d.node.storeBytes, 3 << 20},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if len(d.namespaces) != 2 || d.namespaces[1].name != "views" || d.namespaces[1].requests != 901 || !d.namespaces[1].hasLag {
		t.Errorf("namespaces %+v", d.namespaces)
	}

	src.token = "wrong"
	if _, err := src.fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "unauthenticated") {
		t.Errorf("with a wrong token: %v", err)
	}
}

// TestTopScreen drives top with bubbletea's test driver: the screen shows
// the namespaces with their rates, refreshes, follows a resize and quits
// on q.
func TestTopScreen(t *testing.T) {
	srv := fakeNode(t, "s3cret")
	src := &httpTopSource{base: srv.URL, token: "s3cret", hc: srv.Client()}
	m := newTopModel(src, "node:7401", 50*time.Millisecond)
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 20))

	var screen []byte
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		screen = append(screen, b...)
		s := string(screen)
		return strings.Contains(s, "views") && strings.Contains(s, "clicks") &&
			strings.Contains(s, "EVENTUAL") && strings.Contains(s, "250/s") && strings.Contains(s, "42")
	}, teatest.WithDuration(10*time.Second))

	// Refreshes: the request rate moves on with every fetch.
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		return bytes.Contains(b, []byte("1003/s")) || bytes.Contains(b, []byte("1004/s"))
	}, teatest.WithDuration(10*time.Second))

	tm.Send(tea.WindowSizeMsg{Width: 40, Height: 8})
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	final := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(topModel)
	if final.width != 40 || final.height != 8 {
		t.Fatalf("size after resize %dx%d", final.width, final.height)
	}
	view := final.View()
	lines := strings.Split(view, "\n")
	if len(lines) > 8 {
		t.Errorf("%d lines on an 8-line terminal:\n%s", len(lines), view)
	}
	for _, l := range lines {
		if w := len([]rune(stripANSI(l))); w > 40 {
			t.Errorf("line of width %d on a 40-column terminal: %q", w, l)
		}
	}
	if !strings.Contains(view, "views") {
		t.Errorf("narrow view lost the namespaces:\n%s", view)
	}
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && !(s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z') {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// TestTopView checks the layout: sorting, the cut to the terminal's
// height, and the error line.
func TestTopView(t *testing.T) {
	d := topData{at: time.Unix(0, 0), node: nodeFigures{1, 2, 3, 4, 5, 6, 7}}
	for i := range 30 {
		d.namespaces = append(d.namespaces, nsFigures{name: fmt.Sprintf("ns%02d", i), kind: "EVENTUAL", requests: float64(i), increments: float64(30 - i)})
	}
	tests := []struct {
		name     string
		sortBy   int
		height   int
		err      error
		firstRow string
		wantIn   []string
		maxLines int
	}{
		{name: "by requests", sortBy: 0, height: 40, firstRow: "ns29", maxLines: 40},
		{name: "by increments", sortBy: 1, height: 40, firstRow: "ns00"},
		{name: "by name", sortBy: 2, height: 40, firstRow: "ns00"},
		{name: "cut to the height", height: 10, wantIn: []string{"more"}, maxLines: 10},
		{name: "error shown", height: 40, err: io.ErrUnexpectedEOF, wantIn: []string{"error: unexpected EOF"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := topModel{addr: "x", width: 120, height: tt.height, data: d, have: true, sortBy: tt.sortBy, err: tt.err}
			v := m.View()
			lines := strings.Split(v, "\n")
			if tt.maxLines > 0 && len(lines) > tt.maxLines {
				t.Errorf("%d lines, want at most %d", len(lines), tt.maxLines)
			}
			if tt.firstRow != "" {
				for i, l := range lines {
					if strings.Contains(l, "NAMESPACE") {
						if !strings.HasPrefix(lines[i+1], tt.firstRow) {
							t.Errorf("first row %q, want %s", lines[i+1], tt.firstRow)
						}
						break
					}
				}
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(v, s) {
					t.Errorf("view lacks %q:\n%s", s, v)
				}
			}
		})
	}
}
