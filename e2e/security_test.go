package e2e

// Process-level tests of issue 13's front door: TLS (and mutual TLS) with
// reload, access tokens with per-namespace rights and reload, the CLI's
// security flags, per-namespace rate limits, size and time limits, the
// refusal to listen beyond loopback unprotected, and the audit trail. Each
// rule is checked over gRPC (grpc-go) and over HTTP/JSON (plain net/http
// POSTs of the Connect protocol) against a built abacusd, with certificates
// made in the test by internal/testcerts.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/internal/testcerts"
)

// ---- certificates ----

// pki is a CA and the node certificate it issued, as PEM files.
type pki struct {
	dir               string
	ca                *testcerts.CA
	caFile            string
	certFile, keyFile string // the node's, as served
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "abacus e2e CA")
	cert, key := ca.Issue(t, dir, "node", testcerts.Options{})
	return &pki{dir: dir, ca: ca, caFile: ca.WriteCA(t, dir, "ca"), certFile: cert, keyFile: key}
}

// tlsFlags are the abacusd flags serving p's node certificate.
func (p *pki) tlsFlags() []string {
	return []string{"--tls-cert", p.certFile, "--tls-key", p.keyFile}
}

// pool returns a pool holding the CA certificates in PEM.
func pool(t *testing.T, pems ...[]byte) *x509.CertPool {
	t.Helper()
	cp := x509.NewCertPool()
	for _, p := range pems {
		if !cp.AppendCertsFromPEM(p) {
			t.Fatal("no certificate in CA PEM")
		}
	}
	return cp
}

// clientTLS returns a client configuration trusting roots and, if certFile
// is set, presenting that client certificate. The certificate is offered
// whatever CAs the server asks for (GetClientCertificate), so that a
// certificate of a CA the node does not trust reaches the node and is
// refused there rather than withheld by crypto/tls.
func clientTLS(t *testing.T, roots *x509.CertPool, certFile, keyFile string) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &kp, nil }
	}
	return cfg
}

// replaceFile replaces path's contents atomically (a new file renamed over
// it), as deployment tools do.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// peerCN opens a new TLS connection to addr and returns the CommonName of
// the certificate the node presents.
func peerCN(t *testing.T, addr string, roots *x509.CertPool) (string, error) {
	t.Helper()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(dialer, "tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12})
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

// ---- access tokens ----

// secret is an access token and its name in the tokens file.
type secret struct {
	name, token string
}

func newSecret(name string) secret {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return secret{name: name, token: "tok_" + name + "_" + hex.EncodeToString(b)}
}

func (s secret) bearer() string { return "Bearer " + s.token }

// tokenEntry renders one entry of a tokens file, written by hand here (not
// by package auth) so that the file format itself is under test. grants are
// "NS,NS:RIGHT,RIGHT" as the CLI spells them.
func tokenEntry(s secret, grants ...string) string {
	h := sha256.Sum256([]byte(s.token))
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    sha256: %s\n    grants:\n", s.name, hex.EncodeToString(h[:]))
	for _, g := range grants {
		nss, rights, _ := strings.Cut(g, ":")
		fmt.Fprintf(&b, "      - namespaces: [%s]\n        rights: [%s]\n", quoteList(nss), rights)
	}
	return b.String()
}

func quoteList(s string) string {
	var q []string
	for _, x := range strings.Split(s, ",") {
		q = append(q, strconv.Quote(x))
	}
	return strings.Join(q, ", ")
}

func tokensFile(entries ...string) string {
	return "tokens:\n" + strings.Join(entries, "")
}

// ---- calls over both transports ----

// reply is the outcome of one call, over either transport.
type reply struct {
	code   codes.Code
	msg    string
	err    error         // the transport's error, if any (gRPC status error, HTTP client error)
	status int           // HTTP status; 0 over gRPC
	header http.Header   // HTTP response headers
	retry  time.Duration // gRPC: the RetryInfo delay; HTTP: Retry-After
	hinted bool          // gRPC: a RetryInfo detail came; HTTP: a Retry-After header
	res    proto.Message // the response, on success
}

type rpc struct {
	svc      string
	req, res func() proto.Message
}

func pm[T any, P interface {
	*T
	proto.Message
}]() func() proto.Message {
	return func() proto.Message { return P(new(T)) }
}

var rpcs = map[string]rpc{
	"AddCount":        {"CounterService", pm[abacusv1.AddCountRequest](), pm[abacusv1.AddCountResponse]()},
	"AddAndGetCount":  {"CounterService", pm[abacusv1.AddCountRequest](), pm[abacusv1.AddAndGetCountResponse]()},
	"GetCount":        {"CounterService", pm[abacusv1.GetCountRequest](), pm[abacusv1.GetCountResponse]()},
	"ClearCount":      {"CounterService", pm[abacusv1.ClearCountRequest](), pm[abacusv1.ClearCountResponse]()},
	"AddCounts":       {"CounterService", pm[abacusv1.AddCountsRequest](), pm[abacusv1.AddCountsResponse]()},
	"GetCounts":       {"CounterService", pm[abacusv1.GetCountsRequest](), pm[abacusv1.GetCountsResponse]()},
	"CreateNamespace": {"NamespaceService", pm[abacusv1.CreateNamespaceRequest](), pm[abacusv1.CreateNamespaceResponse]()},
	"GetNamespace":    {"NamespaceService", pm[abacusv1.GetNamespaceRequest](), pm[abacusv1.GetNamespaceResponse]()},
	"ListNamespaces":  {"NamespaceService", pm[abacusv1.ListNamespacesRequest](), pm[abacusv1.ListNamespacesResponse]()},
	"UpdateNamespace": {"NamespaceService", pm[abacusv1.UpdateNamespaceRequest](), pm[abacusv1.UpdateNamespaceResponse]()},
	"DeleteNamespace": {"NamespaceService", pm[abacusv1.DeleteNamespaceRequest](), pm[abacusv1.DeleteNamespaceResponse]()},
}

// wire calls a node's API over one transport: method is the RPC's name,
// authz the raw Authorization header value ("" for none), body the request
// as JSON (the HTTP body; decoded with protojson for gRPC).
type wire struct {
	name string // "grpc" or "http"
	call func(t *testing.T, method, authz, body string) reply
}

func grpcWire(conn *grpc.ClientConn) wire {
	return wire{name: "grpc", call: func(t *testing.T, method, authz, body string) reply {
		t.Helper()
		m, ok := rpcs[method]
		if !ok {
			t.Fatalf("unknown method %s", method)
		}
		req, res := m.req(), m.res()
		if err := protojson.Unmarshal([]byte(body), req); err != nil {
			t.Fatalf("%s body %s: %v", method, body, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if authz != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", authz)
		}
		err := conn.Invoke(ctx, "/abacus.v1."+m.svc+"/"+method, req, res)
		st := status.Convert(err)
		r := reply{code: st.Code(), msg: st.Message(), err: err}
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				r.retry, r.hinted = ri.GetRetryDelay().AsDuration(), true
			}
		}
		if err == nil {
			r.res = res
		}
		return r
	}}
}

func httpWire(hc *http.Client, base string) wire {
	return wire{name: "http", call: func(t *testing.T, method, authz, body string) reply {
		t.Helper()
		m, ok := rpcs[method]
		if !ok {
			t.Fatalf("unknown method %s", method)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/abacus.v1."+m.svc+"/"+method, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return reply{code: codes.Unavailable, msg: err.Error(), err: err}
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return reply{code: codes.Unavailable, msg: err.Error(), err: err}
		}
		r := reply{status: resp.StatusCode, header: resp.Header}
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			secs, err := strconv.Atoi(ra)
			if err != nil {
				t.Errorf("%s: Retry-After %q is not whole seconds", method, ra)
			}
			r.retry, r.hinted = time.Duration(secs)*time.Second, true
		}
		if resp.StatusCode == http.StatusOK {
			res := m.res()
			if err := protojson.Unmarshal(data, res); err != nil {
				t.Fatalf("%s: response %s: %v", method, data, err)
			}
			r.code, r.res = codes.OK, res
			return r
		}
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		var c connect.Code
		if err := json.Unmarshal(data, &e); err != nil || c.UnmarshalText([]byte(e.Code)) != nil {
			t.Fatalf("%s: HTTP %d with a body that is no Connect error: %q", method, resp.StatusCode, data)
		}
		r.code, r.msg = codes.Code(c), e.Message
		r.err = fmt.Errorf("HTTP %d: %s: %s", resp.StatusCode, e.Code, e.Message)
		return r
	}}
}

// wires returns a gRPC and an HTTP wire to d, over TLS with cfg if it is not
// nil, and plaintext otherwise.
func wires(t *testing.T, d *daemon, cfg *tls.Config) []wire {
	t.Helper()
	return []wire{grpcWire(grpcConn(t, d.grpcAddr, cfg)), httpWire(httpClient(t, cfg), baseURL(d, cfg))}
}

func grpcConn(t *testing.T, addr string, cfg *tls.Config) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if cfg != nil {
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func httpClient(t *testing.T, cfg *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

func baseURL(d *daemon, cfg *tls.Config) string {
	if cfg != nil {
		return "https://" + d.httpAddr
	}
	return "http://" + d.httpAddr
}

// get GETs a path of d's HTTP port with an optional Authorization header.
func get(t *testing.T, hc *http.Client, url, authz string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// signal sends sig to the running abacusd.
func (d *daemon) signal(sig os.Signal) {
	d.t.Helper()
	d.mu.Lock()
	cmd := d.cmd
	d.mu.Unlock()
	if cmd == nil {
		d.t.Fatal("abacusd is not running")
	}
	if err := cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
}

// eventually calls cond every 100ms until it returns "" (done) or timeout
// passes, then fails with cond's last complaint.
func eventually(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// httpStatusOf is the HTTP status a Connect error code is served with.
var httpStatusOf = map[codes.Code]int{
	codes.OK:                http.StatusOK,
	codes.Unauthenticated:   http.StatusUnauthorized,
	codes.PermissionDenied:  http.StatusForbidden,
	codes.ResourceExhausted: http.StatusTooManyRequests,
}

// ---- 1. TLS ----

// TestTLS: a node with --tls-cert/--tls-key serves gRPC and HTTPS to
// clients that trust its CA, and refuses plaintext clients and clients that
// trust another CA.
func TestTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	p := newPKI(t)
	roots := pool(t, p.ca.PEM)
	otherRoots := pool(t, testcerts.NewCA(t, "another CA").PEM)
	d := newDaemon(t, "")
	d.extra = p.tlsFlags()
	d.probeTLS = clientTLS(t, roots, "", "")
	d.start()

	const list = `{}`
	for _, tc := range []struct {
		name string
		w    wire
		ok   bool
	}{
		{"grpc/trusting the CA", grpcWire(grpcConn(t, d.grpcAddr, clientTLS(t, roots, "", ""))), true},
		{"grpc/plaintext", grpcWire(grpcConn(t, d.grpcAddr, nil)), false},
		{"grpc/trusting another CA", grpcWire(grpcConn(t, d.grpcAddr, clientTLS(t, otherRoots, "", ""))), false},
		{"http/trusting the CA", httpWire(httpClient(t, clientTLS(t, roots, "", "")), "https://"+d.httpAddr), true},
		{"http/trusting another CA", httpWire(httpClient(t, clientTLS(t, otherRoots, "", "")), "https://"+d.httpAddr), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.w.call(t, "ListNamespaces", "", list)
			if tc.ok {
				if r.code != codes.OK {
					t.Fatalf("ListNamespaces = %v %q, want OK", r.code, r.msg)
				}
				return
			}
			if r.code != codes.Unavailable || r.err == nil {
				t.Fatalf("ListNamespaces = %v %q, want a failed connection", r.code, r.msg)
			}
			if strings.Contains(tc.name, "another CA") && !strings.Contains(r.msg, "certificate") {
				t.Errorf("error %q does not say it is about the certificate", r.msg)
			}
			if strings.HasPrefix(tc.name, "http") {
				var uae x509.UnknownAuthorityError
				if !errors.As(r.err, &uae) {
					t.Errorf("error %v is not x509.UnknownAuthorityError", r.err)
				}
			}
			t.Logf("refused as expected: %s", r.msg)
		})
	}
	t.Run("http/plaintext", func(t *testing.T) {
		// A plaintext request to the TLS port must never reach the API: Go's
		// TLS server answers such a request with a bare 400.
		resp, err := http.Post("http://"+d.httpAddr+"/abacus.v1.NamespaceService/ListNamespaces", "application/json", strings.NewReader(list))
		if err != nil {
			t.Logf("refused as expected: %v", err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK || strings.Contains(string(body), "namespaces") {
			t.Fatalf("plaintext request answered %d %q", resp.StatusCode, body)
		}
		t.Logf("refused as expected: HTTP %d %q", resp.StatusCode, strings.TrimSpace(string(body)))
	})
}

// TestMutualTLS: with --tls-client-ca, both listeners require a client
// certificate of that CA, unexpired.
func TestMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	p := newPKI(t)
	roots := pool(t, p.ca.PEM)
	clientCA := testcerts.NewCA(t, "client CA")
	clientCAFile := clientCA.WriteCA(t, p.dir, "client-ca")
	goodCert, goodKey := clientCA.Issue(t, p.dir, "client", testcerts.Options{Client: true})
	expCert, expKey := clientCA.Issue(t, p.dir, "expired-client", testcerts.Options{Client: true, Expired: true})
	otherCert, otherKey := testcerts.NewCA(t, "another CA").Issue(t, p.dir, "stranger", testcerts.Options{Client: true})

	d := newDaemon(t, "")
	d.extra = append(p.tlsFlags(), "--tls-client-ca", clientCAFile)
	d.probeTLS = clientTLS(t, roots, goodCert, goodKey)
	d.start()

	for _, tc := range []struct {
		name      string
		cert, key string
		ok        bool
	}{
		{"no client certificate", "", "", false},
		{"certificate of another CA", otherCert, otherKey, false},
		{"expired certificate", expCert, expKey, false},
		{"good certificate", goodCert, goodKey, true},
	} {
		cfg := clientTLS(t, roots, tc.cert, tc.key)
		for _, w := range []wire{grpcWire(grpcConn(t, d.grpcAddr, cfg)), httpWire(httpClient(t, cfg), "https://"+d.httpAddr)} {
			t.Run(w.name+"/"+tc.name, func(t *testing.T) {
				r := w.call(t, "ListNamespaces", "", `{}`)
				switch {
				case tc.ok && r.code != codes.OK:
					t.Fatalf("ListNamespaces = %v %q, want OK", r.code, r.msg)
				case !tc.ok && (r.err == nil || r.code != codes.Unavailable):
					t.Fatalf("ListNamespaces = %v %q, want a refused connection", r.code, r.msg)
				case !tc.ok:
					t.Logf("refused as expected: %s", r.msg)
				}
			})
		}
	}
}

// TestTLSReload: a certificate replaced on disk is served to new
// connections, found by polling or on SIGHUP; a broken certificate file is
// refused and the last good certificate stays in force.
func TestTLSReload(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	p := newPKI(t)
	roots := pool(t, p.ca.PEM)
	d := newDaemon(t, "")
	d.extra = p.tlsFlags()
	d.probeTLS = clientTLS(t, roots, "", "")
	d.start()
	// A connection opened before the reloads must keep working after them.
	early := grpcWire(grpcConn(t, d.grpcAddr, clientTLS(t, roots, "", "")))
	if r := early.call(t, "ListNamespaces", "", `{}`); r.code != codes.OK {
		t.Fatalf("ListNamespaces = %v %q", r.code, r.msg)
	}

	served := func(want string) func() string {
		return func() string {
			for _, addr := range []string{d.grpcAddr, d.httpAddr} {
				cn, err := peerCN(t, addr, roots)
				if err != nil {
					return fmt.Sprintf("TLS to %s: %v", addr, err)
				}
				if cn != want {
					return fmt.Sprintf("%s serves %q, want %q", addr, cn, want)
				}
			}
			return ""
		}
	}
	eventually(t, time.Second, served("node"))

	install := func(name string) {
		cert, key := p.ca.Issue(t, t.TempDir(), name, testcerts.Options{})
		// Key first: between the two renames the files do not match, a
		// state a poll may see and must survive.
		replaceFile(t, p.keyFile, readFile(t, key))
		replaceFile(t, p.certFile, readFile(t, cert))
	}

	t.Run("polling", func(t *testing.T) {
		install("node-2")
		eventually(t, 10*time.Second, served("node-2"))
	})
	t.Run("SIGHUP", func(t *testing.T) {
		install("node-3")
		d.signal(syscall.SIGHUP)
		eventually(t, 10*time.Second, served("node-3"))
		if !strings.Contains(d.output(), "TLS certificates reloaded") {
			t.Errorf("no reload in the log:\n%s", d.output())
		}
	})
	t.Run("broken file keeps the old certificate", func(t *testing.T) {
		const failed = "TLS certificates not reloaded"
		before := strings.Count(d.output(), failed)
		replaceFile(t, p.certFile, []byte("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"))
		d.signal(syscall.SIGHUP)
		eventually(t, 10*time.Second, func() string {
			if strings.Count(d.output(), failed) > before {
				return ""
			}
			return "no failed reload logged"
		})
		eventually(t, time.Second, served("node-3"))
		fresh := grpcWire(grpcConn(t, d.grpcAddr, clientTLS(t, roots, "", "")))
		for _, w := range []wire{fresh, early, httpWire(httpClient(t, clientTLS(t, roots, "", "")), "https://"+d.httpAddr)} {
			if r := w.call(t, "ListNamespaces", "", `{}`); r.code != codes.OK {
				t.Errorf("%s after a broken reload: ListNamespaces = %v %q", w.name, r.code, r.msg)
			}
		}
	})
}

// ---- 2. Access tokens ----

const secNamespaces = `namespaces:
  - name: sec_a
    counter_type: ACCURATE
  - name: sec_b
    counter_type: ACCURATE
  - name: other
    counter_type: ACCURATE
`

// TestTokenRights checks every method's answer to every kind of caller,
// over both transports, on a TLS node with access tokens: UNAUTHENTICATED
// (HTTP 401) without a valid token, PERMISSION_DENIED (HTTP 403) without the
// right, OK with it; messages that name the method and the namespace and
// never a token; ListNamespaces filtered by rights; open health, readiness
// and metrics; pprof for admins of "*" only.
func TestTokenRights(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	var (
		reader   = newSecret("reader")
		writer   = newSecret("writer")
		rw       = newSecret("rw")
		stranger = newSecret("stranger")
		admin    = newSecret("admin")
		root     = newSecret("root")
		unknown  = newSecret("unknown") // not in the file
	)
	tokens := writeFile(t, "tokens.yaml", tokensFile(
		tokenEntry(reader, "sec_a:read"),
		tokenEntry(writer, "sec_a:write"),
		tokenEntry(rw, "sec_a:read,write"),
		tokenEntry(stranger, "other:read"),
		tokenEntry(admin, "sec_*:admin"),
		tokenEntry(root, "*:admin"),
	))
	p := newPKI(t)
	cfg := clientTLS(t, pool(t, p.ca.PEM), "", "")
	d := newDaemon(t, writeFile(t, "ns.yaml", secNamespaces))
	d.extra = append(p.tlsFlags(), "--auth-tokens", tokens, "--pprof")
	d.probeTLS = cfg
	d.start()
	ws := wires(t, d, cfg)
	secrets := []secret{reader, writer, rw, stranger, admin, root, unknown}

	// checkMsg checks a refusal's message: method and namespace named, no
	// token text.
	checkMsg := func(t *testing.T, r reply, method, ns string) {
		t.Helper()
		if !strings.Contains(r.msg, method) || (ns != "" && !strings.Contains(r.msg, strconv.Quote(ns))) {
			t.Errorf("message %q does not name %s and %q", r.msg, method, ns)
		}
		for _, s := range secrets {
			if strings.Contains(r.msg, s.token) {
				t.Errorf("message %q contains the token of %s", r.msg, s.name)
			}
		}
	}
	checkStatus := func(t *testing.T, w wire, r reply, want codes.Code) {
		t.Helper()
		if w.name == "http" && r.status != httpStatusOf[want] {
			t.Errorf("HTTP status %d, want %d for %v", r.status, httpStatusOf[want], want)
		}
	}

	t.Run("ListNamespaces shows only namespaces with a right", func(t *testing.T) {
		for _, w := range ws {
			for _, tc := range []struct {
				s    secret
				want []string
			}{
				{reader, []string{"sec_a"}},
				{writer, []string{"sec_a"}},
				{stranger, []string{"other"}},
				{admin, []string{"sec_a", "sec_b"}},
				{root, []string{"other", "sec_a", "sec_b"}},
			} {
				r := w.call(t, "ListNamespaces", tc.s.bearer(), `{}`)
				if r.code != codes.OK {
					t.Fatalf("%s: ListNamespaces as %s = %v %q", w.name, tc.s.name, r.code, r.msg)
				}
				var got []string
				for _, ns := range r.res.(*abacusv1.ListNamespacesResponse).GetNamespaces() {
					got = append(got, ns.GetName())
				}
				slices.Sort(got)
				if !slices.Equal(got, tc.want) {
					t.Errorf("%s: ListNamespaces as %s = %v, want %v", w.name, tc.s.name, got, tc.want)
				}
			}
		}
	})

	// The unauthenticated callers: no header, a token not in the file, and
	// headers that are not "Bearer <token>" (one carrying a valid token
	// under the wrong scheme).
	unauthenticated := []struct{ name, header string }{
		{"no token", ""},
		{"unknown token", unknown.bearer()},
		{"wrong scheme", "Token " + rw.token},
		{"empty bearer", "Bearer"},
	}
	callers := []secret{reader, writer, rw, stranger, admin}

	for _, w := range ws {
		ctr := "c_" + w.name
		tmp := "sec_tmp_" + w.name // created, updated and deleted by admin
		rows := []struct {
			method, ns, body string
			ok               []string // callers answered OK; other valid callers get PERMISSION_DENIED
		}{
			{"GetCount", "sec_a", `{"namespace":"sec_a","counter_name":"` + ctr + `"}`, []string{"reader", "rw"}},
			{"GetCounts", "sec_a", `{"counters":[{"namespace":"sec_a","counter_name":"` + ctr + `"}]}`, []string{"reader", "rw"}},
			{"AddCount", "sec_a", `{"namespace":"sec_a","counter_name":"` + ctr + `","delta":1}`, []string{"writer", "rw"}},
			{"AddCounts", "sec_a", `{"adds":[{"namespace":"sec_a","counter_name":"` + ctr + `","delta":1}]}`, []string{"writer", "rw"}},
			{"ClearCount", "sec_a", `{"namespace":"sec_a","counter_name":"` + ctr + `"}`, []string{"writer", "rw"}},
			{"AddAndGetCount", "sec_a", `{"namespace":"sec_a","counter_name":"` + ctr + `","delta":1}`, []string{"rw"}},
			{"GetNamespace", "sec_a", `{"name":"sec_a"}`, []string{"reader", "writer", "rw", "admin"}},
			{"ListNamespaces", "", `{}`, []string{"reader", "writer", "rw", "stranger", "admin"}},
			{"CreateNamespace", tmp, `{"namespace":{"name":"` + tmp + `","counter_type":"ACCURATE"}}`, []string{"admin"}},
			{"UpdateNamespace", tmp, `{"namespace":{"name":"` + tmp + `","description":"updated"}}`, []string{"admin"}},
			{"DeleteNamespace", tmp, `{"name":"` + tmp + `"}`, []string{"admin"}},
		}
		for _, row := range rows {
			t.Run(w.name+"/"+row.method, func(t *testing.T) {
				for _, u := range unauthenticated {
					r := w.call(t, row.method, u.header, row.body)
					if r.code != codes.Unauthenticated {
						t.Errorf("%s: %v %q, want Unauthenticated", u.name, r.code, r.msg)
						continue
					}
					checkStatus(t, w, r, codes.Unauthenticated)
					checkMsg(t, r, row.method, row.ns)
				}
				for _, s := range callers {
					want := codes.PermissionDenied
					if slices.Contains(row.ok, s.name) {
						want = codes.OK
					}
					r := w.call(t, row.method, s.bearer(), row.body)
					if r.code != want {
						t.Errorf("as %s: %v %q, want %v", s.name, r.code, r.msg, want)
						continue
					}
					checkStatus(t, w, r, want)
					if want != codes.OK {
						checkMsg(t, r, row.method, row.ns)
						if !strings.Contains(r.msg, s.name) {
							t.Errorf("as %s: message %q does not name the token", s.name, r.msg)
						}
					}
				}
			})
		}
		t.Run(w.name+"/refused writes counted nothing", func(t *testing.T) {
			// The last accepted write of the table was rw's AddAndGetCount
			// after the clears: every refused add and AddAndGetCount since
			// would show here.
			r := w.call(t, "GetCount", reader.bearer(), `{"namespace":"sec_a","counter_name":"`+ctr+`"}`)
			if r.code != codes.OK || r.res.(*abacusv1.GetCountResponse).GetCount() != 1 {
				t.Fatalf("count = %v %q %v, want 1", r.code, r.msg, r.res)
			}
		})
		t.Run(w.name+"/batch over two namespaces names the one refused", func(t *testing.T) {
			body := `{"adds":[{"namespace":"sec_a","counter_name":"b","delta":1},{"namespace":"sec_b","counter_name":"b","delta":1}]}`
			r := w.call(t, "AddCounts", rw.bearer(), body)
			if r.code != codes.PermissionDenied {
				t.Fatalf("AddCounts = %v %q, want PermissionDenied", r.code, r.msg)
			}
			checkMsg(t, r, "AddCounts", "sec_b")
			if g := w.call(t, "GetCount", rw.bearer(), `{"namespace":"sec_a","counter_name":"b"}`); g.code != codes.OK || g.res.(*abacusv1.GetCountResponse).GetCount() != 0 {
				t.Errorf("a refused batch counted: %v %q %v", g.code, g.msg, g.res)
			}
		})
	}

	t.Run("health, readiness and metrics stay open", func(t *testing.T) {
		hc := httpClient(t, cfg)
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			if code, body := get(t, hc, "https://"+d.httpAddr+path, ""); code != http.StatusOK {
				t.Errorf("GET %s without a token = %d %q", path, code, body)
			}
		}
	})
	t.Run("pprof needs admin on *", func(t *testing.T) {
		hc := httpClient(t, cfg)
		for _, tc := range []struct {
			authz string
			want  int
		}{
			{"", http.StatusUnauthorized},
			{unknown.bearer(), http.StatusUnauthorized},
			{reader.bearer(), http.StatusForbidden},
			{admin.bearer(), http.StatusForbidden}, // admin on sec_* only
			{root.bearer(), http.StatusOK},
		} {
			code, body := get(t, hc, "https://"+d.httpAddr+"/debug/pprof/cmdline", tc.authz)
			if code != tc.want {
				t.Errorf("GET /debug/pprof/cmdline with %q = %d, want %d", tc.authz, code, tc.want)
			}
			for _, s := range secrets {
				if strings.Contains(body, s.token) {
					t.Errorf("pprof answer %q contains the token of %s", body, s.name)
				}
			}
		}
	})
	if out := d.output(); secretIn(out, secrets) != "" {
		t.Errorf("the node's log contains the token of %s", secretIn(out, secrets))
	}
}

// secretIn returns the name of the first secret whose token s contains, or "".
func secretIn(s string, secrets []secret) string {
	for _, x := range secrets {
		if strings.Contains(s, x.token) {
			return x.name
		}
	}
	return ""
}

// TestTokenFileReload: the tokens file edited while the node runs (a token
// added, one removed) takes effect within a few seconds without a signal; a
// broken edit keeps the tokens in force, and a later good edit still takes.
func TestTokenFileReload(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	alpha, beta, gamma := newSecret("alpha"), newSecret("beta"), newSecret("gamma")
	tokens := writeFile(t, "tokens.yaml", tokensFile(tokenEntry(alpha, "sec_a:read")))
	d := newDaemon(t, writeFile(t, "ns.yaml", secNamespaces))
	d.extra = []string{"--auth-tokens", tokens}
	d.start()
	ws := wires(t, d, nil)

	const body = `{"namespace":"sec_a","counter_name":"c"}`
	// accepts reports "" when every wire answers each secret's GetCount as
	// want says (true: OK, false: UNAUTHENTICATED).
	accepts := func(want map[secret]bool) func() string {
		return func() string {
			for _, w := range ws {
				for s, ok := range want {
					r := w.call(t, "GetCount", s.bearer(), body)
					if ok && r.code != codes.OK || !ok && r.code != codes.Unauthenticated {
						return fmt.Sprintf("%s: GetCount as %s = %v %q (want accepted: %v)", w.name, s.name, r.code, r.msg, ok)
					}
				}
			}
			return ""
		}
	}
	eventually(t, time.Second, accepts(map[secret]bool{alpha: true, beta: false}))

	t.Run("add one, remove one", func(t *testing.T) {
		replaceFile(t, tokens, []byte(tokensFile(tokenEntry(beta, "sec_a:read"))))
		eventually(t, 10*time.Second, accepts(map[secret]bool{alpha: false, beta: true}))
	})
	t.Run("broken edit keeps the tokens", func(t *testing.T) {
		const failed = "access tokens not reloaded"
		before := strings.Count(d.output(), failed)
		// gamma is added, but the file no longer parses (a right misspelt).
		replaceFile(t, tokens, []byte(tokensFile(tokenEntry(beta, "sec_a:read"), tokenEntry(gamma, "sec_a:reed"))))
		eventually(t, 10*time.Second, func() string {
			if strings.Count(d.output(), failed) > before {
				return ""
			}
			return "no failed reload logged"
		})
		eventually(t, time.Second, accepts(map[secret]bool{alpha: false, beta: true, gamma: false}))
	})
	t.Run("fixed edit takes", func(t *testing.T) {
		replaceFile(t, tokens, []byte(tokensFile(tokenEntry(beta, "sec_a:read"), tokenEntry(gamma, "sec_a:read"))))
		eventually(t, 10*time.Second, accepts(map[secret]bool{alpha: false, beta: true, gamma: true}))
	})
}

// ---- 3. The CLI ----

// runCLI runs the abacus binary with env added to the environment (without
// any ABACUS_* variable of the test's own) and returns its output and exit
// status.
func runCLI(t *testing.T, env []string, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "abacus"), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ABACUS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	default:
		t.Fatalf("abacus %q: %v", args, err)
	}
	return out.String(), errb.String(), exit
}

// TestTokenCLI runs the abacus CLI against a TLS node with access tokens:
// --tls-ca and --token, ABACUS_TOKEN, a wrong token, plaintext against TLS,
// and a token made with "abacus token new" pasted into the tokens file.
func TestTokenCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	rw := newSecret("cli_rw")
	tokens := writeFile(t, "tokens.yaml", tokensFile(tokenEntry(rw, "sec_a:read,write")))
	p := newPKI(t)
	d := newDaemon(t, writeFile(t, "ns.yaml", secNamespaces))
	d.extra = append(p.tlsFlags(), "--auth-tokens", tokens)
	d.probeTLS = clientTLS(t, pool(t, p.ca.PEM), "", "")
	d.start()
	conn := []string{"--addr", d.grpcAddr, "--tls-ca", p.caFile}
	args := func(more ...string) []string { return append(slices.Clone(conn), more...) }

	t.Run("--token", func(t *testing.T) {
		if out, errOut, code := runCLI(t, nil, args("--token", rw.token, "add", "sec_a", "c", "1")...); code != 0 {
			t.Fatalf("add: exit %d\n%s%s", code, out, errOut)
		}
	})
	t.Run("ABACUS_TOKEN", func(t *testing.T) {
		out, errOut, code := runCLI(t, []string{"ABACUS_TOKEN=" + rw.token}, args("add", "sec_a", "c", "2", "--get")...)
		if code != 0 || strings.TrimSpace(out) != "3" {
			t.Fatalf("add --get: exit %d, stdout %q, stderr %q; want 3", code, out, errOut)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		wrong := newSecret("wrong")
		out, errOut, code := runCLI(t, nil, args("--token", wrong.token, "add", "sec_a", "c", "1")...)
		if code != 1 || !strings.Contains(errOut, "unauthenticated") {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 1 and unauthenticated", code, out, errOut)
		}
		if strings.Contains(out+errOut, wrong.token) {
			t.Errorf("the CLI printed the token: %q", errOut)
		}
	})
	t.Run("plaintext against TLS", func(t *testing.T) {
		out, errOut, code := runCLI(t, nil, "--addr", d.grpcAddr, "--token", rw.token, "--retries", "0", "--timeout", "3s", "get", "sec_a", "c")
		if code != 1 {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 1", code, out, errOut)
		}
	})
	t.Run("token new, pasted into the tokens file", func(t *testing.T) {
		tok, entry, code := runCLI(t, nil, "token", "new", "--name", "minted", "--grant", "sec_b:read,write")
		tok = strings.TrimSpace(tok)
		if code != 0 || tok == "" || strings.Contains(tok, "\n") {
			t.Fatalf("token new: exit %d, stdout %q, stderr %q", code, tok, entry)
		}
		h := sha256.Sum256([]byte(tok))
		if !strings.Contains(entry, hex.EncodeToString(h[:])) || !strings.Contains(entry, "minted") || strings.Contains(entry, tok) {
			t.Fatalf("entry on stderr %q: want the name and the token's sha256, not the token", entry)
		}
		if _, errOut, code := runCLI(t, nil, args("--token", tok, "add", "sec_b", "c", "1")...); code != 1 || !strings.Contains(errOut, "unauthenticated") {
			t.Fatalf("before the paste: exit %d, %q; want unauthenticated", code, errOut)
		}
		replaceFile(t, tokens, append(readFile(t, tokens), entry...))
		d.signal(syscall.SIGHUP)
		eventually(t, 10*time.Second, func() string {
			if _, errOut, code := runCLI(t, nil, args("--token", tok, "add", "sec_b", "c", "1")...); code != 0 {
				return errOut
			}
			return ""
		})
		if out, errOut, code := runCLI(t, nil, args("--token", tok, "get", "sec_b", "c")...); code != 0 || strings.TrimSpace(out) != "1" {
			t.Errorf("get: exit %d, stdout %q, stderr %q; want 1", code, out, errOut)
		}
		if _, errOut, code := runCLI(t, nil, args("--token", tok, "get", "sec_a", "c")...); code != 1 || !strings.Contains(errOut, "permission_denied") {
			t.Errorf("get on a namespace without a grant: exit %d, %q; want permission_denied", code, errOut)
		}
		// The old token still works after the reload.
		if out, errOut, code := runCLI(t, nil, args("--token", rw.token, "get", "sec_a", "c")...); code != 0 || strings.TrimSpace(out) != "3" {
			t.Errorf("get as cli_rw: exit %d, stdout %q, stderr %q; want 3", code, out, errOut)
		}
	})
}

// ---- 4. Rate limits ----

// TestRateLimit: a burst over a namespace's rate limit is partly refused
// with RESOURCE_EXHAUSTED and a retry hint, counts exactly what was
// accepted, and shows in /metrics; abacus ns create/update set limits.
func TestRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	d := newDaemon(t, writeFile(t, "ns.yaml", `namespaces:
  - name: rl_grpc
    counter_type: ACCURATE
    rate_limit: {requests_per_second: 5, burst: 5}
  - name: rl_http
    counter_type: ACCURATE
    rate_limit: {requests_per_second: 5, burst: 5}
`))
	d.start()
	ws := wires(t, d, nil)

	// burst sends n AddCounts of 1 at once and returns how many were
	// accepted, checking every refusal.
	burst := func(t *testing.T, w wire, ns string, n int) (accepted int) {
		t.Helper()
		var ok atomic.Int64
		var wg sync.WaitGroup
		var mu sync.Mutex
		var bad []string
		// Each add has its own idempotency token: none is a retry of another.
		run := newSecret("burst").token
		for i := range n {
			wg.Go(func() {
				body := fmt.Sprintf(`{"namespace":%q,"counter_name":"c","delta":1,"idempotency_token":{"token":"%s-%d","generation_time":%q}}`,
					ns, run, i, time.Now().UTC().Format(time.RFC3339Nano))
				r := w.call(t, "AddCount", "", body)
				switch {
				case r.code == codes.OK:
					ok.Add(1)
					return
				case r.code != codes.ResourceExhausted:
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%v %q", r.code, r.msg))
					mu.Unlock()
					return
				}
				if !r.hinted || r.retry <= 0 {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("refusal without a retry hint (retry %v): %q", r.retry, r.msg))
					mu.Unlock()
				}
				if w.name == "http" && r.status != http.StatusTooManyRequests {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("refusal with HTTP status %d", r.status))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for _, b := range bad {
			t.Error(b)
		}
		return int(ok.Load())
	}
	// count reads an ACCURATE counter, waiting out the rate limit (reads
	// take from it too).
	count := func(t *testing.T, w wire, ns string) int64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := w.call(t, "GetCount", "", fmt.Sprintf(`{"namespace":%q,"counter_name":"c"}`, ns))
			if r.code == codes.OK {
				return r.res.(*abacusv1.GetCountResponse).GetCount()
			}
			if r.code != codes.ResourceExhausted || time.Now().After(deadline) {
				t.Fatalf("GetCount %s: %v %q", ns, r.code, r.msg)
			}
			time.Sleep(max(r.retry, 50*time.Millisecond))
		}
	}

	refused := map[string]int{}
	for _, w := range ws {
		ns := "rl_" + w.name
		t.Run(w.name, func(t *testing.T) {
			const n = 20
			acc := burst(t, w, ns, n)
			refused[ns] = n - acc
			t.Logf("%d of %d accepted", acc, n)
			if acc == 0 || acc == n {
				t.Fatalf("%d of %d quick adds accepted under 5/s, burst 5: want some accepted and some refused", acc, n)
			}
			if got := count(t, w, ns); got != int64(acc) {
				t.Fatalf("count = %d, want the %d accepted adds exactly", got, acc)
			}
		})
	}
	t.Run("metrics", func(t *testing.T) {
		code, body := get(t, http.DefaultClient, "http://"+d.httpAddr+"/metrics", "")
		if code != http.StatusOK {
			t.Fatalf("GET /metrics = %d", code)
		}
		for ns, n := range refused {
			v, ok := metricValue(body, "abacus_rate_limited_total", `limit="requests"`, `namespace="`+ns+`"`)
			if !ok || v < float64(n) {
				t.Errorf("abacus_rate_limited_total for %s = %v (found %v), want at least the %d refused adds", ns, v, ok, n)
			}
		}
	})
	t.Run("ns update --rate-limit-*", func(t *testing.T) {
		if out, errOut, code := runCLI(t, nil, "--addr", d.grpcAddr, "ns", "update", "rl_grpc",
			"--rate-limit-rps", "1000", "--rate-limit-ips", "2000", "--rate-limit-burst", "100"); code != 0 {
			t.Fatalf("ns update: exit %d\n%s%s", code, out, errOut)
		}
		checkRateLimit(t, d, "rl_grpc", 1000, 2000, 100)
		before := count(t, ws[0], "rl_grpc")
		if acc := burst(t, ws[0], "rl_grpc", 20); acc != 20 {
			t.Errorf("%d of 20 adds accepted under the raised limit, want 20", acc)
		}
		if got := count(t, ws[0], "rl_grpc"); got != before+20 {
			t.Errorf("count = %d, want %d", got, before+20)
		}
	})
	t.Run("ns create --rate-limit-*", func(t *testing.T) {
		if out, errOut, code := runCLI(t, nil, "--addr", d.grpcAddr, "ns", "create", "rl_cli", "--type", "ACCURATE",
			"--rate-limit-rps", "2", "--rate-limit-burst", "3"); code != 0 {
			t.Fatalf("ns create: exit %d\n%s%s", code, out, errOut)
		}
		checkRateLimit(t, d, "rl_cli", 2, 0, 3)
	})
}

// checkRateLimit checks a namespace's rate limit as "abacus ns get -o json"
// prints it.
func checkRateLimit(t *testing.T, d *daemon, ns string, rps, ips float64, burst int) {
	t.Helper()
	out, errOut, code := runCLI(t, nil, "--addr", d.grpcAddr, "ns", "get", ns, "-o", "json")
	if code != 0 {
		t.Fatalf("ns get: exit %d\n%s%s", code, out, errOut)
	}
	var got struct {
		RateLimit struct {
			RPS   float64 `json:"requests_per_second"`
			IPS   float64 `json:"increments_per_second"`
			Burst int     `json:"burst"`
		} `json:"rate_limit"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("ns get -o json: %v\n%s", err, out)
	}
	if rl := got.RateLimit; rl.RPS != rps || rl.IPS != ips || rl.Burst != burst {
		t.Errorf("rate_limit of %s = %+v, want rps %v ips %v burst %d\n%s", ns, rl, rps, ips, burst, out)
	}
}

// metricValue returns the value of the sample of name whose labels include
// every one of labels, from a Prometheus text exposition.
func metricValue(body, name string, labels ...string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(line, l)
		}
		if !all {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		return v, err == nil
	}
	return 0, false
}

// ---- 5. Size and time limits ----

// TestSizeAndTimeLimits: a 50 MiB body is refused without being read, with
// or without a declared length; a gRPC message over the limit is refused;
// a client sending its header one byte a second is cut off within
// --read-header-timeout; and the node stays healthy.
func TestSizeAndTimeLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	d := newDaemon(t, writeFile(t, "ns.yaml", secNamespaces))
	d.extra = []string{"--read-header-timeout", "2s"}
	d.start()
	ws := wires(t, d, nil)
	const size = 50 << 20

	// post50MiB starts a POST of a 50 MiB JSON body on a raw connection,
	// writing the body as fast as the node takes it, and returns the
	// response and how much of the body had been written when it came.
	post50MiB := func(t *testing.T, chunked bool) (*http.Response, []byte, int64) {
		t.Helper()
		c, err := net.DialTimeout("tcp", d.httpAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		head := "POST /abacus.v1.CounterService/AddCount HTTP/1.1\r\nHost: " + d.httpAddr + "\r\nContent-Type: application/json\r\n"
		if chunked {
			head += "Transfer-Encoding: chunked\r\n\r\n"
		} else {
			head += fmt.Sprintf("Content-Length: %d\r\n\r\n", size)
		}
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		var written atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			// A JSON string of 50 MiB: a valid start of an AddCount body.
			send := func(p []byte) error {
				var err error
				if chunked {
					_, err = fmt.Fprintf(c, "%x\r\n%s\r\n", len(p), p)
				} else {
					_, err = c.Write(p)
				}
				if err == nil {
					written.Add(int64(len(p)))
				}
				return err
			}
			if send([]byte(`{"namespace":"sec_a","counter_name":"`)) != nil {
				return
			}
			chunk := []byte(strings.Repeat("a", 64<<10))
			for written.Load() < size {
				if send(chunk) != nil {
					return
				}
			}
			if chunked {
				_, _ = io.WriteString(c, "0\r\n\r\n")
			}
		}()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no response to a 50 MiB body: %v", err)
		}
		at := written.Load()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		c.Close()
		<-done
		return resp, body, at
	}
	for _, chunked := range []bool{false, true} {
		name := "50 MiB body with Content-Length"
		if chunked {
			name = "50 MiB chunked body"
		}
		t.Run(name, func(t *testing.T) {
			resp, body, at := post50MiB(t, chunked)
			if (resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "resource_exhausted")) &&
				resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("HTTP %d %q, want 429 resource_exhausted or 413", resp.StatusCode, body)
			}
			if at >= size {
				t.Fatalf("the whole body was sent (%d bytes) before the answer", at)
			}
			t.Logf("HTTP %d %s after %d MiB sent", resp.StatusCode, strings.TrimSpace(string(body)), at>>20)
		})
	}
	t.Run("grpc message over the limit", func(t *testing.T) {
		big := strings.Repeat("a", 5<<20) // the default limit is 4 MiB
		r := ws[0].call(t, "AddCount", "", `{"namespace":"sec_a","counter_name":"`+big+`","delta":1}`)
		if r.code != codes.ResourceExhausted {
			t.Fatalf("AddCount of 5 MiB = %v %.200q, want ResourceExhausted", r.code, r.msg)
		}
	})
	t.Run("slow header", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", d.httpAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(15 * time.Second))
		if _, err := io.WriteString(c, "POST /abacus.v1.CounterService/GetCount HTTP/1.1\r\nHost: "+d.httpAddr+"\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := c.Write([]byte("a")); err != nil {
						return
					}
				}
			}
		}()
		// Read until the node closes the connection (it may first answer
		// 408); a read deadline would mean it never did.
		_, err = io.Copy(io.Discard, c)
		took := time.Since(start)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %v", took.Round(time.Millisecond))
		}
		// Generous bounds: the point is that the cut-off comes from the 2s
		// header timeout, not from the client giving up.
		if took < 1500*time.Millisecond || took > 8*time.Second {
			t.Fatalf("connection closed after %v, want about 2s", took.Round(time.Millisecond))
		}
		t.Logf("closed after %v", took.Round(time.Millisecond))
	})
	t.Run("node still healthy", func(t *testing.T) {
		if code, _ := get(t, http.DefaultClient, "http://"+d.httpAddr+"/healthz", ""); code != http.StatusOK {
			t.Fatalf("healthz = %d", code)
		}
		for _, w := range ws {
			if r := w.call(t, "AddAndGetCount", "", `{"namespace":"sec_a","counter_name":"after","delta":1}`); r.code != codes.OK {
				t.Errorf("%s: AddAndGetCount = %v %q", w.name, r.code, r.msg)
			}
		}
	})
}

// ---- 6. Safe by default ----

// TestInsecureDefault: abacusd refuses to listen beyond loopback without
// --auth-tokens unless --insecure is given, and says which flags to add.
// It only starts and stops the nodes that listen on 0.0.0.0: no traffic
// goes anywhere but loopback (none at all to those nodes).
func TestInsecureDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	tokens := writeFile(t, "tokens.yaml", tokensFile(tokenEntry(newSecret("ops"), "*:admin")))
	for _, tc := range []struct {
		name  string
		args  []string
		start bool
	}{
		{"grpc on 0.0.0.0 refused", []string{"--grpc-addr", "0.0.0.0:0", "--http-addr", "127.0.0.1:0"}, false},
		{"http on 0.0.0.0 refused", []string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "0.0.0.0:0"}, false},
		{"--insecure starts", []string{"--grpc-addr", "0.0.0.0:0", "--http-addr", "127.0.0.1:0", "--insecure"}, true},
		{"--auth-tokens starts", []string{"--grpc-addr", "0.0.0.0:0", "--http-addr", "127.0.0.1:0", "--auth-tokens", tokens}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--data-dir", filepath.Join(t.TempDir(), "data")}, tc.args...)
			cmd := exec.Command(filepath.Join(binDir, "abacusd"), args...)
			out := &lockedWriter{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited, done := make(chan error, 1), make(chan struct{})
			go func() { exited <- cmd.Wait(); close(done) }()
			t.Cleanup(func() {
				select {
				case <-done:
				default:
					_ = cmd.Process.Kill()
					<-done
				}
			})
			if !tc.start {
				select {
				case err := <-exited:
					if err == nil {
						t.Fatalf("abacusd exited 0:\n%s", out)
					}
				case <-time.After(30 * time.Second):
					t.Fatalf("abacusd still running after 30s:\n%s", out)
				}
				for _, flag := range []string{"--auth-tokens", "--insecure"} {
					if !strings.Contains(out.String(), flag) {
						t.Errorf("the refusal does not name %s:\n%s", flag, out)
					}
				}
				if strings.Contains(out.String(), "abacusd serving") {
					t.Errorf("abacusd served:\n%s", out)
				}
				return
			}
			deadline := time.After(30 * time.Second)
			for !strings.Contains(out.String(), "abacusd serving") {
				select {
				case err := <-exited:
					t.Fatalf("abacusd exited: %v\n%s", err, out)
				case <-deadline:
					t.Fatalf("abacusd not serving after 30s:\n%s", out)
				case <-time.After(20 * time.Millisecond):
				}
			}
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("abacusd exit after SIGTERM: %v\n%s", err, out)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("abacusd did not stop after SIGTERM:\n%s", out)
			}
		})
	}
}

// ---- 7. Audit trail ----

// TestAudit: namespace changes and ClearCount, over both transports, write
// audit lines with the token's name, the method, the namespace and the
// result, refusals included; no token text reaches the log.
func TestAudit(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	ops, rw, peek := newSecret("ops"), newSecret("rw"), newSecret("peek")
	tokens := writeFile(t, "tokens.yaml", tokensFile(
		tokenEntry(ops, "*:admin"),
		tokenEntry(rw, "aud_*:read,write"),
		tokenEntry(peek, "aud_*:read"),
	))
	d := newDaemon(t, "")
	d.extra = []string{"--auth-tokens", tokens}
	d.start()

	var want []string
	for _, w := range wires(t, d, nil) {
		ns := "aud_" + w.name
		steps := []struct {
			s            secret
			method, body string
			code         codes.Code
			result       string
		}{
			{ops, "CreateNamespace", `{"namespace":{"name":"` + ns + `","counter_type":"ACCURATE"}}`, codes.OK, "ok"},
			{rw, "CreateNamespace", `{"namespace":{"name":"` + ns + `x","counter_type":"ACCURATE"}}`, codes.PermissionDenied, "permission_denied"},
			{rw, "AddCount", `{"namespace":"` + ns + `","counter_name":"c","delta":5}`, codes.OK, ""},
			{rw, "ClearCount", `{"namespace":"` + ns + `","counter_name":"c"}`, codes.OK, "ok"},
			{peek, "ClearCount", `{"namespace":"` + ns + `","counter_name":"c"}`, codes.PermissionDenied, "permission_denied"},
			{ops, "UpdateNamespace", `{"namespace":{"name":"` + ns + `","description":"audited"}}`, codes.OK, "ok"},
			{ops, "DeleteNamespace", `{"name":"` + ns + `"}`, codes.OK, "ok"},
		}
		for _, st := range steps {
			if r := w.call(t, st.method, st.s.bearer(), st.body); r.code != st.code {
				t.Fatalf("%s: %s as %s = %v %q, want %v", w.name, st.method, st.s.name, r.code, r.msg, st.code)
			}
			if st.result != "" {
				target := ns
				if st.method == "CreateNamespace" && st.code != codes.OK {
					target = ns + "x"
				}
				want = append(want, fmt.Sprintf("msg=audit token=%s method=%s namespace=%s result=%s", st.s.name, st.method, target, st.result))
			}
		}
		if r := w.call(t, "ClearCount", "", `{"namespace":"`+ns+`","counter_name":"c"}`); r.code != codes.Unauthenticated {
			t.Fatalf("%s: ClearCount without a token = %v %q", w.name, r.code, r.msg)
		}
		want = append(want, "method=ClearCount namespace="+ns+" result=unauthenticated")
	}
	eventually(t, 5*time.Second, func() string {
		out := d.output()
		for _, line := range want {
			if !strings.Contains(out, line) {
				return fmt.Sprintf("no audit line %q in the log:\n%s", line, out)
			}
		}
		return ""
	})
	var audit []string
	for line := range strings.Lines(d.output()) {
		if strings.Contains(line, "msg=audit") {
			audit = append(audit, line)
		}
	}
	if len(audit) != len(want) {
		t.Errorf("%d audit lines, want %d (one per change or clear, none for adds):\n%s", len(audit), len(want), strings.Join(audit, ""))
	}
	if s := secretIn(d.output(), []secret{ops, rw, peek}); s != "" {
		t.Errorf("the log contains the token of %s", s)
	}
}
