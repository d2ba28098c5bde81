package testservers

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitTimeout bounds how long a PostgreSQL start or stop may take.
const waitTimeout = 30 * time.Second

// Postgres is a private PostgreSQL instance of one test, on 127.0.0.1 on a
// free port, with its data in a temp dir. It is stopped and removed when the
// test ends. Its methods may be called from any goroutine, but Stop and Start
// report failures with t.Fatalf, so call them from the test's goroutine.
type Postgres struct {
	t    testing.TB
	bin  string
	dir  string // owned by the server's user: data/ and postgres.log
	port int
	cred *syscall.Credential // the postgres user when we are root; else nil

	mu   sync.Mutex
	proc *postmaster // nil while stopped
}

// postmaster is one run of the server.
type postmaster struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd has exited
}

// StartPostgres initializes and starts a private PostgreSQL instance for t and
// waits until it accepts connections. Its binaries come from
// $ABACUS_TEST_PG_BIN, else the newest /usr/lib/postgresql/*/bin, else initdb
// on the PATH; if there are none, the test is skipped, or fails if Required.
// When root, the server runs as the postgres user (initdb refuses root).
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin, err := pgBin()
	if err != nil {
		skipOrFail(t, "PostgreSQL: %v", err)
	}
	p := &Postgres{t: t, bin: bin}
	if os.Geteuid() == 0 {
		p.cred, err = userCred("postgres")
		if err != nil {
			skipOrFail(t, "PostgreSQL: as root, the server must run as the postgres user: %v", err)
		}
	}
	if p.dir, err = p.makeDir(); err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	t.Cleanup(p.cleanup) // runs before the removal of the dir
	if err := p.initdb(); err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	for attempt := 1; ; attempt++ {
		p.port = freePort()
		err = p.launch()
		if err == nil {
			break
		}
		if !errors.Is(err, errPortInUse) || attempt == 5 {
			t.Fatalf("PostgreSQL: %v", err)
		}
	}
	return p
}

// URL returns the server's URL: user postgres (no password), database
// postgres, no TLS.
func (p *Postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// Addr returns the server's HOST:PORT.
func (p *Postgres) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// Port returns the server's TCP port, which stays the same across Stop and Start.
func (p *Postgres) Port() int { return p.port }

// Dir returns the server's dir: its data in data/, its log in postgres.log.
func (p *Postgres) Dir() string { return p.dir }

// Stop shuts the server down as pg_ctl stop -m fast does (SIGINT: open
// sessions are ended, committed data is kept) and waits until it has exited.
// Stopping a stopped server does nothing.
func (p *Postgres) Stop() {
	p.t.Helper()
	if err := p.stop(); err != nil {
		p.t.Fatalf("PostgreSQL stop: %v", err)
	}
}

// Start starts the server again after Stop, with the same data and port, and
// waits until it accepts connections. Starting a running server does nothing.
func (p *Postgres) Start() {
	p.t.Helper()
	p.mu.Lock()
	running := p.proc != nil
	p.mu.Unlock()
	if running {
		return
	}
	// No outgoing connection can hold the port (it is below the ephemeral
	// range), but another test may have picked it meanwhile: retry a while.
	deadline := time.Now().Add(waitTimeout)
	for {
		err := p.launch()
		if err == nil {
			return
		}
		if !errors.Is(err, errPortInUse) || time.Now().After(deadline) {
			p.t.Fatalf("PostgreSQL start: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *Postgres) cleanup() {
	if err := p.stop(); err != nil {
		p.t.Errorf("PostgreSQL stop at cleanup: %v", err)
	}
	if p.t.Failed() {
		p.t.Logf("PostgreSQL %s, end of %s:\n%s", p.Addr(), filepath.Join(p.dir, "postgres.log"), p.logTail(40))
	}
}

func (p *Postgres) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pm := p.proc
	if pm == nil {
		return nil
	}
	p.proc = nil
	// SIGINT is fast shutdown; SIGQUIT immediate shutdown; then SIGKILL.
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGKILL} {
		_ = pm.cmd.Process.Signal(sig)
		select {
		case <-pm.done:
			if sig != syscall.SIGINT {
				return fmt.Errorf("did not stop on SIGINT within %v; sent %v", waitTimeout, sig)
			}
			return nil
		case <-time.After(waitTimeout):
		}
	}
	return errors.New("did not exit on SIGKILL")
}

var errPortInUse = errors.New("port in use")

// launch starts the postmaster on p.port and waits until it is ready.
func (p *Postgres) launch() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		return nil
	}
	logPath := filepath.Join(p.dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, 2)
	data := filepath.Join(p.dir, "data")
	cmd := exec.Command(filepath.Join(p.bin, "postgres"),
		"-D", data,
		"-p", strconv.Itoa(p.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=", // TCP only: no socket path length limit
		"-c", "max_connections=300",
		"-c", "fsync=on",
	)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: p.cred,
		// Out of the reach of a Ctrl-C meant for go test, and gone with the
		// test process even if it dies without cleanup (SIGQUIT is an
		// immediate shutdown: its children follow).
		Setpgid:   true,
		Pdeathsig: syscall.SIGQUIT,
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	pm := &postmaster{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(pm.done)
	}()
	deadline := time.Now().Add(waitTimeout)
	for {
		select {
		case <-pm.done:
			log := p.logSince(logPath, logStart)
			if portInUse(log) {
				return fmt.Errorf("127.0.0.1:%d: %w", p.port, errPortInUse)
			}
			return fmt.Errorf("postgres exited at start (%v); its log:\n%s", cmd.ProcessState, log)
		case <-time.After(20 * time.Millisecond):
		}
		if p.ready(data, cmd.Process.Pid) {
			p.proc = pm
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-pm.done:
			case <-time.After(waitTimeout):
				_ = cmd.Process.Kill()
				<-pm.done
			}
			return fmt.Errorf("not ready on 127.0.0.1:%d within %v; its log:\n%s", p.port, waitTimeout, p.logSince(logPath, logStart))
		}
	}
}

// ready reports whether the postmaster pid says it is ready (the status line
// of postmaster.pid, as pg_ctl -w reads it) and its port accepts connections.
func (p *Postgres) ready(data string, pid int) bool {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 8 || strings.TrimSpace(lines[0]) != strconv.Itoa(pid) || strings.TrimSpace(lines[7]) != "ready" {
		return false
	}
	c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func portInUse(log string) bool {
	l := strings.ToLower(log)
	return strings.Contains(l, "address already in use") || strings.Contains(l, "could not create any tcp/ip sockets")
}

func (p *Postgres) logSince(path string, off int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if off >= 0 && off <= int64(len(b)) {
		b = b[off:]
	}
	return string(b)
}

func (p *Postgres) logTail(n int) string {
	b, err := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// initdb creates the data dir.
func (p *Postgres) initdb() error {
	cmd := exec.Command(filepath.Join(p.bin, "initdb"),
		"-D", filepath.Join(p.dir, "data"),
		"-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale",
		"-N", // no fsync of the new files: a test's data dir outlives no crash of the machine
	)
	cmd.Dir = p.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb: %v:\n%s", err, out.String())
	}
	return nil
}

// makeDir makes the server's dir, owned by the server's user, in a dir of
// t.TempDir, and makes sure that user can reach it.
func (p *Postgres) makeDir() (string, error) {
	base := p.t.TempDir()
	if p.cred == nil {
		return base, nil
	}
	// t.TempDir's dir and its parent are 0700 root: let others traverse them.
	for _, d := range []string{base, filepath.Dir(base)} {
		if err := os.Chmod(d, 0o711); err != nil {
			return "", err
		}
	}
	if err := traversable(filepath.Dir(base), p.cred); err != nil {
		// A TMPDIR the postgres user cannot reach: use /tmp.
		tmp, err2 := os.MkdirTemp("/tmp", "abacus-pg-")
		if err2 != nil {
			return "", fmt.Errorf("%v; and %v", err, err2)
		}
		p.t.Cleanup(func() { _ = os.RemoveAll(tmp) })
		if err := os.Chmod(tmp, 0o711); err != nil {
			return "", err
		}
		base = tmp
	}
	dir := filepath.Join(base, "pg")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.Chown(dir, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
		return "", err
	}
	return dir, nil
}

// traversable reports an error if the user of cred cannot search dir and each
// of its parents.
func traversable(dir string, cred *syscall.Credential) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		okay := mode&0o001 != 0 ||
			(ok && st.Uid == cred.Uid && mode&0o100 != 0) ||
			(ok && st.Gid == cred.Gid && mode&0o010 != 0)
		if !okay {
			return fmt.Errorf("%s (%v) cannot be traversed by uid %d", d, mode, cred.Uid)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// pgBin finds PostgreSQL's bin dir.
func pgBin() (string, error) {
	has := func(d string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			fi, err := os.Stat(filepath.Join(d, name))
			if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if d := os.Getenv(PGBinEnv); d != "" {
		if !has(d) {
			return "", fmt.Errorf("%s=%s has no initdb and postgres", PGBinEnv, d)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	if path, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(path)) {
		return filepath.Dir(path), nil
	}
	return "", errors.New("no binaries (initdb, postgres) in $" + PGBinEnv + ", /usr/lib/postgresql/*/bin or the PATH (Debian: apt-get install postgresql)")
}

// pgVersion returns the major version in /usr/lib/postgresql/VERSION/bin.
func pgVersion(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func userCred(name string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePort returns a free TCP port on 127.0.0.1, below the kernel's ephemeral
// range so that no outgoing connection takes it as its own port (which would
// keep a server from restarting on it). Another process may still take it
// before the server binds it: callers retry on errPortInUse.
func freePort() int {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				lo = n
			}
		}
	}
	lo = max(lo, 12000)
	for range 1000 {
		port := 10000 + rand.IntN(lo-10000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			l.Close()
			return port
		}
	}
	// Let the kernel choose.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
