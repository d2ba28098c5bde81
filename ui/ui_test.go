package ui

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/auth"
	"github.com/abacus-dev/abacus/history"
	"github.com/abacus-dev/abacus/rollup"
)

// tokens returns an access-token set and the tokens of its entries by name.
func tokens(t *testing.T, grants map[string][]string) (*auth.Set, map[string]string) {
	t.Helper()
	file := "tokens:\n"
	secrets := map[string]string{}
	for name, gs := range grants {
		tok, sum := auth.NewToken()
		secrets[name] = tok
		e := auth.Entry{Name: name, SHA256: sum}
		for _, g := range gs {
			pg, err := auth.ParseGrant(g)
			if err != nil {
				t.Fatal(err)
			}
			e.Grants = append(e.Grants, pg)
		}
		y, err := auth.EntryYAML(e)
		if err != nil {
			t.Fatal(err)
		}
		file += y
	}
	set, err := auth.Parse([]byte(file))
	if err != nil {
		t.Fatalf("%v in\n%s", err, file)
	}
	return set, secrets
}

func testHandler(t *testing.T, withAuth bool) (http.Handler, map[string]string) {
	h := history.New(history.Options{})
	h.Record(time.Unix(1000, 0), history.Sample{
		{Group: history.GroupRequests, Label: "CounterService/AddCount ok"}: 5,
		{Group: history.GroupNSRequests, Namespace: "views"}:                3,
		{Group: history.GroupNSRequests, Namespace: "secret"}:               2,
	})
	o := Options{
		History: h,
		CounterState: func(_ context.Context, ns, counter string) (rollup.CounterState, error) {
			if ns != "views" {
				return rollup.CounterState{}, abacus.Errorf(abacus.NotFound, "namespace %q not found", ns)
			}
			return rollup.CounterState{Held: true, Parked: true, Since: time.Unix(900, 0)}, nil
		},
	}
	var secrets map[string]string
	if withAuth {
		var set *auth.Set
		set, secrets = tokens(t, map[string][]string{
			"reader": {"views:read"},
			"writer": {"views:write"},
			"admin":  {"*:admin"},
		})
		o.Auth = set
	}
	return Handler(o), secrets
}

func TestHandler(t *testing.T) {
	tests := []struct {
		name       string
		auth       bool
		token      string // name of the token sent
		path       string
		wantStatus int
		wantIn     []string // substrings of the body
		wantNotIn  []string
	}{
		{name: "page", path: "/ui/", wantStatus: 200, wantIn: []string{"<title>abacus</title>", "app.js"}},
		{name: "redirect", path: "/ui", wantStatus: 301},
		{name: "script", path: "/ui/app.js", wantStatus: 200, wantIn: []string{"sessionStorage"}},
		{name: "chart library", path: "/ui/vendor/uPlot.iife.min.js", wantStatus: 200, wantIn: []string{"uPlot"}},
		{name: "pages need no token", auth: true, path: "/ui/", wantStatus: 200},
		{name: "history open without auth", path: "/ui/api/history", wantStatus: 200,
			wantIn: []string{`"namespace":"views"`, `"namespace":"secret"`, `"interval_ms":1000`}},
		{name: "history needs a token", auth: true, path: "/ui/api/history", wantStatus: 401, wantIn: []string{`"code":"unauthenticated"`}},
		{name: "history shows only the token's namespaces", auth: true, token: "reader", path: "/ui/api/history", wantStatus: 200,
			wantIn: []string{`"namespace":"views"`, "CounterService/AddCount ok"}, wantNotIn: []string{`"secret"`}},
		{name: "history for an admin of every namespace", auth: true, token: "admin", path: "/ui/api/history", wantStatus: 200,
			wantIn: []string{`"namespace":"views"`, `"namespace":"secret"`}},
		{name: "history points", path: "/ui/api/history?points=x", wantStatus: 400, wantIn: []string{"invalid_argument"}},
		{name: "rollup state", path: "/ui/api/rollup?namespace=views&counter=home", wantStatus: 200,
			wantIn: []string{`"held":true`, `"parked":true`, `"since":"1970-01-01T00:15:00Z"`}},
		{name: "rollup state of an unknown namespace", path: "/ui/api/rollup?namespace=nope&counter=x", wantStatus: 404,
			wantIn: []string{`"code":"not_found"`, `namespace \"nope\" not found`}},
		{name: "rollup state needs a token", auth: true, path: "/ui/api/rollup?namespace=views&counter=home", wantStatus: 401},
		{name: "rollup state needs read", auth: true, token: "writer", path: "/ui/api/rollup?namespace=views&counter=home", wantStatus: 403,
			wantIn: []string{"permission_denied", "lacks the read right"}},
		{name: "rollup state with read", auth: true, token: "reader", path: "/ui/api/rollup?namespace=views&counter=home", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, secrets := testHandler(t, tt.auth)
			req := httptest.NewRequest("GET", tt.path, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+secrets[tt.token])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, body)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(string(body), s) {
					t.Errorf("body lacks %q: %.400s", s, body)
				}
			}
			for _, s := range tt.wantNotIn {
				if strings.Contains(string(body), s) {
					t.Errorf("body has %q: %.400s", s, body)
				}
			}
			if strings.HasPrefix(tt.path, "/ui/api/") && rec.Code == 200 && !json.Valid(body) {
				t.Errorf("invalid JSON: %s", body)
			}
		})
	}
}
