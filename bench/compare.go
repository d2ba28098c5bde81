package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// CompareConfig describes a side-by-side comparison.
type CompareConfig struct {
	// Config is the run every target gets (a Spec may override its scenario).
	Config Config
	// Reps is the number of repetitions; default 3.
	Reps int
	// Specs are the targets, in order; default every target of TargetNames.
	Specs []Spec
	// Options holds the addresses; targets without one are skipped.
	Options Options
	// Baseline is the label of the target the ratios are to; default
	// "redis". Without it among the results, ratios are left out.
	Baseline string
	// OnRun, if set, is called before each run with the target's label, the
	// repetition (from 1) and Reps, e.g. to label a progress bar.
	OnRun func(target string, rep, reps int)
}

// Comparison is the outcome of Compare. Its JSON field names are stable.
type Comparison struct {
	// Baseline is the label the ratios are to ("" if it did not run).
	Baseline string `json:"baseline"`
	// Reps is the number of repetitions.
	Reps int `json:"reps"`
	// Order lists, per repetition, the targets in the order they ran.
	Order [][]string `json:"order"`
	// Targets holds one summary per target that was set up, in Specs order.
	Targets []*Summary `json:"targets"`
	// Skipped lists the targets that did not run, and why.
	Skipped []Skipped `json:"skipped"`
}

// Summary is one target's results over the repetitions.
type Summary struct {
	Target     string `json:"target"`
	TargetInfo string `json:"target_info,omitempty"`
	Scenario   string `json:"scenario"`
	// Throughput is in counter operations per second (increments plus
	// reads, see Result.Throughput): median, min and max over the reps.
	Throughput Spread `json:"throughput"`
	// OpsPerSec is the same in ops (RPCs, commands, statements) per second.
	OpsPerSec Spread `json:"ops_per_sec"`
	// P50US and P99US are the per-rep latency percentiles, in microseconds.
	P50US Spread `json:"p50_us"`
	P99US Spread `json:"p99_us"`
	// Errors sums the failed ops of every rep, by code in ErrorsByCode.
	Errors       int64            `json:"errors"`
	ErrorsByCode map[string]int64 `json:"errors_by_code"`
	// ServerCPU and GeneratorCPU are the CPU per op and per counter
	// operation of the server and of the generator (see CPU), over the
	// reps that measured it; null when no rep did.
	ServerCPU    *CPUSpread `json:"server_cpu,omitempty"`
	GeneratorCPU *CPUSpread `json:"generator_cpu,omitempty"`
	// Ratio is the median throughput over the baseline's, or null.
	Ratio *float64 `json:"ratio_to_baseline"`
	// Runs holds every rep's full result, in rep order.
	Runs []*Result `json:"runs"`
}

// Spread is the median, minimum and maximum of one figure over the reps.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// CPUSpread is a CPU figure over the reps.
type CPUSpread struct {
	// Source is the last rep's CPU.Source.
	Source string `json:"source"`
	// PerOpUS and PerCountUS spread CPU.PerOpUS and CPU.PerCountUS, in
	// microseconds.
	PerOpUS    Spread `json:"per_op_us"`
	PerCountUS Spread `json:"per_count_us"`
	// Reps counts the reps that measured it (a failed read is left out,
	// with its message in Error).
	Reps  int    `json:"reps"`
	Error string `json:"error,omitempty"`
}

// cpuSpread summarizes the CPU figures that get picks from runs; nil if no
// run has one.
func cpuSpread(runs []*Result, get func(*Result) *CPU) *CPUSpread {
	var out *CPUSpread
	var op, count []float64
	for _, r := range runs {
		c := get(r)
		if c == nil {
			continue
		}
		if out == nil {
			out = &CPUSpread{}
		}
		out.Source = c.Source
		if c.Error != "" {
			out.Error = c.Error
			continue
		}
		op, count = append(op, c.PerOpUS), append(count, c.PerCountUS)
		out.Reps++
	}
	if out != nil {
		out.PerOpUS, out.PerCountUS = spread(op), spread(count)
	}
	return out
}

// Skipped is a target that did not run.
type Skipped struct {
	Target string `json:"target"`
	Reason string `json:"reason"`
	// Failed is true when the target had its address but its setup failed
	// (false when it was left out for want of an address).
	Failed bool `json:"failed"`
}

// newTarget builds Compare's targets; tests replace it with fakes.
var newTarget = NewTarget

// Compare sets up every target of cc, then runs the same generator against
// them Reps times, round-robin: every repetition runs each target once,
// starting one target further along the list each time. Interleaving puts
// the machine's slow moments (a compaction, a noisy neighbour, thermal
// throttling) on every target alike, instead of on whichever ran during
// them; rotating the start keeps any target from always following the same
// one. A target whose address is missing is skipped; one whose setup fails
// is skipped with the error.
//
// Compare returns ctx's error, with what it measured, when cancelled.
func Compare(ctx context.Context, cc CompareConfig) (*Comparison, error) {
	cfg := cc.Config.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cc.Reps == 0 {
		cc.Reps = 3
	}
	if cc.Reps < 1 {
		return nil, fmt.Errorf("reps must be at least 1, not %d", cc.Reps)
	}
	if cc.Specs == nil {
		for _, n := range TargetNames {
			cc.Specs = append(cc.Specs, Spec{Target: n})
		}
	}
	if cc.Baseline == "" {
		cc.Baseline = TargetRedis
	}
	out := &Comparison{Reps: cc.Reps, Skipped: []Skipped{}, Targets: []*Summary{}}

	type entry struct {
		t   Target
		cfg Config
		sum *Summary
	}
	var entries []*entry
	defer func() {
		for _, e := range entries {
			e.t.Close()
		}
	}()
	seen := map[string]bool{}
	for _, sp := range cc.Specs {
		label := sp.String()
		if seen[label] {
			return nil, fmt.Errorf("target %s is listed twice", label)
		}
		seen[label] = true
		t, err := newTarget(sp, cc.Options)
		if se, ok := errors.AsType[*SkipError](err); ok {
			out.Skipped = append(out.Skipped, Skipped{Target: label, Reason: se.Reason})
			continue
		}
		if err != nil {
			return nil, err
		}
		ecfg := cfg
		if sp.Scenario != "" {
			ecfg.Scenario = sp.Scenario
		}
		w := Workload{Scenario: ecfg.Scenario, Counters: ecfg.Counters, Callers: ecfg.Callers, Timeout: ecfg.Timeout}
		if err := t.Setup(ctx, w); err != nil {
			t.Close()
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			out.Skipped = append(out.Skipped, Skipped{Target: label, Reason: "setup failed: " + err.Error(), Failed: true})
			continue
		}
		e := &entry{t: t, cfg: ecfg, sum: &Summary{Target: label, Scenario: ecfg.Scenario, ErrorsByCode: map[string]int64{}}}
		entries = append(entries, e)
		out.Targets = append(out.Targets, e.sum)
	}

	for rep := range cc.Reps {
		var order []string
		for k := range entries {
			e := entries[(rep+k)%len(entries)]
			order = append(order, e.sum.Target)
			if cc.OnRun != nil {
				cc.OnRun(e.sum.Target, rep+1, cc.Reps)
			}
			rcfg := e.cfg
			rcfg.Seed = cfg.Seed + uint64(rep)
			res, err := Run(ctx, e.t, rcfg)
			if res != nil {
				e.sum.Runs = append(e.sum.Runs, res)
			}
			if err != nil {
				out.Order = append(out.Order, order)
				out.summarize(cc.Baseline)
				return out, err
			}
		}
		out.Order = append(out.Order, order)
	}
	out.summarize(cc.Baseline)
	return out, nil
}

// summarize fills each summary's spreads and ratio from its runs.
func (c *Comparison) summarize(baseline string) {
	var base float64
	for _, s := range c.Targets {
		var tp, ops, p50, p99 []float64
		for _, r := range s.Runs {
			tp = append(tp, r.Throughput())
			ops = append(ops, r.OpsPerSec)
			p50 = append(p50, r.Latency.P50US)
			p99 = append(p99, r.Latency.P99US)
			s.Errors += r.Errors
			for code, n := range r.ErrorsByCode {
				s.ErrorsByCode[code] += n
			}
			if r.TargetInfo != "" {
				s.TargetInfo = r.TargetInfo
			}
		}
		s.Throughput, s.OpsPerSec, s.P50US, s.P99US = spread(tp), spread(ops), spread(p50), spread(p99)
		s.ServerCPU = cpuSpread(s.Runs, func(r *Result) *CPU { return r.ServerCPU })
		s.GeneratorCPU = cpuSpread(s.Runs, func(r *Result) *CPU { return r.GeneratorCPU })
		if s.Target == baseline && len(s.Runs) > 0 {
			base = s.Throughput.Median
			c.Baseline = baseline
		}
	}
	if base <= 0 {
		c.Baseline = ""
		return
	}
	for _, s := range c.Targets {
		if len(s.Runs) > 0 {
			r := s.Throughput.Median / base
			s.Ratio = &r
		}
	}
}

// spread returns the median, min and max of xs (zeros when empty). The
// median of an even number of values is the mean of the middle two.
func spread(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Spread{Median: med, Min: s[0], Max: s[n-1]}
}
