package bench

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Run drives t, which must have been set up (Setup) for cfg's workload, and
// returns the result of the measured phase. Phases, in order:
//
//   - calibrate (only with Config.RateFraction): closed-loop, as long as the
//     measured phase, to find the peak; the rate is then a fraction of it;
//   - warmup (only with Config.Warmup): the measured load, not recorded;
//   - run: the measured phase.
//
// When ctx is cancelled, Run stops the callers and returns what was
// measured so far (Result.Interrupted set) along with ctx's error.
func Run(ctx context.Context, t Target, cfg Config) (*Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := newRunner(t, cfg)
	rate, peak := cfg.Rate, 0.0
	if cfg.RateFraction > 0 {
		st := r.phase(ctx, phase{name: "calibrate", duration: cfg.Duration, count: cfg.Count})
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		peak = st.opsPerSec()
		if peak <= 0 {
			return nil, errors.New("calibration finished no op successfully; cannot derive a rate from the peak")
		}
		rate = peak * cfg.RateFraction
	}
	if cfg.Warmup > 0 {
		r.phase(ctx, phase{name: "warmup", duration: cfg.Warmup, rate: rate})
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if m, ok := t.(measureStarter); ok {
		m.StartMeasure()
	}
	// The server is read before the generator starts its clock and after
	// it stops it, so that the scrapes' own CPU stays out of the
	// generator's figure; the reads at the end do not use ctx, so that an
	// interrupted run still reports what its ops cost.
	var srcCPU CPUSource
	if sr, ok := t.(ServerCPUReporter); ok {
		srcCPU = sr.ServerCPU()
	}
	srv := startCPU(ctx, srcCPU)
	gen := startCPU(ctx, selfCPU{})
	st := r.phase(ctx, phase{name: "run", duration: cfg.Duration, count: cfg.Count, rate: rate})
	res := st.result(t, cfg, r.items)
	res.Rate, res.PeakOpsPerSec = rate, peak
	res.GeneratorCPU = gen.stop(context.WithoutCancel(ctx), res)
	res.ServerCPU = srv.stop(context.WithoutCancel(ctx), res)
	if err := ctx.Err(); err != nil {
		res.Interrupted = true
		return res, err
	}
	return res, nil
}

// runner holds what the phases of one Run share: the target and each
// caller's op generator (so that the counter sequence of a caller carries on
// across phases rather than repeating).
type runner struct {
	t     Target
	cfg   Config
	items int // counters per op
	gens  []*generator
	// onOp, when set (by tests), sees every op a caller started: its
	// sequence number and due offset from the phase start.
	onOp func(phase string, seq int64, due time.Duration)
}

func newRunner(t Target, cfg Config) *runner {
	r := &runner{t: t, cfg: cfg, items: 1}
	if cfg.Scenario == ScenarioBatch || batched(t) {
		r.items = cfg.BatchSize
	}
	r.gens = make([]*generator, cfg.Callers)
	for i := range r.gens {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		// Validate has checked the distribution, so NewPicker cannot fail.
		p, _ := NewPicker(cfg.Dist, cfg.Counters, cfg.ZipfS, rng)
		r.gens[i] = &generator{rng: rng, pick: p, scenario: cfg.Scenario, readRatio: cfg.ReadRatio, buf: make([]int, r.items)}
	}
	return r
}

// generator makes one caller's ops.
type generator struct {
	rng       *rand.Rand
	pick      Picker
	scenario  string
	readRatio float64
	buf       []int
}

func (g *generator) next() Op {
	read := false
	switch g.scenario {
	case ScenarioGet:
		read = true
	case ScenarioMixed:
		read = g.rng.Float64() < g.readRatio
	}
	for i := range g.buf {
		g.buf[i] = g.pick.Pick()
	}
	return Op{Read: read, Counters: g.buf}
}

// phase is one stretch of load: it ends after duration, or after count ops
// when count is positive. With a positive rate it is open-loop.
type phase struct {
	name     string
	duration time.Duration
	count    int64
	rate     float64
}

// dueOffset is when op seq of an open-loop phase is due, after its start.
// Every part of the accounting uses this one function, so that "scheduled
// before the end" means the same thing everywhere.
func (p phase) dueOffset(seq int64) time.Duration {
	return time.Duration(float64(seq) * 1e9 / p.rate)
}

// scheduled is how many ops an open-loop phase is meant to start: count, or
// the number of ops due before the end.
func (p phase) scheduled() int64 {
	if p.count > 0 {
		return p.count
	}
	n := int64(math.Ceil(p.duration.Seconds() * p.rate))
	for n > 0 && p.dueOffset(n-1) >= p.duration {
		n--
	}
	for p.dueOffset(n) < p.duration {
		n++
	}
	return n
}

// phase runs one phase with cfg.Callers callers and returns its tallies.
//
// Callers share one sequence of op numbers. Closed-loop, a caller takes the
// next number and sends at once. Open-loop, op n is due at start +
// n/rate: a caller takes the next number, sleeps until it is due if it is
// early, and measures latency from the due time. Because the number goes to
// whichever caller frees up first, this is one queue served by Callers
// servers: when the target is slower than the rate, ops wait in the queue,
// and that wait is in their latency. Ops still unsent at the end of a timed
// phase are counted as Unsent, not silently dropped.
func (r *runner) phase(ctx context.Context, p phase) *tally {
	tl := newTally(r.cfg.Callers)
	var next atomic.Int64
	start := time.Now()
	end := start.Add(p.duration)

	stopProgress := r.progress(p, start, tl)
	var wg sync.WaitGroup
	for i := range r.cfg.Callers {
		wg.Go(func() { r.caller(ctx, i, p, start, end, &next, tl) })
	}
	wg.Wait()
	tl.elapsed = tl.lastFinish().Sub(start)
	if tl.elapsed <= 0 {
		tl.elapsed = time.Since(start)
	}
	if p.rate > 0 {
		tl.unsent = max(p.scheduled()-tl.started(), 0)
	}
	stopProgress()
	return tl
}

func (r *runner) caller(ctx context.Context, i int, p phase, start, end time.Time, next *atomic.Int64, tl *tally) {
	g, st := r.gens[i], &tl.callers[i]
	timed := p.count <= 0
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for ctx.Err() == nil {
		seq := next.Add(1) - 1
		if p.count > 0 && seq >= p.count {
			return
		}
		now := time.Now()
		if timed && !now.Before(end) {
			// Open-loop, an op due before the end that no caller was free
			// to take before the end is one of the unsent.
			return
		}
		due := now
		if p.rate > 0 {
			due = start.Add(p.dueOffset(seq))
			if timed && !due.Before(end) {
				return
			}
			// A caller that took the op early was free for it: it sends
			// it when due, even if its timer fires a little after the end.
			if wait := due.Sub(now); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-timer.C:
				case <-ctx.Done():
					return
				}
			}
		}
		if r.onOp != nil {
			r.onOp(p.name, seq, due.Sub(start))
		}
		op := g.next()
		octx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		err := r.t.Do(octx, i, op)
		cancel()
		fin := time.Now()
		if err != nil && ctx.Err() != nil {
			// Our own cancellation, not the target's failure.
			return
		}
		st.record(tl, i, op, fin.Sub(due), err)
		st.last = fin
	}
}

// progress calls cfg.Progress about every 100ms until the returned stop
// function is called, which makes one final call.
func (r *runner) progress(p phase, start time.Time, tl *tally) (stop func()) {
	report := r.cfg.Progress
	if report == nil {
		return func() {}
	}
	snap := func(final bool) Progress {
		return Progress{Phase: p.name, Done: tl.done(), Elapsed: time.Since(start), Duration: p.duration, Count: p.count, Final: final}
	}
	report(snap(false))
	return every100ms(func(final bool) { report(snap(final)) })
}

// every100ms calls f(false) about every 100ms, from one goroutine, until the
// returned stop function is called, which waits for it and calls f(true).
func every100ms(f func(final bool)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				f(false)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		f(true)
	}
}

// shards is the number of histogram shards for a run with this many callers:
// enough that callers on different CPUs rarely share a lock.
func shards(callers int) int {
	return min(callers, max(4, 2*runtime.GOMAXPROCS(0)))
}
