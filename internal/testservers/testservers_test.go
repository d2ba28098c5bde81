package testservers

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// fakeTB records Skipf and Fatalf instead of ending the test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(string, ...any) {
	f.skipped = true
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(string, ...any) {
	f.failed = true
	runtime.Goexit()
}

func runFake(t *testing.T, fn func(tb testing.TB)) *fakeTB {
	f := &fakeTB{TB: t}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fn(f)
	}()
	wg.Wait()
	return f
}

func TestEnv(t *testing.T) {
	const name = "ABACUS_TEST_TESTSERVERS_X"
	t.Setenv(name, "v")
	if got := Env(t, name); got != "v" {
		t.Fatalf("Env = %q, want v", got)
	}
	t.Setenv(name, "")

	t.Setenv(RequireEnv, "")
	if f := runFake(t, func(tb testing.TB) { Env(tb, name) }); !f.skipped || f.failed {
		t.Errorf("unset, not required: skipped %v failed %v; want a skip", f.skipped, f.failed)
	}
	t.Setenv(RequireEnv, "1")
	if f := runFake(t, func(tb testing.TB) { Env(tb, name) }); f.skipped || !f.failed {
		t.Errorf("unset, required: skipped %v failed %v; want a failure", f.skipped, f.failed)
	}
}

func TestStartPostgresMissingBinaries(t *testing.T) {
	t.Setenv(PGBinEnv, t.TempDir())
	t.Setenv(RequireEnv, "")
	if f := runFake(t, func(tb testing.TB) { StartPostgres(tb) }); !f.skipped {
		t.Errorf("no binaries, not required: want a skip")
	}
	t.Setenv(RequireEnv, "1")
	if f := runFake(t, func(tb testing.TB) { StartPostgres(tb) }); !f.failed {
		t.Errorf("no binaries, required: want a failure")
	}
}

func query(ctx context.Context, url, sql string, args ...any) (int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int
	err = conn.QueryRow(ctx, sql, args...).Scan(&n)
	return n, err
}

func TestPostgresStopStart(t *testing.T) {
	t.Parallel()
	p := StartPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if n, err := query(ctx, p.URL(), "SELECT 1"); err != nil || n != 1 {
		t.Fatalf("SELECT 1 = %d, %v", n, err)
	}
	if !strings.HasPrefix(p.URL(), "postgres://postgres@127.0.0.1:") {
		t.Errorf("URL = %s", p.URL())
	}
	conn, err := pgx.Connect(ctx, p.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	var fsync string
	if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "on" {
		t.Errorf("fsync = %q, %v; want on", fsync, err)
	}

	port := p.Port()
	p.Stop()
	p.Stop() // a no-op
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", p.Addr())
	}
	if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Errorf("a session survived Stop")
	}
	if _, err := query(ctx, p.URL(), "SELECT 1"); err == nil {
		t.Errorf("connected to a stopped server")
	}

	p.Start()
	p.Start() // a no-op
	if p.Port() != port {
		t.Errorf("port %d after Start, was %d", p.Port(), port)
	}
	if n, err := query(ctx, p.URL(), "SELECT n FROM kept"); err != nil || n != 42 {
		t.Fatalf("after Stop and Start: SELECT n FROM kept = %d, %v; want 42", n, err)
	}
}

// TestPostgresCleanup checks that the server is gone with its test.
func TestPostgresCleanup(t *testing.T) {
	t.Parallel()
	var pid int
	var dir, addr string
	t.Run("inner", func(t *testing.T) {
		p := StartPostgres(t)
		p.mu.Lock()
		pid = p.proc.cmd.Process.Pid
		p.mu.Unlock()
		dir, addr = p.Dir(), p.Addr()
	})
	if pid == 0 {
		t.Skip("inner test did not start a server")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("postmaster %d still there after its test: %v", pid, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there after its test: %v", dir, err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after its test", addr)
	}
}

func TestNewDatabase(t *testing.T) {
	t.Parallel()
	server := os.Getenv(PostgresEnv)
	if server == "" {
		server = StartPostgres(t).URL()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b := NewDatabase(t, server), NewDatabase(t, server)
	if a == b {
		t.Fatalf("two NewDatabase gave %s", a)
	}
	for _, u := range []string{a, b} {
		if n, err := query(ctx, u, "SELECT 1"); err != nil || n != 1 {
			t.Fatalf("%s: SELECT 1 = %d, %v", u, n, err)
		}
	}
	conn, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE only_in_a (n int)"); err != nil {
		t.Fatal(err)
	}
	if n, err := query(ctx, b, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"); err != nil || n != 0 {
		t.Errorf("table of a seen in b: %d, %v", n, err)
	}
}
