package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// binDir holds the binaries built once for the process-level tests.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "abacus-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Built without -race: these tests measure the daemon's behaviour under
	// kill -9, and the race detector's slowdown would only make them longer.
	cmd := exec.Command("go", "build", "-o", dir, "../cmd/abacusd", "../cmd/abacus")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building binaries:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// daemon is an abacusd process.
type daemon struct {
	t                  *testing.T
	dataDir, nsFile    string
	extra              []string // more abacusd flags
	env                []string // the process's environment; nil: the test's
	grpcAddr, httpAddr string
	mu                 sync.Mutex
	cmd                *exec.Cmd
	out                *lockedWriter
	exited             chan error

	// probeTLS, if set, makes start probe /readyz over HTTPS with this
	// client configuration (a node started with --tls-cert); nil: plain HTTP.
	probeTLS *tls.Config
}

func newDaemon(t *testing.T, nsFile string) *daemon {
	d := &daemon{
		t: t, dataDir: filepath.Join(t.TempDir(), "data"), nsFile: nsFile,
		grpcAddr: freeAddr(t), httpAddr: freeAddr(t),
	}
	t.Cleanup(func() { d.kill() })
	return d
}

// start starts the process and waits until /readyz answers 200.
func (d *daemon) start() {
	d.t.Helper()
	args := []string{"--data-dir", d.dataDir, "--grpc-addr", d.grpcAddr, "--http-addr", d.httpAddr}
	if d.nsFile != "" {
		args = append(args, "--namespaces", d.nsFile)
	}
	args = append(args, d.extra...)
	cmd := exec.Command(filepath.Join(binDir, "abacusd"), args...)
	cmd.Env = d.env
	out := &lockedWriter{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	d.mu.Lock()
	d.cmd, d.out, d.exited = cmd, out, exited
	d.mu.Unlock()
	scheme, hc := "http", http.DefaultClient
	if d.probeTLS != nil {
		tr := &http.Transport{TLSClientConfig: d.probeTLS}
		defer tr.CloseIdleConnections()
		scheme, hc = "https", &http.Client{Transport: tr}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			d.t.Fatalf("abacusd exited during start: %v\n%s", err, out)
		default:
		}
		resp, err := hc.Get(scheme + "://" + d.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Fatalf("abacusd not ready after 30s\n%s", out)
}

// kill sends SIGKILL and waits for the process to go.
func (d *daemon) kill() {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// stop sends SIGTERM and returns the exit error.
func (d *daemon) stop() error {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		return err
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return fmt.Errorf("abacusd did not stop within 60s after SIGTERM")
	}
}

func (d *daemon) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.out == nil {
		return ""
	}
	return d.out.String()
}

// lockedWriter collects a process's stdout and stderr.
type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// client dials a node's gRPC port. The connection survives restarts of the
// process: grpc-go reconnects by itself.
func client(t *testing.T, addr string) (abacusv1.CounterServiceClient, abacusv1.NamespaceServiceClient) {
	t.Helper()
	// Short reconnect backoff: the tests restart servers often, and grpc-go's
	// default backoff (up to 2 minutes) would keep failing calls fast long
	// after a restarted node is back.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return abacusv1.NewCounterServiceClient(conn), abacusv1.NewNamespaceServiceClient(conn)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
