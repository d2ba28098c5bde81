package bench

import (
	"errors"
	"fmt"
	"time"
)

// Scenarios accepted by Config.Scenario.
const (
	// ScenarioAdd: every op adds 1 to one counter.
	ScenarioAdd = "add"
	// ScenarioGet: every op reads one counter.
	ScenarioGet = "get"
	// ScenarioMixed: every op reads one counter with probability
	// Config.ReadRatio, else adds 1 to one.
	ScenarioMixed = "mixed"
	// ScenarioBatch: every op adds 1 to each of Config.BatchSize counters,
	// sent in the target's multi-item form (AddCounts, a Redis pipeline, one
	// PostgreSQL round trip).
	ScenarioBatch = "batch"
)

// Scenarios lists the valid scenarios.
var Scenarios = []string{ScenarioAdd, ScenarioGet, ScenarioMixed, ScenarioBatch}

// Config describes one run. The zero value of a field takes the default in
// its comment; Validate reports every invalid field at once.
type Config struct {
	// Scenario is ScenarioAdd (default), ScenarioGet, ScenarioMixed or
	// ScenarioBatch.
	Scenario string
	// ReadRatio is the share of reads in ScenarioMixed, in [0, 1]; default
	// 0.5 (a mix without reads is ScenarioAdd).
	ReadRatio float64
	// Callers is the number of concurrent callers; default 64.
	Callers int
	// Duration is how long the measured phase runs; default 10s unless Count
	// is set. Exactly one of Duration and Count is used.
	Duration time.Duration
	// Count, if positive, ends the measured phase after this many ops
	// (successful or not) instead of after Duration.
	Count int64
	// Warmup is run before the measured phase with the same load and is not
	// recorded: it fills connection pools, caches and the JIT-less but
	// allocation-hungry steady state. Default 0.
	Warmup time.Duration
	// Counters is the number of distinct counters; default 1000.
	Counters int
	// Dist is DistUniform (default) or DistZipf.
	Dist string
	// ZipfS is the Zipf exponent (> 1); default 1.1.
	ZipfS float64
	// BatchSize is the number of counters per op in ScenarioBatch, and per
	// call of a batching target (abacus-batch) in every scenario; default 100.
	BatchSize int
	// Rate, if positive, is the target rate in ops/s: the callers then run
	// open-loop (see the package doc). 0 runs closed-loop, as fast as the
	// target answers.
	Rate float64
	// RateFraction, if positive, first measures the peak with a closed-loop
	// calibration phase as long as the measured one, then runs at
	// RateFraction times that peak (0.5 = "half of peak load"). It excludes
	// Rate.
	RateFraction float64
	// Timeout bounds each op; default 10s. An op that runs out counts as a
	// deadline_exceeded error.
	Timeout time.Duration
	// Seed seeds the counter pickers (caller i uses Seed+i), so that two
	// runs with one seed touch the same counters in the same order per
	// caller; default 1.
	Seed uint64
	// Progress, if set, is called about every 100ms during each phase and
	// once at its end. It must return quickly.
	Progress func(Progress)
}

// Progress reports how far a phase of a run has gone.
type Progress struct {
	// Phase is "calibrate", "warmup" or "run".
	Phase string
	// Done counts ops finished in this phase (successful or not).
	Done int64
	// Elapsed is the time since the phase started.
	Elapsed time.Duration
	// Duration is the phase's planned length, or 0 when it ends by Count.
	Duration time.Duration
	// Count is the phase's planned number of ops, or 0 when it ends by time.
	Count int64
	// Final is true on the last call of the phase.
	Final bool
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Scenario == "" {
		c.Scenario = ScenarioAdd
	}
	if c.Scenario == ScenarioMixed && c.ReadRatio == 0 {
		c.ReadRatio = 0.5
	}
	if c.Callers == 0 {
		c.Callers = 64
	}
	if c.Duration == 0 && c.Count == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Counters == 0 {
		c.Counters = 1000
	}
	if c.Dist == "" {
		c.Dist = DistUniform
	}
	if c.ZipfS == 0 {
		c.ZipfS = 1.1
	}
	if c.BatchSize == 0 {
		c.BatchSize = 100
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	return c
}

// Validate reports every problem of c (after defaults), joined.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.Scenario {
	case ScenarioAdd, ScenarioGet, ScenarioMixed, ScenarioBatch:
	default:
		bad("scenario must be one of %v, not %q", Scenarios, c.Scenario)
	}
	if c.ReadRatio < 0 || c.ReadRatio > 1 {
		bad("read ratio must be in [0, 1], not %v", c.ReadRatio)
	}
	if c.Callers < 1 {
		bad("callers must be at least 1, not %d", c.Callers)
	}
	if c.Duration < 0 {
		bad("duration must not be negative, not %v", c.Duration)
	}
	if c.Count < 0 {
		bad("count must not be negative, not %d", c.Count)
	}
	if c.Duration > 0 && c.Count > 0 {
		bad("give a duration or a count, not both")
	}
	if c.Duration == 0 && c.Count == 0 {
		bad("give a duration or a count")
	}
	if c.Warmup < 0 {
		bad("warmup must not be negative, not %v", c.Warmup)
	}
	if c.Counters < 1 {
		bad("counters must be at least 1, not %d", c.Counters)
	}
	switch c.Dist {
	case DistUniform:
	case DistZipf:
		if !(c.ZipfS > 1) {
			bad("zipf exponent must be greater than 1, not %v", c.ZipfS)
		}
	default:
		bad("distribution must be %s or %s, not %q", DistUniform, DistZipf, c.Dist)
	}
	if c.BatchSize < 1 {
		bad("batch size must be at least 1, not %d", c.BatchSize)
	}
	if c.Rate < 0 {
		bad("rate must not be negative, not %v", c.Rate)
	}
	if c.RateFraction < 0 {
		bad("rate fraction must not be negative, not %v", c.RateFraction)
	}
	if c.Rate > 0 && c.RateFraction > 0 {
		bad("give a rate or a rate fraction, not both")
	}
	if c.Timeout <= 0 {
		bad("timeout must be positive, not %v", c.Timeout)
	}
	return errors.Join(errs...)
}
