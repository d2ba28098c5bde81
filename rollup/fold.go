package rollup

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/abacus-dev/abacus"
)

// maxScanParallelism is how many pieces of one counter's time range are read
// at once. It adapts to cardinality [ROLL-4]: a LOW-cardinality namespace has
// few counters, each possibly hot with many events per window, so one rollup
// or accurate read gains from reading several time buckets at once; a HIGH
// namespace rolls up many small counters concurrently already, and splitting
// each would only add overhead.
func maxScanParallelism(ns *abacus.Namespace) int {
	if ns.Cardinality == abacus.High {
		return 1
	}
	return 4
}

var errStop = errors.New("stop scan")

// Fold returns the partial fold of one counter's events in es over [from,
// to): what rollups aggregate into checkpoints and what ACCURATE reads add to
// them. A zero from means "from the first event". When the range spans several time
// buckets it is cut at bucket boundaries into pieces that are read
// concurrently and combined in order (abacus.Partial.Then is associative).
// A store that keeps per-counter sums (abacus.ManyFolder) answers from them
// when it can.
func Fold(ctx context.Context, es abacus.EventStore, ns *abacus.Namespace, counter string, from, to time.Time) (abacus.Partial, error) {
	if mf, ok := es.(abacus.ManyFolder); ok && !from.IsZero() {
		res, err := mf.FoldMany(ctx, ns, []abacus.FoldRequest{{Counter: counter, From: from, Mid: to, To: to}})
		if err == nil && res[0].OK {
			return res[0].Before, nil
		}
	}
	if from.IsZero() {
		err := es.Scan(ctx, ns, counter, abacus.Range{To: to}, func(e abacus.Event) error {
			from = e.Time
			return errStop
		})
		if err != nil && !errors.Is(err, errStop) {
			return abacus.Partial{}, err
		}
		if from.IsZero() {
			return abacus.Partial{}, nil
		}
	}
	width := ns.Partition.BucketWidth.Nanoseconds()
	first, last := from.UnixNano()/width, (to.UnixNano()-1)/width
	pieces := min(int64(maxScanParallelism(ns)), last-first+1)
	if pieces <= 1 {
		return scanPiece(ctx, es, ns, counter, from, to)
	}
	per := (last - first + pieces) / pieces // buckets per piece, rounded up
	bounds := []time.Time{from}
	for b := first + per; b <= last; b += per {
		bounds = append(bounds, time.Unix(0, b*width))
	}
	bounds = append(bounds, to)
	parts := make([]abacus.Partial, len(bounds)-1)
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[i], errs[i] = scanPiece(ctx, es, ns, counter, bounds[i], bounds[i+1])
		}()
	}
	wg.Wait()
	var p abacus.Partial
	for i := range parts {
		if errs[i] != nil {
			return abacus.Partial{}, errs[i]
		}
		p = p.Then(parts[i])
	}
	return p, nil
}

func scanPiece(ctx context.Context, es abacus.EventStore, ns *abacus.Namespace, counter string, from, to time.Time) (abacus.Partial, error) {
	var p abacus.Partial
	err := es.Scan(ctx, ns, counter, abacus.Range{From: from, To: to}, func(e abacus.Event) error {
		p = p.Apply(e)
		return nil
	})
	return p, err
}

// oneScan reports whether a rollup window [from, mid) is read in one scan
// (from the first event, or over at most two time buckets) rather than in
// fold's concurrent pieces.
func oneScan(ns *abacus.Namespace, from, mid time.Time) bool {
	width := ns.Partition.BucketWidth.Nanoseconds()
	return from.IsZero() || (mid.UnixNano()-1)/width-from.UnixNano()/width <= 1
}

// foldSplit returns the partial folds of one counter's events in [from, mid)
// and [mid, to) from one scan, for a rollup that needs both the immutable
// window and the provisional tail after it. A zero from means "from the
// first event". A range over several time buckets is folded as two folds,
// so a long backlog is still read in concurrent pieces.
//
// nBefore is the number of events in [from, mid), or -1 if it was not counted.
func foldSplit(ctx context.Context, es abacus.EventStore, ns *abacus.Namespace, counter string, from, mid, to time.Time) (before, after abacus.Partial, nBefore int, err error) {
	if !oneScan(ns, from, mid) {
		if before, err = Fold(ctx, es, ns, counter, from, mid); err != nil {
			return before, after, -1, err
		}
		after, err = Fold(ctx, es, ns, counter, mid, to)
		return before, after, -1, err
	}
	err = es.Scan(ctx, ns, counter, abacus.Range{From: from, To: to}, func(e abacus.Event) error {
		if e.Time.Before(mid) {
			before = before.Apply(e)
			nBefore++
		} else {
			after = after.Apply(e)
		}
		return nil
	})
	return before, after, nBefore, err
}
