package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// keys returns the dotted paths of every key of a JSON document, with
// array elements and map entries (whose keys are data, not schema) written
// as [] and {}.
func keys(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(prefix string, v any, dataKeys bool)
	walk = func(prefix string, v any, dataKeys bool) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				name := k
				if dataKeys {
					name = "{}"
				}
				p := strings.TrimPrefix(prefix+"."+name, ".")
				if !slices.Contains(out, p) {
					out = append(out, p)
				}
				walk(p, e, dataMaps[name])
			}
		case []any:
			for _, e := range v {
				walk(prefix+"[]", e, false)
			}
		}
	}
	walk("", doc, false)
	slices.Sort(out)
	return out
}

// dataMaps are the JSON objects whose keys are values (codes, op kinds).
var dataMaps = map[string]bool{"errors_by_code": true, "error_samples": true, "latency_by_op": true}

func sampleResult() *Result {
	l := Latency{Count: 1, MeanUS: 1, P50US: 1, P90US: 1, P99US: 1, P999US: 1, MaxUS: 1, Clamped: 1}
	return &Result{
		Target: "abacus-unary", TargetInfo: "namespace bench (EVENTUAL)", Scenario: "add", Callers: 1, CountersPerOp: 1,
		Rate: 1, PeakOpsPerSec: 2, ElapsedSec: 1, Ops: 1, Errors: 1,
		ErrorsByCode: map[string]int64{"unavailable": 1}, ErrorSamples: map[string]string{"unavailable": "x"},
		Unsent: 1, Increments: 1, Reads: 1, OpsPerSec: 1, IncrementsPerSec: 1, ReadsPerSec: 1,
		Latency: l, LatencyByOp: map[string]Latency{"add": l}, Interrupted: true,
		ServerCPU:    &CPU{Source: "http://x/metrics", Seconds: 1, PerOpUS: 1, PerCountUS: 1, Error: "x"},
		GeneratorCPU: &CPU{Source: "getrusage", Seconds: 1, PerOpUS: 1, PerCountUS: 1},
	}
}

var cpuKeys = []string{"error", "per_count_us", "per_op_us", "seconds", "source"}

var latencyKeys = []string{"clamped", "count", "max_us", "mean_us", "p50_us", "p90_us", "p999_us", "p99_us"}

var resultKeys = append([]string{
	"callers", "counters_per_op", "elapsed_sec", "error_samples", "error_samples.{}", "errors", "errors_by_code",
	"errors_by_code.{}", "increments", "increments_per_sec", "interrupted", "latency",
}, append(prefixed("latency.", latencyKeys), append([]string{"latency_by_op", "latency_by_op.{}"},
	append(prefixed("latency_by_op.{}.", latencyKeys), "ops", "ops_per_sec", "peak_ops_per_sec",
		"rate", "reads", "reads_per_sec", "scenario", "target", "target_info", "unsent")...)...)...)

func init() {
	resultKeys = append(resultKeys, "server_cpu", "generator_cpu")
	resultKeys = append(resultKeys, prefixed("server_cpu.", cpuKeys)...)
	resultKeys = append(resultKeys, prefixed("generator_cpu.", slices.DeleteFunc(slices.Clone(cpuKeys), func(k string) bool { return k == "error" }))...)
}

var envKeys = []string{"go_version", "goarch", "gomaxprocs", "goos", "num_cpu", "time"}

var configKeys = []string{"batch_size", "callers", "count", "counters", "dist", "duration_sec", "rate",
	"rate_fraction", "read_ratio", "reps", "scenario", "seed", "timeout_sec", "warmup_sec", "zipf_s"}

func prefixed(p string, ks []string) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = p + k
	}
	return out
}

// TestReportSchema pins the JSON field names of a run report: scripts
// depend on them, so a rename must be deliberate (and change SchemaRun).
func TestReportSchema(t *testing.T) {
	rep := Report{Schema: SchemaRun, Env: CurrentEnv(), Config: Config{}.JSON(), Result: sampleResult()}
	want := append([]string{"config", "env", "result", "schema"}, prefixed("config.", configKeys)...)
	want = append(want, prefixed("env.", envKeys)...)
	want = append(want, prefixed("result.", resultKeys)...)
	slices.Sort(want)
	if got := keys(t, rep); !slices.Equal(got, want) {
		t.Errorf("run report keys changed:\n got %v\nwant %v", got, want)
	}
}

func TestCompareReportSchema(t *testing.T) {
	r := 1.0
	c := &Comparison{Baseline: "redis", Reps: 1, Order: [][]string{{"redis"}},
		Targets: []*Summary{{Target: "redis", TargetInfo: "x", Scenario: "add", ErrorsByCode: map[string]int64{"x": 1},
			Ratio: &r, Runs: []*Result{sampleResult()},
			ServerCPU:    &CPUSpread{Source: "/proc/1", Reps: 1, Error: "x"},
			GeneratorCPU: &CPUSpread{Source: "getrusage", Reps: 1}}},
		Skipped: []Skipped{{Target: "memcached", Reason: "no --memcached address"}}}
	rep := CompareReport{Schema: SchemaCompare, Env: CurrentEnv(), Config: Config{}.JSON(), Comparison: c}
	sum := []string{"errors", "errors_by_code", "errors_by_code.{}", "ops_per_sec", "ops_per_sec.max", "ops_per_sec.median",
		"ops_per_sec.min", "p50_us", "p50_us.max", "p50_us.median", "p50_us.min", "p99_us", "p99_us.max", "p99_us.median",
		"p99_us.min", "ratio_to_baseline", "runs", "scenario", "target", "target_info", "throughput", "throughput.max",
		"throughput.median", "throughput.min"}
	sum = append(sum, prefixed("runs[].", resultKeys)...)
	cpuSpreadKeys := []string{"per_count_us", "per_count_us.max", "per_count_us.median", "per_count_us.min",
		"per_op_us", "per_op_us.max", "per_op_us.median", "per_op_us.min", "reps", "source"}
	sum = append(sum, "server_cpu", "generator_cpu", "server_cpu.error")
	sum = append(sum, prefixed("server_cpu.", cpuSpreadKeys)...)
	sum = append(sum, prefixed("generator_cpu.", cpuSpreadKeys)...)
	want := []string{"comparison", "comparison.baseline", "comparison.order", "comparison.reps", "comparison.skipped",
		"comparison.skipped[].failed", "comparison.skipped[].reason", "comparison.skipped[].target", "comparison.targets",
		"config", "env", "schema"}
	want = append(want, prefixed("comparison.targets[].", sum)...)
	want = append(want, prefixed("config.", configKeys)...)
	want = append(want, prefixed("env.", envKeys)...)
	slices.Sort(want)
	if got := keys(t, rep); !slices.Equal(got, want) {
		t.Errorf("compare report keys changed:\n got %v\nwant %v", got, want)
	}
}

func TestErrorCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{status.Error(codes.Unavailable, "x"), "unavailable"},
		{status.Error(codes.DeadlineExceeded, "x"), "deadline_exceeded"},
		{status.Error(codes.FailedPrecondition, "x"), "failed_precondition"},
		{status.Error(codes.Unknown, "x"), "unknown"},
		{context.DeadlineExceeded, "deadline_exceeded"},
		{fmt.Errorf("wrapped: %w", context.Canceled), "canceled"},
		{&pgconn.PgError{Code: "40P01"}, "pg_40P01"},
		{&net.OpError{Op: "dial", Err: timeoutErr{}}, "timeout"},
		{&net.OpError{Op: "dial", Err: fmt.Errorf("refused")}, "network"},
		{fmt.Errorf("redis: nil"), "error"},
	} {
		if got := ErrorCode(c.err); got != c.want {
			t.Errorf("ErrorCode(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestConfigJSON(t *testing.T) {
	j := Config{Duration: 1500 * time.Millisecond, RateFraction: 0.5}.JSON()
	if j.DurationSec != 1.5 || j.Callers != 64 || j.Scenario != ScenarioAdd || j.RateFraction != 0.5 || j.Reps != 1 {
		t.Errorf("Config.JSON() = %+v", j)
	}
}
