package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/abacus-dev/abacus/bench"
	"github.com/abacus-dev/abacus/node"
)

// startBenchNode starts an in-process abacusd with its embedded store.
func startBenchNode(t *testing.T) string {
	t.Helper()
	return startBenchNodeHTTP(t).GRPCAddr()
}

// startBenchNodeHTTP is startBenchNode, returning the node, for its HTTP
// address.
func startBenchNodeHTTP(t *testing.T) *node.Node {
	t.Helper()
	n, err := node.Start(context.Background(), node.Config{
		DataDir:  t.TempDir(),
		GRPCAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// A short run: the tests check that the command works and what it prints,
// never how fast anything was.
var shortRun = []string{"--duration", "1s", "--warmup", "0s", "--callers", "8", "--counters", "100"}

func TestBenchEachVia(t *testing.T) {
	addr := startBenchNode(t)
	for _, c := range []struct{ via, scenario, target string }{
		{"unary", "add", "abacus-unary"},
		{"client", "mixed", "abacus-client"},
		{"batch", "batch", "abacus-batch"},
	} {
		t.Run(c.via, func(t *testing.T) {
			args := append([]string{"bench", "--via", c.via, "--scenario", c.scenario, "--batch-size", "10", "-o", "json"}, shortRun...)
			r := runCLI(t, addr, "", args...)
			if r.code != ExitOK {
				t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
			}
			if r.stderr != "" {
				t.Errorf("stderr with -o json = %q, want nothing (no progress bar)", r.stderr)
			}
			var rep bench.Report
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatalf("stdout is not a report: %v\n%s", err, r.stdout)
			}
			res := rep.Result
			if rep.Schema != bench.SchemaRun || res == nil || res.Target != c.target || res.Scenario != c.scenario {
				t.Fatalf("report = %+v", rep)
			}
			if res.Ops == 0 || res.Errors != 0 || res.Latency.Count != res.Ops {
				t.Errorf("ops %d, errors %v, latencies %d", res.Ops, res.ErrorsByCode, res.Latency.Count)
			}
			if rep.Config.Callers != 8 || rep.Config.DurationSec != 1 || rep.Config.Counters != 100 {
				t.Errorf("config = %+v", rep.Config)
			}
			if c.scenario == "batch" && res.CountersPerOp != 10 {
				t.Errorf("counters per op = %d, want 10", res.CountersPerOp)
			}
			if c.scenario == "mixed" && (res.LatencyByOp["add"].Count == 0 || res.LatencyByOp["get"].Count == 0) {
				t.Errorf("mixed latency by op = %+v", res.LatencyByOp)
			}
		})
	}
}

func TestBenchTextAndProgress(t *testing.T) {
	addr := startBenchNode(t)
	args := append([]string{"bench", "--scenario", "get", "--namespace", "best", "--type", "BEST_EFFORT", "--rate", "500"}, shortRun...)
	r := runCLI(t, addr, "", args...)
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"target:         abacus-unary (namespace best (BEST_EFFORT, created))",
		"open loop at 500 ops/s",
		"reads/s",
		"unsent",
		"OP  COUNT", "P99.9", "get",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	// The progress bar went to stderr, and was cleared at the end.
	if !strings.Contains(r.stderr, "abacus-unary run") {
		t.Errorf("no progress bar on stderr: %q", r.stderr)
	}
	r = runCLI(t, addr, "", append([]string{"bench", "--no-progress"}, shortRun...)...)
	if r.code != ExitOK || r.stderr != "" {
		t.Errorf("--no-progress: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestBenchCompareAbacusOnly(t *testing.T) {
	addr := startBenchNode(t)
	args := append([]string{"bench", "compare", "--reps", "2", "--duration", "500ms", "-o", "json",
		"--targets", "abacus-unary,abacus-client,abacus-batch,abacus-unary/get@best", "--type", "EVENTUAL"}, shortRun[2:]...)
	r := runCLI(t, addr, "", args...)
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %s, stdout %s", r.code, r.stderr, r.stdout)
	}
	var rep bench.CompareReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("stdout is not a compare report: %v\n%s", err, r.stdout)
	}
	c := rep.Comparison
	if rep.Schema != bench.SchemaCompare || c == nil || c.Reps != 2 || len(c.Targets) != 4 || len(c.Order) != 2 {
		t.Fatalf("report = %+v", rep)
	}
	if c.Baseline != "" || len(c.Skipped) != 0 {
		t.Errorf("baseline %q, skipped %+v; want none (redis was not asked for)", c.Baseline, c.Skipped)
	}
	for _, s := range c.Targets {
		if len(s.Runs) != 2 || s.Throughput.Median <= 0 || s.Errors != 0 || s.Ratio != nil {
			t.Errorf("%s: %d runs, throughput %+v, errors %v, ratio %v", s.Target, len(s.Runs), s.Throughput, s.ErrorsByCode, s.Ratio)
		}
	}
	if s := c.Targets[3]; s.Target != "abacus-unary/get@best" || s.Scenario != "get" || s.Runs[0].Reads == 0 {
		t.Errorf("the per-target override was not applied: %+v", s)
	}
}

func TestBenchCompareTextSkipsPeers(t *testing.T) {
	addr := startBenchNode(t)
	args := append([]string{"bench", "compare", "--reps", "1", "--duration", "300ms", "--no-progress",
		"--baseline", "abacus-unary"}, shortRun[2:]...)
	r := runCLI(t, addr, "", args...)
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"TARGET", "VS ABACUS-UNARY", "1.00x",
		"redis: skipped, no --redis address",
		"memcached: skipped, no --memcached address",
		"pg-update: skipped, no --postgres address",
		"pg-events: skipped, no --postgres address",
		"abacus-client: namespace bench (EVENTUAL",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestBenchCompareFailsWhenATargetCannotRun(t *testing.T) {
	// Nothing listens on port 1: the setup fails, and so does the command
	// (CI relies on it), after printing what it has.
	r := runCLI(t, "127.0.0.1:1", "", "bench", "compare", "--targets", "abacus-unary", "--duration", "100ms", "--no-progress", "--timeout", "2s")
	if r.code != ExitServer || !strings.Contains(r.stdout, "abacus-unary: skipped, setup failed") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--via", "carrier-pigeon"},
		{"bench", "--duration", "1s", "--count", "10"},
		{"bench", "--rate", "fast"},
		{"bench", "--rate", "-5%"},
		{"bench", "--scenario", "delete"},
		{"bench", "--scenario", "mixed", "--read-ratio", "0"},
		{"bench", "--dist", "zipf", "--zipf-s", "1"},
		{"bench", "--callers", "0"},
		{"bench", "compare", "--targets", "mysql"},
		{"bench", "compare", "--targets", "redis@ns"},
		{"bench", "compare", "--reps", "0"},
		{"bench", "extra-arg"},
	} {
		r := runCLI(t, "127.0.0.1:1", "", args...)
		if r.code != ExitUsage || !strings.HasPrefix(r.stderr, "abacus: invalid_argument: ") {
			t.Errorf("%v: exit %d, stderr %q; want a usage error", args, r.code, r.stderr)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string][2]float64{"0": {0, 0}, "2500": {2500, 0}, "50%": {0, 0.5}, " 12.5% ": {0, 0.125}} {
		rate, frac, err := parseRate(in)
		if err != nil || rate != want[0] || frac != want[1] {
			t.Errorf("parseRate(%q) = %v, %v, %v; want %v", in, rate, frac, err, want)
		}
	}
}

// The node's CPU comes from its /metrics: in the JSON of a run and of a
// comparison, and in their text.
func TestBenchServerCPU(t *testing.T) {
	n := startBenchNodeHTTP(t)
	addr, metrics := n.GRPCAddr(), "http://"+n.HTTPAddr()+"/metrics"
	args := append([]string{"bench", "--via", "batch", "--batch-size", "10", "--metrics-url", metrics, "-o", "json"}, shortRun...)
	r := runCLI(t, addr, "", args...)
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	s, g := rep.Result.ServerCPU, rep.Result.GeneratorCPU
	if s == nil || s.Error != "" || s.Source != metrics || s.Seconds <= 0 || s.PerOpUS <= 0 || !(s.PerCountUS*10 > s.PerOpUS*0.99) {
		t.Errorf("server cpu = %+v", s)
	}
	if g == nil || g.Error != "" || g.Source != "getrusage" || g.Seconds <= 0 {
		t.Errorf("generator cpu = %+v", g)
	}

	args = append([]string{"bench", "compare", "--reps", "1", "--duration", "300ms", "--no-progress", "--metrics-url", metrics,
		"--targets", "abacus-unary,abacus-batch"}, shortRun[2:]...)
	r = runCLI(t, addr, "", args...)
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	for _, want := range []string{"SERVER CPU/OP", "GEN CPU/OP", "/incr)", "abacus-unary: server CPU from " + metrics} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("compare text lacks %q:\n%s", want, r.stdout)
		}
	}

	// The default URL (port + 1) has no node here: the run still works,
	// with the error in the report; "none" turns the figure off.
	r = runCLI(t, addr, "", append([]string{"bench", "--no-progress"}, shortRun...)...)
	if r.code != ExitOK || !strings.Contains(r.stdout, "server cpu:     - (") {
		t.Errorf("default URL without a node there: exit %d, stdout %s", r.code, r.stdout)
	}
	r = runCLI(t, addr, "", append([]string{"bench", "--no-progress", "--metrics-url", "none"}, shortRun...)...)
	if r.code != ExitOK || strings.Contains(r.stdout, "server cpu") || !strings.Contains(r.stdout, "generator cpu:") {
		t.Errorf("--metrics-url none: exit %d, stdout %s", r.code, r.stdout)
	}
}

func TestDefaultMetricsURL(t *testing.T) {
	for _, c := range []struct {
		addr string
		tls  bool
		want string
	}{
		{"127.0.0.1:7400", false, "http://127.0.0.1:7401/metrics"},
		{"localhost:9000", true, "https://localhost:9001/metrics"},
		{"[::1]:7400", false, "http://[::1]:7401/metrics"},
		{":7400", false, "http://:7401/metrics"},
		{"127.0.0.1:65535", false, ""},
		{"127.0.0.1:http", false, ""},
		{"dns:///abacus.internal", false, ""},
		{"no-port", false, ""},
	} {
		if got := defaultMetricsURL(c.addr, c.tls); got != c.want {
			t.Errorf("defaultMetricsURL(%q, %v) = %q, want %q", c.addr, c.tls, got, c.want)
		}
	}
}

func TestBenchCPUFormatting(t *testing.T) {
	single := &bench.Result{Scenario: "add", CountersPerOp: 1, ElapsedSec: 10}
	batch := &bench.Result{Scenario: "batch", CountersPerOp: 100, ElapsedSec: 10}
	reads := &bench.Result{Scenario: "get", CountersPerOp: 100, ElapsedSec: 10}
	for _, c := range []struct {
		name string
		res  *bench.Result
		cpu  *bench.CPU
		want string
	}{
		{"none", single, nil, ""},
		{"unary", single, &bench.CPU{Source: "http://n/metrics", Seconds: 3.5, PerOpUS: 35, PerCountUS: 35}, "35.0µs per op, 35% of one CPU (http://n/metrics)"},
		{"batch", batch, &bench.CPU{Source: "getrusage", Seconds: 8.4, PerOpUS: 840, PerCountUS: 8.4}, "840µs (8.40µs/incr) per op, 84% of one CPU (getrusage)"},
		{"batch reads", reads, &bench.CPU{Source: "/proc/9", Seconds: 1, PerOpUS: 120, PerCountUS: 1.2}, "120µs (1.20µs/read) per op, 10% of one CPU (/proc/9)"},
		{"error", single, &bench.CPU{Source: "u", Error: "GET u: connection\nrefused"}, "- (GET u: connection refused)"},
	} {
		if got := cpuText(c.res, c.cpu); got != c.want {
			t.Errorf("%s: cpuText = %q, want %q", c.name, got, c.want)
		}
	}
	for _, c := range []struct {
		name string
		sum  *bench.Summary
		cpu  *bench.CPUSpread
		want string
	}{
		{"none", &bench.Summary{Scenario: "add", Runs: []*bench.Result{single}}, nil, "-"},
		{"all reps failed", &bench.Summary{Scenario: "add", Runs: []*bench.Result{single}}, &bench.CPUSpread{Error: "x"}, "-"},
		{"unary", &bench.Summary{Scenario: "add", Runs: []*bench.Result{single}},
			&bench.CPUSpread{Reps: 3, PerOpUS: bench.Spread{Median: 20.5}, PerCountUS: bench.Spread{Median: 20.5}}, "20.5µs"},
		{"mixed batch", &bench.Summary{Scenario: "mixed", Runs: []*bench.Result{batch}},
			&bench.CPUSpread{Reps: 1, PerOpUS: bench.Spread{Median: 150}, PerCountUS: bench.Spread{Median: 1.5}}, "150µs (1.50µs/count)"},
	} {
		if got := cpuCell(c.sum, c.cpu); got != c.want {
			t.Errorf("%s: cpuCell = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestBenchFormatting(t *testing.T) {
	for in, want := range map[float64]string{0: "-", 0.5: "0.50µs", 87.34: "87.3µs", 512: "512µs", 1250: "1.25ms", 12345: "12.3ms", 2.1e6: "2.10s"} {
		if got := us(in); got != want {
			t.Errorf("us(%v) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{0: "0", 7: "7", 12.34: "12.3", 999: "999", 1000: "1,000", 1234567.8: "1,234,568"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

// bench converge writes to fresh counters and reads them until they are
// exact: on a real node, EVENTUAL counts converge (the rollup caches the
// provisional count), no count exceeds its adds, and the JSON says so.
func TestBenchConverge(t *testing.T) {
	addr := startBenchNode(t)
	tests := []struct {
		name string
		args []string
	}{
		{"eventual", []string{"--counters", "3000", "--adds", "2", "--batch-size", "500", "--callers", "4"}},
		{"accurate", []string{"--counters", "500", "--namespace", "conv_acc", "--type", "ACCURATE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"bench", "converge", "--max-wait", "1m", "-o", "json"}, tt.args...)
			r := runCLI(t, addr, "", args...)
			if r.code != ExitOK {
				t.Fatalf("exit %d, stderr %s, stdout %s", r.code, r.stderr, r.stdout)
			}
			var rep struct {
				Schema string               `json:"schema"`
				Result bench.ConvergeResult `json:"result"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatalf("stdout is not a converge report: %v\n%s", err, r.stdout)
			}
			res := rep.Result
			if rep.Schema != bench.SchemaConverge || res.Inexact != 0 || res.Overcounted != 0 || res.ExactAfterSec < 0 || res.Sweeps < 1 {
				t.Fatalf("report = %+v", rep)
			}
			if at, ok := res.ExactFraction(1); !ok || len(res.Progress) != res.Sweeps || at < 0 {
				t.Errorf("progress %+v over %d sweeps: want one point per sweep, all exact at the end", res.Progress, res.Sweeps)
			}
			if res.Adds != int64(res.Counters)*map[string]int64{"eventual": 2, "accurate": 1}[tt.name] {
				t.Errorf("%d adds to %d counters", res.Adds, res.Counters)
			}
		})
	}
	if r := runCLI(t, addr, "", "bench", "converge", "--adds", "0"); r.code != ExitUsage {
		t.Errorf("--adds 0: exit %d, want usage", r.code)
	}
}
