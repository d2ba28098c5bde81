package bench

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// seen records the ops a runner started, per phase, through its test hook.
type seen struct {
	mu   sync.Mutex
	seqs map[string]map[int64]time.Duration
	dups int
}

func (s *seen) hook(phase string, seq int64, due time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seqs == nil {
		s.seqs = map[string]map[int64]time.Duration{}
	}
	if s.seqs[phase] == nil {
		s.seqs[phase] = map[int64]time.Duration{}
	}
	if _, ok := s.seqs[phase][seq]; ok {
		s.dups++
	}
	s.seqs[phase][seq] = due
}

// runWith runs cfg against t with the hook installed.
func runWith(t *testing.T, tg Target, cfg Config, s *seen) *Result {
	t.Helper()
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r := newRunner(tg, cfg)
	r.onOp = s.hook
	st := r.phase(context.Background(), phase{name: "run", duration: cfg.Duration, count: cfg.Count, rate: cfg.Rate})
	res := st.result(tg, cfg, r.items)
	res.Rate = cfg.Rate
	return res
}

func TestClosedLoopCountAccounting(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "try again")
	f := &fakeTarget{failEvery: 10, failWith: unavailable}
	var s seen
	res := runWith(t, f, Config{Callers: 8, Count: 1000}, &s)
	if got := len(s.seqs["run"]); got != 1000 || s.dups != 0 {
		t.Fatalf("started %d distinct ops (%d duplicates), want each of 1000 once", got, s.dups)
	}
	for seq := range int64(1000) {
		if _, ok := s.seqs["run"][seq]; !ok {
			t.Fatalf("op %d never started", seq)
		}
	}
	if res.Ops != 900 || res.Errors != 100 {
		t.Errorf("ops = %d, errors = %d; want 900 and 100", res.Ops, res.Errors)
	}
	if res.ErrorsByCode["unavailable"] != 100 || len(res.ErrorsByCode) != 1 {
		t.Errorf("errors by code = %v, want unavailable: 100", res.ErrorsByCode)
	}
	if res.ErrorSamples["unavailable"] == "" {
		t.Error("no sample message for unavailable")
	}
	if res.Increments != 900 || f.increments.Load() != 900 || res.Reads != 0 {
		t.Errorf("increments = %d (target saw %d), reads = %d; want 900, 900, 0", res.Increments, f.increments.Load(), res.Reads)
	}
	if res.Latency.Count != 900 || res.LatencyByOp["add"].Count != 900 {
		t.Errorf("latencies recorded = %d (add %d), want 900 (successes only)", res.Latency.Count, res.LatencyByOp["add"].Count)
	}
	if _, ok := res.LatencyByOp["get"]; ok {
		t.Error("an add scenario reports get latency")
	}
	if res.Unsent != 0 || res.Rate != 0 {
		t.Errorf("closed loop: unsent = %d, rate = %v; want 0, 0", res.Unsent, res.Rate)
	}
}

func TestOpenLoopDueTimes(t *testing.T) {
	// Op n of an open-loop run is due at n/rate: the due times, not the
	// send times, are where latency starts.
	const rate = 20000.0
	f := &fakeTarget{}
	var s seen
	res := runWith(t, f, Config{Callers: 4, Count: 500, Rate: rate}, &s)
	if res.Ops != 500 || res.Unsent != 0 || s.dups != 0 || len(s.seqs["run"]) != 500 {
		t.Fatalf("ops = %d, unsent = %d, distinct = %d, dups = %d; want 500, 0, 500, 0", res.Ops, res.Unsent, len(s.seqs["run"]), s.dups)
	}
	p := phase{rate: rate}
	for seq, due := range s.seqs["run"] {
		if want := p.dueOffset(seq); due != want {
			t.Fatalf("op %d due at %v, want %v", seq, due, want)
		}
	}
	if res.Rate != rate {
		t.Errorf("result rate = %v, want %v", res.Rate, rate)
	}
}

func TestOpenLoopUnsentAccounting(t *testing.T) {
	// Two callers, each op 5ms: at most 2 × (200ms/5ms + 1) = 82 ops can
	// start in 200ms, far fewer than the 400 due: the rest are unsent, and
	// every scheduled op is accounted for exactly once.
	p := phase{name: "run", duration: 200 * time.Millisecond, rate: 2000}
	f := &fakeTarget{delay: 5 * time.Millisecond, failEvery: 3, failWith: errors.New("boom")}
	var s seen
	res := runWith(t, f, Config{Callers: 2, Duration: p.duration, Rate: p.rate}, &s)
	if got, want := res.Ops+res.Errors+res.Unsent, p.scheduled(); got != want {
		t.Errorf("ops %d + errors %d + unsent %d = %d, want the %d scheduled", res.Ops, res.Errors, res.Unsent, got, want)
	}
	if res.Unsent == 0 {
		t.Error("no op unsent although the target cannot keep up")
	}
	if started := int64(len(s.seqs["run"])); started != res.Ops+res.Errors {
		t.Errorf("hook saw %d ops started, result counts %d", started, res.Ops+res.Errors)
	}
	if res.ErrorsByCode["error"] != res.Errors {
		t.Errorf("errors by code = %v, want all %d as error", res.ErrorsByCode, res.Errors)
	}
}

func TestPhaseScheduled(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		rate float64
		want int64
	}{
		{time.Second, 3, 3},
		{10 * time.Millisecond, 1000, 10},
		{time.Second, 2.5, 3}, // due at 0, 0.4s, 0.8s
		{time.Second, 0.5, 1}, // due at 0 only
		{1500 * time.Millisecond, 2, 3},
	} {
		p := phase{duration: c.d, rate: c.rate}
		if got := p.scheduled(); got != c.want {
			t.Errorf("scheduled(%v at %v/s) = %d, want %d", c.d, c.rate, got, c.want)
		}
	}
	if got := (phase{count: 42, rate: 1}).scheduled(); got != 42 {
		t.Errorf("scheduled with count 42 = %d", got)
	}
}

func TestBatchAndMixedShapes(t *testing.T) {
	t.Run("batch scenario", func(t *testing.T) {
		f := &fakeTarget{}
		res, err := Run(context.Background(), f, Config{Scenario: ScenarioBatch, BatchSize: 7, Callers: 3, Count: 50})
		if err != nil {
			t.Fatal(err)
		}
		if res.Ops != 50 || res.Increments != 350 || res.CountersPerOp != 7 || f.sizes[7] != 50 {
			t.Errorf("ops %d, increments %d, per op %d, sizes %v; want 50, 350, 7, {7: 50}", res.Ops, res.Increments, res.CountersPerOp, f.sizes)
		}
	})
	t.Run("batching target", func(t *testing.T) {
		f := &fakeTarget{batch: true}
		res, err := Run(context.Background(), f, Config{Scenario: ScenarioGet, BatchSize: 5, Callers: 2, Count: 20})
		if err != nil {
			t.Fatal(err)
		}
		if res.Reads != 100 || res.Increments != 0 || f.sizes[5] != 20 {
			t.Errorf("reads %d, increments %d, sizes %v; want 100, 0, {5: 20}", res.Reads, res.Increments, f.sizes)
		}
	})
	t.Run("mixed", func(t *testing.T) {
		f := &fakeTarget{}
		res, err := Run(context.Background(), f, Config{Scenario: ScenarioMixed, ReadRatio: 0.3, Callers: 4, Count: 2000, Dist: DistZipf})
		if err != nil {
			t.Fatal(err)
		}
		if res.Reads+res.Increments != 2000 || res.Reads == 0 || res.Increments == 0 {
			t.Fatalf("reads %d + increments %d, want 2000 with both > 0", res.Reads, res.Increments)
		}
		if res.LatencyByOp["add"].Count != res.Increments || res.LatencyByOp["get"].Count != res.Reads || res.Latency.Count != 2000 {
			t.Errorf("latency counts add %d, get %d, all %d", res.LatencyByOp["add"].Count, res.LatencyByOp["get"].Count, res.Latency.Count)
		}
		// 30% reads of 2000 with a fixed seed: far from 0 and from 2000.
		if res.Reads < 450 || res.Reads > 750 {
			t.Errorf("reads = %d, want about 600", res.Reads)
		}
	})
}

func TestRunPhases(t *testing.T) {
	// --rate 50%: a calibration phase, a warmup, then the run at half the
	// calibrated peak, whatever that peak was.
	f := &fakeTarget{}
	var phases []string
	var mu sync.Mutex
	cfg := Config{Callers: 2, Count: 200, RateFraction: 0.5, Warmup: 20 * time.Millisecond,
		Progress: func(p Progress) {
			mu.Lock()
			defer mu.Unlock()
			if p.Final {
				phases = append(phases, p.Phase)
			}
		}}
	res, err := Run(context.Background(), f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"calibrate", "warmup", "run"}; len(phases) != 3 || phases[0] != want[0] || phases[1] != want[1] || phases[2] != want[2] {
		t.Errorf("phases = %v, want %v", phases, want)
	}
	if res.PeakOpsPerSec <= 0 || res.Rate != res.PeakOpsPerSec*0.5 {
		t.Errorf("peak %v, rate %v; want rate = peak/2 > 0", res.PeakOpsPerSec, res.Rate)
	}
	if res.Ops != 200 {
		t.Errorf("measured ops = %d, want 200 (calibration and warmup are not counted)", res.Ops)
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeTarget{delay: time.Millisecond}
	go func() {
		for f.calls.Load() < 20 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	res, err := Run(ctx, f, Config{Callers: 4, Duration: time.Hour})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if res == nil || !res.Interrupted || res.Errors != 0 {
		t.Fatalf("result = %+v; want interrupted, with no error counted for our own cancellation", res)
	}
}

func TestRunAllFail(t *testing.T) {
	f := &fakeTarget{failAll: context.DeadlineExceeded}
	res, err := Run(context.Background(), f, Config{Callers: 2, Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 0 || res.Errors != 10 || res.ErrorsByCode["deadline_exceeded"] != 10 {
		t.Errorf("ops %d, errors %d by code %v", res.Ops, res.Errors, res.ErrorsByCode)
	}
	if l, ok := res.LatencyByOp["add"]; !ok || l.Count != 0 {
		t.Errorf("latency_by_op[add] = %+v, %v; want present and empty", l, ok)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := Config{Scenario: "delete", ReadRatio: 2, Callers: -1, Duration: time.Second, Count: 5, Counters: -1,
		Dist: DistZipf, ZipfS: 1, BatchSize: -1, Rate: 5, RateFraction: 0.5, Timeout: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("a config with every field wrong is valid")
	}
	// Every problem is reported at once.
	for _, want := range []string{"scenario", "read ratio", "callers", "not both", "counters", "zipf", "batch size", "rate or a rate fraction", "timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
