package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/client"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// SchemaConverge names the JSON document of a convergence run.
const SchemaConverge = "abacus.bench.converge/v1"

// ConvergeConfig describes a convergence run: how long after the last
// acknowledged write the counts of many distinct counters are all exact.
type ConvergeConfig struct {
	// Addr is the gRPC address of an abacusd node.
	Addr string
	// Namespace is used as it is if it exists, else created with Type.
	// Default "bench_converge".
	Namespace string
	// Type is the counter type of a namespace the run creates: EVENTUAL
	// (default) or ACCURATE.
	Type string
	// Counters is the number of distinct counters written; default 1,000,000.
	Counters int
	// Adds is the number of increments of 1 each counter receives, each with
	// its own idempotency token; default 1.
	Adds int
	// BatchSize is the number of adds per AddCounts and of reads per
	// GetCounts call; default 1000.
	BatchSize int
	// Callers is the number of concurrent calls in both phases; default 16.
	Callers int
	// MaxWait bounds the check phase; default accept limit + 1 min.
	MaxWait time.Duration
	// Timeout bounds each call; default 30s. A call that fails with
	// UNAVAILABLE or DEADLINE_EXCEEDED is retried with the same tokens.
	Timeout time.Duration
	// Progress, if set, is called from one goroutine about every 100ms.
	Progress func(ConvergeProgress)
	// ClientOptions are added to the client's: TLS and an access token.
	ClientOptions []client.Option
}

// ConvergeProgress reports how far a convergence run has gone.
type ConvergeProgress struct {
	// Phase is "write" or "check".
	Phase string
	// Done counts adds acknowledged (write) or counters found exact (check).
	Done, Total int64
	// Elapsed is the time since the phase started.
	Elapsed time.Duration
}

// ConvergeResult is what a convergence run measured. Its JSON field names
// are stable.
type ConvergeResult struct {
	Namespace  string `json:"namespace"`
	TargetInfo string `json:"target_info"`
	Counters   int    `json:"counters"`
	Adds       int64  `json:"adds"`
	// AcceptLimitSec is the namespace's accept limit; TargetSec is the
	// issue's target, accept limit + 1s.
	AcceptLimitSec float64 `json:"accept_limit_sec"`
	TargetSec      float64 `json:"target_sec"`
	// WriteSec is how long the write phase took, WriteRate its adds/s.
	WriteSec  float64 `json:"write_sec"`
	WriteRate float64 `json:"write_rate"`
	// ExactAfterSec is the time from the last acknowledged add to the read
	// that found the last counter exact: an upper bound of the convergence
	// time (a counter may have been exact before it was read). -1 when some
	// counters were still inexact after MaxWait.
	ExactAfterSec float64 `json:"exact_after_sec"`
	// ExactAtFirstSweep counts the counters already exact when first read,
	// in the sweep that starts right after the last write.
	ExactAtFirstSweep int64 `json:"exact_at_first_sweep"`
	// Sweeps is the number of passes over the counters still inexact; Reads
	// the counters read in all of them.
	Sweeps int   `json:"sweeps"`
	Reads  int64 `json:"reads"`
	// Inexact is the number of counters not exact at the end (0 on success);
	// Overcounted those whose count exceeded Adds at any read, which no
	// amount of waiting fixes.
	Inexact     int64 `json:"inexact"`
	Overcounted int64 `json:"overcounted"`
	// Met reports ExactAfterSec ≤ TargetSec.
	Met bool `json:"met"`
	// Progress has one point per sweep: by the end of the sweep, AfterSec
	// after the last write, Exact counters had been read exact. It shows
	// the tail: how long the last few counters took after most were exact.
	Progress []ConvergePoint `json:"progress"`
}

// ConvergePoint is the state at the end of one sweep of a convergence run.
type ConvergePoint struct {
	AfterSec float64 `json:"after_sec"`
	Exact    int64   `json:"exact"`
}

// ExactFraction returns when (seconds after the last write, at the end of
// a sweep) at least fraction of the counters had been read exact, and
// false if that never happened.
func (r *ConvergeResult) ExactFraction(fraction float64) (float64, bool) {
	need := int64(fraction * float64(r.Counters))
	for _, p := range r.Progress {
		if p.Exact >= need {
			return p.AfterSec, true
		}
	}
	return 0, false
}

func (c ConvergeConfig) withDefaults() ConvergeConfig {
	if c.Namespace == "" {
		c.Namespace = "bench_converge"
	}
	if c.Type == "" {
		c.Type = "EVENTUAL"
	}
	if c.Counters == 0 {
		c.Counters = 1_000_000
	}
	if c.Adds == 0 {
		c.Adds = 1
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.Callers == 0 {
		c.Callers = 16
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	return c
}

func (c ConvergeConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Addr == "" {
		bad("the abacusd address is required")
	}
	if c.Counters < 1 {
		bad("counters must be at least 1, not %d", c.Counters)
	}
	if c.Adds < 1 {
		bad("adds must be at least 1, not %d", c.Adds)
	}
	if c.BatchSize < 1 || c.BatchSize > 10_000 {
		bad("batch size must be in [1, 10000], not %d", c.BatchSize)
	}
	if c.Callers < 1 {
		bad("callers must be at least 1, not %d", c.Callers)
	}
	if c.MaxWait < 0 {
		bad("max wait must not be negative, not %v", c.MaxWait)
	}
	if c.Timeout <= 0 {
		bad("timeout must be positive, not %v", c.Timeout)
	}
	return errors.Join(errs...)
}

// Converge writes Adds increments to each of Counters fresh counters (their
// names carry a random run prefix, so they start at 0) with AddCounts, then
// reads every counter not yet known exact with GetCounts, sweep after sweep,
// until all are exact or MaxWait has passed. Reads of an EVENTUAL counter
// also ask for its rollup, as every GetCount does.
func Converge(ctx context.Context, c ConvergeConfig) (*ConvergeResult, error) {
	c = c.withDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	cl, err := client.New(c.Addr, append([]client.Option{
		client.WithBatching(false),
		// The same 5 attempts as ever, each bounded by Timeout; the
		// namespace is checked to deduplicate writes below, so the client
		// need not look its type up to retry them.
		client.WithRetries(4),
		client.WithAttemptTimeout(c.Timeout),
		client.WithBackoff(100*time.Millisecond, 400*time.Millisecond),
		client.WithBestEffortRetries(true),
	}, c.ClientOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", c.Addr, err)
	}
	defer cl.Close()
	info, err := ensureNamespace(ctx, cl.Namespaces(), c.Namespace, c.Type)
	if err != nil {
		return nil, err
	}
	got, err := cl.Namespaces().GetNamespace(ctx, &abacusv1.GetNamespaceRequest{Name: c.Namespace})
	if err != nil {
		return nil, fmt.Errorf("get namespace %s: %w", c.Namespace, err)
	}
	switch got.GetNamespace().GetCounterType() {
	case abacusv1.CounterType_EVENTUAL, abacusv1.CounterType_ACCURATE:
	default:
		return nil, fmt.Errorf("namespace %s is %s: convergence is measured on EVENTUAL or ACCURATE namespaces",
			c.Namespace, got.GetNamespace().GetCounterType())
	}
	accept := got.GetNamespace().GetAcceptLimit().AsDuration()
	if c.MaxWait == 0 {
		c.MaxWait = accept + time.Minute
	}
	id, err := runID()
	if err != nil {
		return nil, err
	}
	r := &converger{cfg: c, svc: cl.Service(), prefix: "cv-" + id + "-"}
	res := &ConvergeResult{
		Namespace: c.Namespace, TargetInfo: info, Counters: c.Counters, Adds: int64(c.Counters) * int64(c.Adds),
		AcceptLimitSec: accept.Seconds(), TargetSec: (accept + time.Second).Seconds(),
	}

	start := time.Now()
	last, err := r.write(ctx)
	if err != nil {
		return nil, err
	}
	res.WriteSec = time.Since(start).Seconds()
	res.WriteRate = float64(res.Adds) / res.WriteSec

	exactAt, err := r.check(ctx, last, res)
	if err != nil {
		return res, err
	}
	res.ExactAfterSec = -1
	if res.Inexact == 0 {
		res.ExactAfterSec = exactAt.Sub(last).Seconds()
		res.Met = res.ExactAfterSec <= res.TargetSec
	}
	return res, nil
}

type converger struct {
	cfg    ConvergeConfig
	svc    abacus.CounterService
	prefix string
}

func (r *converger) name(i int) string { return r.prefix + strconv.Itoa(i) }

// write sends every add, round by round (each counter's n-th add in round
// n), and returns when the last add was acknowledged.
func (r *converger) write(ctx context.Context) (time.Time, error) {
	c := r.cfg
	total := int64(c.Counters) * int64(c.Adds)
	batches := (total + int64(c.BatchSize) - 1) / int64(c.BatchSize)
	var next, done atomic.Int64
	stop := r.progress("write", &done, total)
	defer stop()
	err := r.parallel(ctx, func(ctx context.Context) error {
		for {
			b := next.Add(1) - 1
			if b >= batches {
				return nil
			}
			lo, hi := b*int64(c.BatchSize), min((b+1)*int64(c.BatchSize), total)
			adds := make([]abacus.AddRequest, 0, hi-lo)
			for k := lo; k < hi; k++ {
				adds = append(adds, abacus.AddRequest{Namespace: c.Namespace, Counter: r.name(int(k % int64(c.Counters))), Delta: 1})
			}
			if _, err := r.svc.AddBatch(ctx, adds); err != nil {
				return fmt.Errorf("AddCounts: %w", err)
			}
			done.Add(hi - lo)
		}
	})
	return time.Now(), err
}

// Bounds of the rest between two sweeps of the check.
const (
	minRest = 100 * time.Millisecond
	maxRest = time.Second
)

// check sweeps the counters not yet seen exact until none is left or
// MaxWait has passed, and returns when the last one was seen exact.
func (r *converger) check(ctx context.Context, last time.Time, res *ConvergeResult) (time.Time, error) {
	c := r.cfg
	pending := make([]int, c.Counters)
	for i := range pending {
		pending[i] = i
	}
	want := int64(c.Adds)
	var exactAt time.Time
	var found atomic.Int64
	stop := r.progress("check", &found, int64(c.Counters))
	defer stop()
	over := make([]bool, c.Counters) // each index is written by one caller at a time
	var sweep time.Duration
	for len(pending) > 0 && time.Since(last) < c.MaxWait {
		if res.Sweeps > 0 {
			// Rest as long as the sweep took, within [minRest, maxRest]:
			// reads compete with the rollups for the node's CPU, and a check
			// that reads without pause would delay the very convergence it
			// measures; but the rest also bounds the measure's resolution,
			// and after a sweep of a million counters (about 3 s here) an
			// equal rest made "exact after" a multiple of it.
			select {
			case <-ctx.Done():
				return exactAt, ctx.Err()
			case <-time.After(min(max(minRest, sweep), maxRest)):
			}
		}
		sweepStart := time.Now()
		res.Sweeps++
		exact := make([]bool, len(pending))
		var next atomic.Int64
		var mu sync.Mutex
		err := r.parallel(ctx, func(ctx context.Context) error {
			for {
				lo := int(next.Add(int64(c.BatchSize))) - c.BatchSize
				if lo >= len(pending) {
					return nil
				}
				hi := min(lo+c.BatchSize, len(pending))
				refs := make([]abacus.Ref, 0, hi-lo)
				for _, i := range pending[lo:hi] {
					refs = append(refs, abacus.Ref{Namespace: c.Namespace, Counter: r.name(i)})
				}
				counts, err := r.svc.GetBatch(ctx, refs)
				if err != nil {
					return fmt.Errorf("GetCounts: %w", err)
				}
				seen := time.Now()
				n := int64(0)
				for k, got := range counts {
					if got > want {
						over[pending[lo+k]] = true
					}
					if got == want {
						exact[lo+k] = true
						n++
					}
				}
				if n > 0 {
					found.Add(n)
					mu.Lock()
					if seen.After(exactAt) {
						exactAt = seen
					}
					mu.Unlock()
				}
			}
		})
		if err != nil {
			return exactAt, err
		}
		sweep = time.Since(sweepStart)
		res.Reads += int64(len(pending))
		left := pending[:0]
		for k, i := range pending {
			if !exact[k] {
				left = append(left, i)
			}
		}
		if res.Sweeps == 1 {
			res.ExactAtFirstSweep = int64(c.Counters - len(left))
		}
		res.Progress = append(res.Progress, ConvergePoint{AfterSec: time.Since(last).Seconds(), Exact: int64(c.Counters - len(left))})
		pending = left
	}
	res.Inexact = int64(len(pending))
	for _, o := range over {
		if o {
			res.Overcounted++
		}
	}
	return exactAt, nil
}

// parallel runs f on Callers goroutines and returns the first error, which
// cancels the others.
func (r *converger) parallel(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range r.cfg.Callers {
		wg.Go(func() {
			if err := f(ctx); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// progress reports done/total about every 100ms until the returned
// function is called, which reports once more.
func (r *converger) progress(phase string, done *atomic.Int64, total int64) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	start := time.Now()
	return every100ms(func(bool) {
		r.cfg.Progress(ConvergeProgress{Phase: phase, Done: done.Load(), Total: total, Elapsed: time.Since(start)})
	})
}
