package history

import (
	"sync"
	"sync/atomic"
)

// Tally counts the requests and increments each namespace receives, for the
// per-namespace rates. The request path calls Count; a Sampler reads the
// totals once per interval.
//
// Only namespaces named by SetNamespaces are counted: a client naming
// namespaces that do not exist must not grow the tally (or the history).
// The set is replaced whole, so Count reads it without a lock: one atomic
// load, one map lookup and two atomic adds per call.
type Tally struct {
	counts atomic.Pointer[map[string]*nsCount]
	mu     sync.Mutex // serializes SetNamespaces
}

type nsCount struct {
	requests, increments atomic.Uint64
}

// Count adds requests and increments to namespace ns, if it is counted.
func (t *Tally) Count(ns string, requests, increments uint64) {
	m := t.counts.Load()
	if m == nil {
		return
	}
	c := (*m)[ns]
	if c == nil {
		return
	}
	if requests > 0 {
		c.requests.Add(requests)
	}
	if increments > 0 {
		c.increments.Add(increments)
	}
}

// SetNamespaces makes names the counted namespaces: those already counted
// keep their totals, the others start at zero, and any other is forgotten.
func (t *Tally) SetNamespaces(names []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.counts.Load()
	if old != nil && len(*old) == len(names) {
		same := true
		for _, n := range names {
			if (*old)[n] == nil {
				same = false
				break
			}
		}
		if same {
			return
		}
	}
	m := make(map[string]*nsCount, len(names))
	for _, n := range names {
		if old != nil && (*old)[n] != nil {
			m[n] = (*old)[n]
		} else {
			m[n] = new(nsCount)
		}
	}
	t.counts.Store(&m)
}

// Totals returns each counted namespace's requests and increments so far.
func (t *Tally) Totals() map[string][2]uint64 {
	m := t.counts.Load()
	if m == nil {
		return nil
	}
	out := make(map[string][2]uint64, len(*m))
	for n, c := range *m {
		out[n] = [2]uint64{c.requests.Load(), c.increments.Load()}
	}
	return out
}
