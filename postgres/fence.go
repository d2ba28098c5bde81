package postgres

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/abacus-dev/abacus"
)

// fencesSQL raises the fences of many counters, creating their rows if need
// be, one row per counter, fed by unnest arrays sorted by (ns_id, counter).
// ON CONFLICT DO UPDATE locks each row even where the fence does not rise,
// and the insert of a new row waits for a concurrent insert of the same key:
// either way the statement waits for every group transaction that holds one
// of the rows, which every group writing to the counter does until it
// commits. Rows are locked in the order of the
// arrays, the order in which groups lock them too (groupCountersSQL), so a
// fence batch and a group wait for each other in one direction only and
// cannot deadlock. A counter appears once: ON CONFLICT DO UPDATE may not
// touch a row twice in one statement.
const fencesSQL = `
INSERT INTO {{S}}.counters AS w (ns_id, counter, fence)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])
ON CONFLICT (ns_id, counter) DO UPDATE SET fence = excluded.fence
    WHERE w.fence IS NULL OR w.fence < excluded.fence`

// maxFenceBatch is the most counters one fence transaction raises. A rollup
// batch fences its counters all at once, so a batch of fences is about as
// big as a rollup batch; the bound keeps a statement, and the time its row
// locks are held, small whatever the callers do.
const maxFenceBatch = 1024

// fencer group-commits Fences (see groupQueue), up to maxFenceBatch in one
// statement, its own implicit transaction. A rollup fences each counter of
// its batch on its own goroutine, so Fences come in bursts: one transaction
// each made a commit (a WAL flush) and a round trip per counter rolled up,
// more than the Appends being rolled up cost. A caller that stops waiting
// before its fence is taken abandons it; one taken may be written (raising
// a fence is always safe: it only refuses writes that a rollup could miss).
type fencer = groupQueue[fence]

// fence is one Fence: a counter and the time its fence rises to.
type fence struct {
	key fenceKey
	end int64 // Unix nanoseconds
}

// fenceRequest is one Fence waiting for its batch.
type fenceRequest = groupRequest[fence]

// fenceKey names a counter's row in the counters table.
type fenceKey struct {
	ns      int64
	counter string
}

func compareFenceKeys(a, b fenceKey) int {
	return cmp.Or(cmp.Compare(a.ns, b.ns), strings.Compare(a.counter, b.counter))
}

func newFencer(s *Store) *fencer {
	return &fencer{s: s, what: "fence", limit: maxFenceBatch,
		weight: func(fence) int { return 1 },
		write: func(live []*fenceRequest) {
			err := s.fenceBatch(live)
			for _, r := range live {
				r.done <- err
			}
		}}
}

// fenceArgs returns fencesSQL's arguments for reqs: each counter once, with
// the highest of its fences, in key order.
func fenceArgs(reqs []*fenceRequest) (ns []int64, counters []string, ends []int64) {
	sorted := slices.Clone(reqs)
	slices.SortFunc(sorted, func(a, b *fenceRequest) int { return compareFenceKeys(a.item.key, b.item.key) })
	for i, r := range sorted {
		f := r.item
		if i > 0 && sorted[i-1].item.key == f.key {
			ends[len(ends)-1] = max(ends[len(ends)-1], f.end)
			continue
		}
		ns, counters, ends = append(ns, f.key.ns), append(counters, f.key.counter), append(ends, f.end)
	}
	return ns, counters, ends
}

// fenceBatch raises the fences of reqs in one statement, retrying
// transient failures (a broken connection, a lock timeout) within the
// Timeout: raising a fence again is a no-op.
func (s *Store) fenceBatch(reqs []*fenceRequest) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	ns, counters, ends := fenceArgs(reqs)
	var err error
	for attempt := 0; attempt < maxGroupAttempts && ctx.Err() == nil; attempt++ {
		if _, err = s.pool.Exec(ctx, s.sql(fencesSQL), ns, counters, ends); err == nil || codeOf(err) != abacus.Unavailable {
			break
		}
	}
	if err == nil {
		s.fences.Add(int64(len(reqs)))
		s.fenceCommits.Add(1)
		return nil
	}
	if ctx.Err() != nil {
		return timeoutError("fence", s.opts.Timeout)
	}
	return classify(context.Background(), err, "fence")
}
