package cachetest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// ClosedAddr returns a loopback address where nothing listens: connections to
// it are refused at once.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// SilentAddr returns the address of a loopback server that accepts
// connections and never answers, as a hung or black-holed server does:
// requests to it fail only by timeout. It stops when the test ends.
func SilentAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// CheckUnavailable checks that every method of c fails with Unavailable
// within limit: c is a cache over a server that is down. extra are more
// calls to check the same way, such as a Ping.
func CheckUnavailable(t *testing.T, c Cache, limit time.Duration, extra ...func(context.Context) error) {
	t.Helper()
	calls := map[string]func(context.Context) error{
		"Add":    func(ctx context.Context) error { _, err := c.Add(ctx, "k", 1, time.Minute); return err },
		"Get":    func(ctx context.Context) error { _, err := c.Get(ctx, "k"); return err },
		"Delete": func(ctx context.Context) error { return c.Delete(ctx, "k") },
		"GetCheckpoint": func(ctx context.Context) error {
			_, _, err := c.GetCheckpoint(ctx, "k")
			return err
		},
		"PutCheckpoint": func(ctx context.Context) error {
			return c.PutCheckpoint(ctx, "k", abacus.Checkpoint{Through: time.Unix(1, 0)}, time.Minute)
		},
	}
	for i, f := range extra {
		calls["extra"+string(rune('0'+i))] = f
	}
	for name, call := range calls {
		start := time.Now()
		err := call(context.Background())
		took := time.Since(start)
		if abacus.ErrorCode(err) != abacus.Unavailable {
			t.Errorf("%s: error %v (code %v), want Unavailable", name, err, abacus.ErrorCode(err))
		}
		if took > limit {
			t.Errorf("%s took %s to fail, want under %s", name, took.Round(time.Millisecond), limit)
		}
	}
}

// Proxy forwards TCP connections to a server and can drop them all at once,
// as a server that crashes and restarts does: clients are left holding pooled
// connections that are dead.
type Proxy struct {
	addr string
	mu   sync.Mutex
	open map[net.Conn]bool
}

// NewProxy starts a loopback proxy to the server at target. It stops when the
// test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{addr: l.Addr().String(), open: map[net.Conn]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c, target)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		p.DropAll()
	})
	return p
}

// Addr returns the proxy's address.
func (p *Proxy) Addr() string { return p.addr }

// DropAll closes every open connection, on both sides; new ones are accepted.
func (p *Proxy) DropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.open {
		c.Close()
		delete(p.open, c)
	}
}

func (p *Proxy) serve(client net.Conn, target string) {
	server, err := net.Dial("tcp", target)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	p.open[client], p.open[server] = true, true
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
	}
	go pipe(server, client)
	pipe(client, server)
}

// CheckRecovers checks that c, a cache whose server is reached through p,
// recovers when every connection is dropped (the server restarted): of the
// calls after the drop at most one fails, with Unavailable, and the rest
// succeed. Clients that keep idle connections must not fail once for each.
func CheckRecovers(t *testing.T, c Cache, p *Proxy) {
	t.Helper()
	ctx := context.Background()
	// Fill the client's pool with idle connections.
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := c.Add(ctx, "recover", 1, time.Minute); err != nil {
					t.Errorf("Add before the drop: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	p.DropAll()
	failed := 0
	for i := range 20 {
		_, err := c.Add(ctx, "recover", 1, time.Minute)
		if err != nil {
			failed++
			if abacus.ErrorCode(err) != abacus.Unavailable {
				t.Errorf("call %d after the drop: %v, want Unavailable", i, err)
			}
		}
	}
	if failed > 1 {
		t.Errorf("%d of 20 calls failed after the server's connections dropped, want at most 1", failed)
	}
}
