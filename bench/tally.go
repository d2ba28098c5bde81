package bench

import (
	"sync/atomic"
	"time"
)

// tally collects what the callers of one phase did. Each caller writes only
// its own callerTally (no locks; padded so that neighbours do not share a
// cache line), except for latencies, which go to sharded histograms; the
// phase reads the callers' tallies after they have all returned.
type tally struct {
	add, get *Histogram
	callers  []callerTally
	elapsed  time.Duration
	unsent   int64
}

type callerTally struct {
	// done counts finished ops, successful or not; it is atomic because the
	// progress reporter reads it while the caller runs.
	done       atomic.Int64
	ok, failed int64
	increments int64
	reads      int64
	errs       map[string]int64
	samples    map[string]string
	last       time.Time
	_          [64]byte
}

func newTally(callers int) *tally {
	return &tally{
		add:     NewHistogram(shards(callers)),
		get:     NewHistogram(shards(callers)),
		callers: make([]callerTally, callers),
	}
}

// record counts one finished op. Only successful ops enter the latency
// histograms: a refused op's latency says little about the target's speed
// and would flatter a target that fails fast.
func (c *callerTally) record(tl *tally, caller int, op Op, latency time.Duration, err error) {
	c.done.Add(1)
	if err != nil {
		c.failed++
		code := ErrorCode(err)
		if c.errs == nil {
			c.errs, c.samples = map[string]int64{}, map[string]string{}
		}
		c.errs[code]++
		if _, ok := c.samples[code]; !ok {
			c.samples[code] = err.Error()
		}
		return
	}
	c.ok++
	if op.Read {
		c.reads += int64(len(op.Counters))
		tl.get.Record(caller, latency)
	} else {
		c.increments += int64(len(op.Counters))
		tl.add.Record(caller, latency)
	}
}

func (tl *tally) done() int64 {
	var n int64
	for i := range tl.callers {
		n += tl.callers[i].done.Load()
	}
	return n
}

func (tl *tally) started() int64 {
	var n int64
	for i := range tl.callers {
		n += tl.callers[i].ok + tl.callers[i].failed
	}
	return n
}

func (tl *tally) lastFinish() time.Time {
	var last time.Time
	for i := range tl.callers {
		if tl.callers[i].last.After(last) {
			last = tl.callers[i].last
		}
	}
	return last
}

func (tl *tally) opsPerSec() float64 {
	var ok int64
	for i := range tl.callers {
		ok += tl.callers[i].ok
	}
	return perSec(ok, tl.elapsed)
}

func perSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
