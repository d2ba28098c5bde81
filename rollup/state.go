package rollup

import "time"

// CounterState is where one counter stands in a node's rollup queues, for
// operators looking at one counter (the dashboard's counter lookup).
type CounterState struct {
	// Held: a queue holds the counter, waiting for a rollup or running one.
	// A counter not held is either caught up or waiting for its next
	// signal after a lost one (see Pipeline.Lost).
	Held bool
	// Running: its rollup is running now.
	Running bool
	// Parked: its count is rolled up and its checkpoint waits for the
	// accept window to pass its last write, until NotBefore.
	Parked bool
	// Since is when the signal that made it pending arrived.
	Since time.Time
	// NotBefore is the end of its park or of its retry backoff; zero if it
	// waits for the next window.
	NotBefore time.Time
	// Attempts counts its consecutive failed rollups.
	Attempts int
}

// State returns the state of counter in the queues of the namespace with
// this id on this node; the zero CounterState if none holds it.
func (p *Pipeline) State(id uint64, counter string) CounterState {
	nq := (*p.spaces.Load())[id]
	if nq == nil {
		return CounterState{}
	}
	q := nq.route(counter)
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.held[counter]
	if e == nil {
		return CounterState{}
	}
	return CounterState{Held: true, Running: e.running, Parked: e.parked, Since: e.since,
		NotBefore: e.notBefore, Attempts: e.attempts}
}
