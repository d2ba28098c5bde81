// Package ui serves the operator's dashboard under /ui/ on a node's HTTP
// port: static pages embedded in the binary (go:embed, so `go run
// ./cmd/abacusd` needs no front-end build) and two read-only JSON
// endpoints the pages poll, the node's recent history and a counter's
// rollup state.
//
// Everything else the pages show or change goes through the public
// Connect JSON API (POST /abacus.v1.<Service>/<Method>) exactly as a client
// would send it, with the token the operator entered, so the dashboard has
// no back door: its validation messages and refusals are the API's own.
// The two endpoints here follow the same rules: with access control on
// they need a valid bearer token, per-namespace figures need a right on
// their namespace, and a counter's rollup state needs the read right.
//
// The third-party front-end files (uPlot) are committed built, under
// assets/vendor/; scripts/ui-vendor.sh refreshes them from npm.
package ui

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strconv"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/auth"
	"github.com/abacus-dev/abacus/history"
	"github.com/abacus-dev/abacus/rollup"
)

//go:embed assets
var assets embed.FS

// Prefix is the path the dashboard is served under.
const Prefix = "/ui/"

// Authenticator turns an Authorization header value into the principal
// whose rights the request has (*auth.Keeper in a node).
type Authenticator interface {
	Authenticate(header string) (*auth.Principal, error)
}

// Options configures Handler.
type Options struct {
	// History is served at /ui/api/history.
	History *history.History
	// CounterState returns the rollup state of a counter of a namespace on
	// this node (NotFound for an unknown namespace); nil: no
	// /ui/api/rollup.
	CounterState func(ctx context.Context, namespace, counter string) (rollup.CounterState, error)
	// Auth, if not nil, turns access control on, as for the API.
	Auth Authenticator
}

// Handler returns the dashboard's handler, to be mounted at Prefix (and
// "/ui", which it redirects).
func Handler(o Options) http.Handler {
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/ui", http.FileServerFS(static))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
	})
	mux.Handle("GET /ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The pages run only their own scripts and talk only to this
		// node: a script injected through a namespace's description
		// could otherwise read the token from session storage.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	if o.History != nil {
		mux.HandleFunc("GET /ui/api/history", o.history)
	}
	if o.CounterState != nil {
		mux.HandleFunc("GET /ui/api/rollup", o.rollup)
	}
	return mux
}

// apiError writes an error as the Connect protocol does, so that the pages
// handle every refusal alike.
func apiError(w http.ResponseWriter, code abacus.Code, msg string) {
	status := map[abacus.Code]int{
		abacus.Unauthenticated:  http.StatusUnauthorized,
		abacus.PermissionDenied: http.StatusForbidden,
		abacus.NotFound:         http.StatusNotFound,
		abacus.InvalidArgument:  http.StatusBadRequest,
	}[code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, map[string]string{"code": code.String(), "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, status, b)
}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// principal authenticates r: nil with access control off; ok false after
// writing the refusal.
func (o Options) principal(w http.ResponseWriter, r *http.Request, what string) (p *auth.Principal, ok bool) {
	if o.Auth == nil {
		return nil, true
	}
	p, err := o.Auth.Authenticate(r.Header.Get("Authorization"))
	if err != nil {
		apiError(w, abacus.Unauthenticated, what+": "+err.Error())
		return nil, false
	}
	return p, true
}

// history serves the node's history as history.Snapshot.AppendJSON
// writes it; ?points=N limits it to the last N samples. Per-namespace
// series are left out for namespaces the token has no right on; the
// node-wide ones are what /metrics already shows to anyone.
func (o Options) history(w http.ResponseWriter, r *http.Request) {
	p, ok := o.principal(w, r, "history")
	if !ok {
		return
	}
	points := 0
	if s := r.URL.Query().Get("points"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			apiError(w, abacus.InvalidArgument, "points must be a count ≥ 0, not "+strconv.Quote(s))
			return
		}
		points = n
	}
	var keep func(history.ID) bool
	if p != nil {
		keep = func(id history.ID) bool { return id.Namespace == "" || p.Rights(id.Namespace) != 0 }
	}
	writeBody(w, http.StatusOK, o.History.Snapshot(points, keep).AppendJSON(nil))
}

// rollupState is the JSON of /ui/api/rollup.
type rollupState struct {
	Held      bool       `json:"held"`
	Running   bool       `json:"running"`
	Parked    bool       `json:"parked"`
	Since     *time.Time `json:"since,omitempty"`
	NotBefore *time.Time `json:"not_before,omitempty"`
	Attempts  int        `json:"attempts"`
}

// rollup serves ?namespace=N&counter=C's rollup state on this node; it
// needs the read right on N, as GetCount does.
func (o Options) rollup(w http.ResponseWriter, r *http.Request) {
	ns, counter := r.URL.Query().Get("namespace"), r.URL.Query().Get("counter")
	p, ok := o.principal(w, r, "rollup state on namespace "+strconv.Quote(ns))
	if !ok {
		return
	}
	if p != nil && !p.Can(ns, auth.Read) {
		apiError(w, abacus.PermissionDenied, "rollup state on namespace "+strconv.Quote(ns)+": token "+strconv.Quote(p.Name)+" lacks the read right there")
		return
	}
	st, err := o.CounterState(r.Context(), ns, counter)
	if err != nil {
		code := abacus.ErrorCode(err)
		msg := abacus.ErrorMessage(err)
		if code == abacus.Internal || errors.Is(err, context.Canceled) {
			msg = "internal error"
		}
		apiError(w, code, msg)
		return
	}
	out := rollupState{Held: st.Held, Running: st.Running, Parked: st.Parked, Attempts: st.Attempts}
	if !st.Since.IsZero() {
		out.Since = &st.Since
	}
	if !st.NotBefore.IsZero() {
		out.NotBefore = &st.NotBefore
	}
	writeJSON(w, http.StatusOK, out)
}
