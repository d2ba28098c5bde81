package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// metricsBody is an excerpt of abacusd's /metrics, as promhttp writes it,
// with the metrics next to process_cpu_seconds_total whose names it prefixes
// or that carry labels.
const metricsBody = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 187
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.34
# HELP process_cpu_seconds_total_extra A made-up metric whose name extends it.
process_cpu_seconds_total_extra 99
`

func TestParseMetric(t *testing.T) {
	for _, c := range []struct {
		name, body string
		want       float64
		err        string
	}{
		{"promhttp", metricsBody, 12.34, ""},
		{"longer name first", "process_cpu_seconds_total_extra 99\nprocess_cpu_seconds_total 1.5\n", 1.5, ""},
		{"quoted brace and quote in labels", `process_cpu_seconds_total{instance="a \"b}"} 3` + "\n", 3, ""},
		{"simple labels", `process_cpu_seconds_total{job="abacusd"} 7.25` + "\n", 7.25, ""},
		{"timestamp", "process_cpu_seconds_total 8 1700000000000\n", 8, ""},
		{"exponent", "process_cpu_seconds_total 1.5e+03\n", 1500, ""},
		{"tabs and spaces", "  process_cpu_seconds_total\t42  \n", 42, ""},
		{"comment only", "# process_cpu_seconds_total 5\n", 0, "no process_cpu_seconds_total"},
		{"missing", "go_goroutines 1\n", 0, "no process_cpu_seconds_total"},
		{"empty", "", 0, "no process_cpu_seconds_total"},
		{"no value", "process_cpu_seconds_total\n", 0, "no process_cpu_seconds_total"},
		{"no value after labels", "process_cpu_seconds_total{a=\"b\"}\n", 0, "no value"},
		{"bad value", "process_cpu_seconds_total lots\n", 0, `value "lots"`},
		{"unterminated labels", "process_cpu_seconds_total{a=\"b\" 3\n", 0, "unterminated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseMetric(strings.NewReader(c.body), processCPUMetric)
			switch {
			case c.err != "":
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("got %v, %v; want an error with %q", got, err, c.err)
				}
			case err != nil || got != c.want:
				t.Errorf("got %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

func TestMetricsCPU(t *testing.T) {
	var calls atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		// Each scrape sees 2 more seconds, as a busy node would.
		n := calls.Add(1)
		fmt.Fprintf(w, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %d\n", 10+2*n)
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "go_goroutines 3")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, c := range []struct {
		path string
		want float64
		err  string
	}{
		{"/metrics", 12, ""},
		{"/broken", 0, "503"},
		{"/other", 0, "no process_cpu_seconds_total"},
	} {
		m := &MetricsCPU{URL: srv.URL + c.path}
		got, err := m.CPUSeconds(context.Background())
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), m.URL) {
				t.Errorf("%s: got %v, %v; want an error naming the URL with %q", c.path, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: got %v, %v; want %v", c.path, got, err, c.want)
		}
	}

	// A meter over the source gives the difference, per op and per count.
	m := startCPU(context.Background(), &MetricsCPU{URL: srv.URL + "/metrics"})
	cpu := m.stop(context.Background(), &Result{Ops: 1000, Increments: 100000})
	if cpu.Error != "" || cpu.Seconds != 2 || cpu.PerOpUS != 2000 || cpu.PerCountUS != 20 || cpu.Source != srv.URL+"/metrics" {
		t.Errorf("meter = %+v; want 2s, 2000µs/op, 20µs/count", cpu)
	}
	// A refused connection is reported, not fatal.
	dead := httptest.NewServer(mux)
	deadURL := dead.URL + "/metrics"
	dead.Close()
	cpu = startCPU(context.Background(), &MetricsCPU{URL: deadURL}).stop(context.Background(), &Result{Ops: 1})
	if cpu.Error == "" || cpu.Seconds != 0 || cpu.PerOpUS != 0 {
		t.Errorf("meter of a closed server = %+v; want an error", cpu)
	}
}

func TestCPUFill(t *testing.T) {
	for _, c := range []struct {
		seconds      float64
		ops, counts  int64
		perOp, perCt float64
	}{
		{1, 1e6, 1e6, 1, 1},
		{3, 1000, 100000, 3000, 30},
		{1, 0, 0, 0, 0},
		{-0.01, 10, 10, 0, 0}, // a counter reset (the node restarted) is not negative CPU
	} {
		var got CPU
		got.fill(c.seconds, c.ops, c.counts)
		if got.PerOpUS != c.perOp || got.PerCountUS != c.perCt {
			t.Errorf("fill(%v, %d, %d) = %+v; want %v µs/op, %v µs/count", c.seconds, c.ops, c.counts, got, c.perOp, c.perCt)
		}
	}
}

// writeProc writes a fake /proc with one stat file per process.
func writeProc(t *testing.T, procs map[int]string) string {
	t.Helper()
	root := t.TempDir()
	for pid, stat := range procs {
		dir := filepath.Join(root, fmt.Sprint(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Not a process: skipped.
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// stat is a /proc/PID/stat line with the given command, parent and times
// (in clock ticks).
func stat(pid int, comm string, ppid int, utime, stime, cutime, cstime int) string {
	return fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 100 0 0 0 %d %d %d %d 20 0 1 0 100 1000 10 18446744073709551615",
		pid, comm, ppid, pid, pid, utime, stime, cutime, cstime)
}

func TestProcCPU(t *testing.T) {
	root := writeProc(t, map[int]string{
		1:   stat(1, "init", 0, 1000, 1000, 0, 0),
		100: stat(100, "postgres", 1, 50, 25, 100, 25), // the postmaster, with reaped children
		101: stat(101, "postgres: checkpointer ", 100, 10, 10, 0, 0),
		102: stat(102, "postgres: bench (x) idle", 100, 300, 100, 0, 0), // parentheses in the name
		103: stat(103, "sh", 102, 5, 5, 0, 0),                           // a grandchild
		200: stat(200, "redis-server", 1, 70, 30, 0, 0),
	})
	for _, c := range []struct {
		pid  int
		want float64
		err  string
	}{
		{100, (50 + 25 + 100 + 25 + 20 + 400 + 10) / 100.0, ""},
		{200, 1, ""},
		{103, 0.1, ""},
		{999, 0, "no process 999"},
	} {
		p := &ProcCPU{PID: c.pid, Root: root}
		got, err := p.CPUSeconds(context.Background())
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("pid %d: got %v, %v; want an error with %q", c.pid, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("pid %d: got %v, %v; want %v", c.pid, got, err, c.want)
		}
	}
	if s := (&ProcCPU{PID: 7}).String(); s != "/proc/7" {
		t.Errorf("String() = %q", s)
	}
}

func TestParseStat(t *testing.T) {
	for _, c := range []struct {
		line  string
		ppid  int
		ticks int64
		err   bool
	}{
		{stat(5, "a", 4, 1, 2, 3, 4), 4, 10, false},
		{stat(5, "a) S 9 (b", 4, 1, 2, 3, 4), 4, 10, false},
		{"5 (a) S 4 5 5", 0, 0, true},
		{"no parenthesis", 0, 0, true},
		{strings.Replace(stat(5, "a", 4, 1, 2, 3, 4), " 1 2 3 4 ", " 1 x 3 4 ", 1), 0, 0, true},
	} {
		ppid, ticks, err := parseStat(c.line)
		if (err != nil) != c.err || !c.err && (ppid != c.ppid || ticks != c.ticks) {
			t.Errorf("parseStat(%q) = %d, %d, %v; want %d, %d, error %v", c.line, ppid, ticks, err, c.ppid, c.ticks, c.err)
		}
	}
}

func TestSelfCPUAdvances(t *testing.T) {
	ctx := context.Background()
	before, err := selfCPU{}.CPUSeconds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for i := range 50_000_000 {
		x ^= i * i
	}
	after, err := selfCPU{}.CPUSeconds(ctx)
	if err != nil || after <= before || x == 1 {
		t.Errorf("getrusage went from %v to %v (%v)", before, after, err)
	}
}

// cpuTarget is a fake target with a server CPU source that advances 1ms of
// CPU per op it served.
type cpuTarget struct {
	fakeTarget
	src *fakeCPU
}

type fakeCPU struct{ t *cpuTarget }

func (f *fakeCPU) String() string { return "fake" }
func (f *fakeCPU) CPUSeconds(context.Context) (float64, error) {
	return float64(f.t.calls.Load()) * 1e-3, nil
}

func (c *cpuTarget) ServerCPU() CPUSource { return c.src }

func TestRunMeasuresCPU(t *testing.T) {
	ct := &cpuTarget{fakeTarget: fakeTarget{batch: true}}
	ct.src = &fakeCPU{t: ct}
	res, err := Run(context.Background(), ct, Config{Callers: 4, Count: 400, BatchSize: 10, Warmup: 0})
	if err != nil {
		t.Fatal(err)
	}
	s := res.ServerCPU
	if s == nil || s.Source != "fake" || !within(s.Seconds, 0.4, 1e-9) || !within(s.PerOpUS, 1000, 1e-6) || !within(s.PerCountUS, 100, 1e-6) {
		t.Errorf("server CPU = %+v; want 0.4s, 1000µs/op, 100µs/incr", s)
	}
	if g := res.GeneratorCPU; g == nil || g.Source != "getrusage" || g.Error != "" {
		t.Errorf("generator CPU = %+v", g)
	}
	// A target without a source has no server CPU.
	res, err = Run(context.Background(), &fakeTarget{}, Config{Callers: 1, Count: 10})
	if err != nil || res.ServerCPU != nil || res.GeneratorCPU == nil {
		t.Errorf("plain target: %v, server %+v, generator %+v", err, res.ServerCPU, res.GeneratorCPU)
	}
}

func TestCPUSpread(t *testing.T) {
	runs := []*Result{
		{ServerCPU: &CPU{Source: "u", PerOpUS: 30, PerCountUS: 3}},
		{ServerCPU: &CPU{Source: "u", Error: "refused"}},
		{ServerCPU: &CPU{Source: "u", PerOpUS: 10, PerCountUS: 1}},
		{ServerCPU: &CPU{Source: "u", PerOpUS: 20, PerCountUS: 2}},
	}
	got := cpuSpread(runs, func(r *Result) *CPU { return r.ServerCPU })
	want := CPUSpread{Source: "u", PerOpUS: Spread{20, 10, 30}, PerCountUS: Spread{2, 1, 3}, Reps: 3, Error: "refused"}
	if got == nil || *got != want {
		t.Errorf("cpuSpread = %+v, want %+v", got, want)
	}
	if got := cpuSpread(runs, func(r *Result) *CPU { return r.GeneratorCPU }); got != nil {
		t.Errorf("cpuSpread of no figures = %+v, want nil", got)
	}
}
