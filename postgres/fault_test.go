package postgres

import (
	"context"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// proxy is a TCP proxy to the test server that a test can cut, to make the
// server unreachable (connections refused) or silent (connections open, no
// answers), and restore.
type proxy struct {
	t      *testing.T
	target string
	addr   string
	silent atomic.Bool

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func startProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *proxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[s] = struct{}{}, struct{}{}
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				break
			}
			if p.silent.Load() {
				continue // swallowed
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				break
			}
		}
		_ = dst.Close()
		_ = src.Close()
	}
	go pipe(s, c)
	go pipe(c, s)
}

// stop closes the listener and every connection: the server is unreachable.
func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// restart listens again on the same address.
func (p *proxy) restart() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("restart proxy: %v", err)
	}
	p.serve(ln)
}

// proxiedURL returns the test server's URL with its host replaced.
func proxiedURL(t *testing.T, host string) (u string, target string) {
	t.Helper()
	pu, err := url.Parse(serverURL(t))
	if err != nil || pu.Host == "" {
		t.Skipf("ABACUS_TEST_POSTGRES is not a URL with a host (%v); this test needs one to put a proxy in front", err)
	}
	target = pu.Host
	if pu.Port() == "" {
		target = net.JoinHostPort(pu.Hostname(), "5432")
	}
	pu.Host = host
	return pu.String(), target
}

func expectUnavailable(t *testing.T, what string, limit time.Duration, call func() error) {
	t.Helper()
	start := time.Now()
	err := call()
	d := time.Since(start)
	if abacus.ErrorCode(err) != abacus.Unavailable {
		t.Fatalf("%s = %v, want Unavailable", what, err)
	}
	if d > limit {
		t.Fatalf("%s failed after %s, want within %s", what, d, limit)
	}
	t.Logf("%s: Unavailable after %s: %v", what, d.Round(time.Millisecond), err)
}

// TestServerUnreachable checks that with the server unreachable (connections
// refused) Open and every call fail with Unavailable within the Timeout, and
// that the store recovers by itself when the server is back.
func TestServerUnreachable(t *testing.T) {
	const timeout = time.Second
	limit := timeout + 500*time.Millisecond
	ctx := context.Background()

	// A closed port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().String()
	_ = ln.Close()
	closedURL, target := proxiedURL(t, closedPort)
	expectUnavailable(t, "Open on a closed port", limit, func() error {
		_, err := Open(ctx, closedURL, Options{Timeout: timeout, Logger: testLogger(t)})
		return err
	})

	p := startProxy(t, target)
	u, _ := proxiedURL(t, p.addr)
	schema := freshSchema(t, serverURL(t))
	s, err := Open(ctx, u, Options{Schema: schema, Timeout: timeout, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ns := createNamespace(t, s, "down")
	if err := s.Append(ctx, write(ns, ev("c", 0, "before", 1))); err != nil {
		t.Fatal(err)
	}

	p.stop()
	expectUnavailable(t, "Append", limit, func() error { return s.Append(ctx, write(ns, ev("c", time.Second, "during", 1))) })
	expectUnavailable(t, "RollupState", limit, func() error { _, err := s.RollupState(ctx, ns, "c"); return err })
	expectUnavailable(t, "Scan", limit, func() error {
		return s.Scan(ctx, ns, "c", abacus.Range{}, func(abacus.Event) error { return nil })
	})
	expectUnavailable(t, "GetNamespace", limit, func() error { _, err := s.GetNamespace(ctx, "down"); return err })

	p.restart()
	recovered := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err := s.Append(ctx, write(ns, ev("c", 2*time.Second, "after", 1))); err == nil {
			recovered = true
			break
		}
	}
	if !recovered {
		t.Fatal("Append still fails 10 s after the server came back")
	}
	var ids []string
	for _, e := range scan(t, s, ns, "c") {
		ids = append(ids, e.ID)
	}
	// "during" may or may not be stored: its outcome was reported unknown.
	if len(ids) < 2 || ids[0] != "before" || ids[len(ids)-1] != "after" {
		t.Fatalf("events after recovery: %v", ids)
	}
}

// TestServerSilent checks that a server that accepts connections but never
// answers (a hung host, a network partition) makes calls fail with
// Unavailable within the Timeout instead of hanging, and that the store
// recovers when the server answers again.
func TestServerSilent(t *testing.T) {
	const timeout = time.Second
	limit := timeout + 500*time.Millisecond
	ctx := context.Background()
	_, target := proxiedURL(t, "127.0.0.1:1")
	p := startProxy(t, target)
	u, _ := proxiedURL(t, p.addr)
	s, err := Open(ctx, u, Options{Schema: freshSchema(t, serverURL(t)), Timeout: timeout, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ns := createNamespace(t, s, "silent")
	if err := s.Append(ctx, write(ns, ev("c", 0, "before", 1))); err != nil {
		t.Fatal(err)
	}

	p.silent.Store(true)
	expectUnavailable(t, "Append", limit, func() error { return s.Append(ctx, write(ns, ev("c", time.Second, "during", 1))) })
	expectUnavailable(t, "Fence", limit, func() error { return s.Fence(ctx, ns, "c", t0) })
	expectUnavailable(t, "Open", limit, func() error {
		_, err := Open(ctx, u, Options{Timeout: timeout, Logger: testLogger(t)})
		return err
	})
	// A caller's own deadline is reported as such.
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := s.RollupState(dctx, ns, "c"); abacus.ErrorCode(err) != abacus.DeadlineExceeded {
		t.Fatalf("RollupState past the caller's deadline = %v, want DeadlineExceeded", err)
	}

	p.silent.Store(false)
	p.stop() // drop the connections that lost bytes
	p.restart()
	recovered := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err := s.Append(ctx, write(ns, ev("c", 2*time.Second, "after", 1))); err == nil {
			recovered = true
			break
		}
	}
	if !recovered {
		t.Fatal("Append still fails 10 s after the server answered again")
	}
}
