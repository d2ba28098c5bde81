// Package memlimit keeps Go's soft memory limit (debug.SetMemoryLimit) at
// the larger of a floor and a multiple of the live heap.
//
// abacusd collects garbage at GOGC=400: its live heap is small next to what
// requests allocate, and fewer collections leave more CPU to them. But the
// heap may then grow to five times its live size, and a node holding a
// million fresh counters (half a gigabyte live) peaked at 3.3–3.8 GB. A
// fixed limit would bound that, and make a node whose live heap outgrows it
// collect without pause; a limit that follows the live heap keeps GOGC=400
// below the floor and lets the heap grow at least Ratio times its live size
// above it.
package memlimit

import (
	"context"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Config sets the limit's floor and ratio, and how often it is reset.
type Config struct {
	// Floor is the least limit, in bytes.
	Floor uint64
	// Ratio times the live heap is the limit above the floor.
	Ratio float64
	// Every is how often the live heap is read and the limit reset.
	Every time.Duration
}

// Default is abacusd's configuration: a 2 GiB floor, twice the live heap
// above it (the heap of GOGC=100), reset every second.
var Default = Config{Floor: 2 << 30, Ratio: 2, Every: time.Second}

// Limit returns the memory limit for a live heap of live bytes.
func (c Config) Limit(live uint64) int64 {
	l := max(float64(c.Floor), c.Ratio*float64(live))
	if l >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(l)
}

const liveHeap = "/gc/heap/live:bytes"

// Run sets the limit now and then every c.Every, until ctx ends; it then
// leaves the last limit in place.
func Run(ctx context.Context, c Config) {
	sample := []metrics.Sample{{Name: liveHeap}}
	set := func() {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			debug.SetMemoryLimit(c.Limit(sample[0].Value.Uint64()))
		}
	}
	set()
	t := time.NewTicker(c.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			set()
		}
	}
}
