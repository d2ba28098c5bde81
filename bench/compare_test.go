package bench

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// withFakes makes Compare build fake targets; a name in missing is skipped
// as if its address were not given, and one in failing fails its setup.
func withFakes(t *testing.T, missing, failing map[string]bool) map[string]*fakeTarget {
	t.Helper()
	made := map[string]*fakeTarget{}
	old := newTarget
	newTarget = func(sp Spec, _ Options) (Target, error) {
		if missing[sp.Target] {
			return nil, &SkipError{Target: sp.String(), Reason: "no --x address"}
		}
		f := &fakeTarget{name: sp.String(), batch: sp.Target == TargetAbacusBatch}
		made[sp.String()] = f
		if failing[sp.Target] {
			return failingSetup{f}, nil
		}
		return f, nil
	}
	t.Cleanup(func() { newTarget = old })
	return made
}

type failingSetup struct{ *fakeTarget }

func (failingSetup) Setup(context.Context, Workload) error { return errors.New("connection refused") }

func specs(names ...string) []Spec {
	var out []Spec
	for _, n := range names {
		sp, err := ParseSpec(n)
		if err != nil {
			panic(err)
		}
		out = append(out, sp)
	}
	return out
}

func TestCompareInterleavesAndSummarises(t *testing.T) {
	made := withFakes(t, map[string]bool{TargetMemcached: true}, map[string]bool{TargetPGEvents: true})
	c, err := Compare(context.Background(), CompareConfig{
		Config: Config{Callers: 2, Count: 40, BatchSize: 4},
		Reps:   3,
		Specs:  specs("redis", "memcached", "pg-events", "abacus-unary", "abacus-batch"),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Round-robin, starting one target further along each repetition.
	wantOrder := [][]string{
		{"redis", "abacus-unary", "abacus-batch"},
		{"abacus-unary", "abacus-batch", "redis"},
		{"abacus-batch", "redis", "abacus-unary"},
	}
	if !reflect.DeepEqual(c.Order, wantOrder) {
		t.Errorf("order = %v, want %v", c.Order, wantOrder)
	}
	wantSkipped := []Skipped{
		{Target: "memcached", Reason: "no --x address"},
		{Target: "pg-events", Reason: "setup failed: connection refused", Failed: true},
	}
	if !reflect.DeepEqual(c.Skipped, wantSkipped) {
		t.Errorf("skipped = %+v, want %+v", c.Skipped, wantSkipped)
	}
	if len(c.Targets) != 3 {
		t.Fatalf("%d targets summarised, want 3", len(c.Targets))
	}
	for _, s := range c.Targets {
		if len(s.Runs) != 3 {
			t.Errorf("%s: %d runs, want 3", s.Target, len(s.Runs))
		}
		if s.Ratio == nil {
			t.Errorf("%s: no ratio to redis", s.Target)
		}
		if s.Throughput.Min > s.Throughput.Median || s.Throughput.Median > s.Throughput.Max {
			t.Errorf("%s: throughput spread %+v is not ordered", s.Target, s.Throughput)
		}
	}
	if c.Baseline != "redis" || *c.Targets[0].Ratio != 1 {
		t.Errorf("baseline %q, redis ratio %v; want redis, 1", c.Baseline, *c.Targets[0].Ratio)
	}
	// Every target got the same generator: 3 reps × 40 ops; the batching
	// one with BatchSize counters per op.
	for name, f := range made {
		if name == "pg-events" {
			if f.calls.Load() != 0 {
				t.Errorf("pg-events ran %d ops after a failed setup", f.calls.Load())
			}
			continue
		}
		if f.calls.Load() != 120 {
			t.Errorf("%s: %d ops, want 120", name, f.calls.Load())
		}
		if !f.closed {
			t.Errorf("%s: not closed", name)
		}
	}
	if got := made["abacus-batch"].increments.Load(); got != 480 {
		t.Errorf("abacus-batch increments = %d, want 480", got)
	}
	if s := c.Targets[2]; s.Runs[0].CountersPerOp != 4 || !within(s.Throughput.Median, 4*s.OpsPerSec.Median, 1e-9) {
		t.Errorf("abacus-batch throughput %v is not in counters (4 × %v ops/s)", s.Throughput.Median, s.OpsPerSec.Median)
	}
}

func TestCompareSpecOverridesAndBaseline(t *testing.T) {
	made := withFakes(t, nil, nil)
	c, err := Compare(context.Background(), CompareConfig{
		Config:   Config{Callers: 1, Count: 10},
		Reps:     1,
		Specs:    specs("abacus-unary/add@ns_a", "abacus-unary/get@ns_b"),
		Baseline: "abacus-unary/get@ns_b",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Baseline != "abacus-unary/get@ns_b" {
		t.Errorf("baseline = %q", c.Baseline)
	}
	if made["abacus-unary/add@ns_a"].increments.Load() != 10 || made["abacus-unary/get@ns_b"].reads.Load() != 10 {
		t.Error("the per-target scenarios were not applied")
	}
	if s := made["abacus-unary/get@ns_b"].setups; len(s) != 1 || s[0].Scenario != ScenarioGet {
		t.Errorf("setups of the get target = %+v, want one for the get scenario", s)
	}
	if c.Targets[1].Ratio == nil || *c.Targets[1].Ratio != 1 {
		t.Error("the baseline's own ratio is not 1")
	}
}

func TestCompareWithoutBaseline(t *testing.T) {
	withFakes(t, map[string]bool{TargetRedis: true}, nil)
	c, err := Compare(context.Background(), CompareConfig{
		Config: Config{Callers: 1, Duration: 20 * time.Millisecond},
		Reps:   1,
		Specs:  specs("redis", "abacus-client"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Baseline != "" || c.Targets[0].Ratio != nil {
		t.Errorf("baseline %q, ratio %v; want none without redis", c.Baseline, c.Targets[0].Ratio)
	}
}

func TestCompareRejectsDuplicates(t *testing.T) {
	withFakes(t, nil, nil)
	_, err := Compare(context.Background(), CompareConfig{Config: Config{Count: 1}, Specs: specs("redis", "redis")})
	if err == nil {
		t.Error("a target listed twice was accepted")
	}
}

func TestSpread(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want Spread
	}{
		{nil, Spread{}},
		{[]float64{5}, Spread{5, 5, 5}},
		{[]float64{3, 1, 2}, Spread{2, 1, 3}},
		{[]float64{4, 1, 3, 2}, Spread{2.5, 1, 4}},
	} {
		if got := spread(c.in); got != c.want {
			t.Errorf("spread(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestParseSpec(t *testing.T) {
	for in, want := range map[string]Spec{
		"redis":                       {Target: "redis"},
		"pg-events/get":               {Target: "pg-events", Scenario: "get"},
		"abacus-unary@bench_best":     {Target: "abacus-unary", Namespace: "bench_best"},
		" abacus-batch/batch@x ":      {Target: "abacus-batch", Scenario: "batch", Namespace: "x"},
		"abacus-client/mixed@ns.with": {Target: "abacus-client", Scenario: "mixed", Namespace: "ns.with"},
	} {
		got, err := ParseSpec(in)
		if err != nil || got != want {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if again, _ := ParseSpec(got.String()); again != got {
			t.Errorf("%q does not round-trip through String: %q", in, got.String())
		}
	}
	for _, bad := range []string{"", "mysql", "redis/delete", "redis@ns", "abacus-unary@", "abacus-unary/"} {
		if sp, err := ParseSpec(bad); err == nil {
			t.Errorf("ParseSpec(%q) = %+v, want an error", bad, sp)
		}
	}
}

func TestNewTargetSkipsWithoutAddress(t *testing.T) {
	for _, name := range TargetNames {
		_, err := NewTarget(Spec{Target: name}, Options{})
		var se *SkipError
		if !errors.As(err, &se) || se.Target != name || se.Reason == "" {
			t.Errorf("NewTarget(%s) without addresses = %v, want a *SkipError", name, err)
		}
	}
}
