package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// fakeTarget is an in-memory Target for tests of the engine: it counts what
// it is asked, optionally fails some ops and optionally takes time.
type fakeTarget struct {
	name    string
	batch   bool
	delay   time.Duration
	failAll error
	// failEvery, if > 0, fails every failEvery-th op with failWith.
	failEvery int64
	failWith  error

	calls      atomic.Int64
	increments atomic.Int64
	reads      atomic.Int64
	mu         sync.Mutex
	setups     []Workload
	sizes      map[int]int // counters per op -> ops
	closed     bool
}

func (f *fakeTarget) Name() string {
	if f.name == "" {
		return "fake"
	}
	return f.name
}

func (f *fakeTarget) Batched() bool { return f.batch }

func (f *fakeTarget) Setup(_ context.Context, w Workload) error {
	f.mu.Lock()
	f.setups = append(f.setups, w)
	f.mu.Unlock()
	return nil
}

func (f *fakeTarget) Do(ctx context.Context, _ int, op Op) error {
	n := f.calls.Add(1)
	f.mu.Lock()
	if f.sizes == nil {
		f.sizes = map[int]int{}
	}
	f.sizes[len(op.Counters)]++
	f.mu.Unlock()
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.failAll != nil {
		return f.failAll
	}
	if f.failEvery > 0 && n%f.failEvery == 0 {
		return f.failWith
	}
	if op.Read {
		f.reads.Add(int64(len(op.Counters)))
	} else {
		f.increments.Add(int64(len(op.Counters)))
	}
	return nil
}

func (f *fakeTarget) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return nil
}
