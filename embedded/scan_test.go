package embedded_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/embedded"
)

// Scans of sub-ranges of one large time bucket, whose event buckets each
// hold events before, inside and after the range (which the scan skips by
// seeking), return exactly the events of the range in order, forwards,
// backwards and through ScanMany.
func TestScanRangesWithinABucket(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir(), embedded.Options{Logger: testLogger(t)})
	cfg := nsConfig("wide")
	cfg.Partition = abacus.TimePartition{BucketsPerID: 4, BucketWidth: time.Hour, SliceWidth: 24 * time.Hour}
	ns, err := s.CreateNamespace(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var all []abacus.Event
	var ws []abacus.Write
	for k := range 400 {
		// Times repeat (ids break the tie), a few are clears.
		e := ev("c", time.Duration(rng.IntN(300))*time.Second, fmt.Sprintf("id%03d", k), int64(k+1))
		if k%37 == 3 {
			e.Delta, e.Clear = 0, true
		}
		all = append(all, e)
		ws = append(ws, abacus.Write{NS: ns, Event: e})
	}
	// Another counter around it, so that seeks cross into other keys.
	for k := range 50 {
		ws = append(ws, abacus.Write{NS: ns, Event: ev("b", time.Duration(k)*time.Second, fmt.Sprintf("b%d", k), 1)})
		ws = append(ws, abacus.Write{NS: ns, Event: ev("d", time.Duration(k)*time.Second, fmt.Sprintf("d%d", k), 1)})
	}
	if err := s.Append(ctx, ws); err != nil {
		t.Fatal(err)
	}
	slices.SortStableFunc(all, abacus.CompareEvents)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	ranges := []abacus.Range{
		{},
		{From: at(0), To: at(300)},
		{From: at(150)},
		{To: at(150)},
		{From: at(100), To: at(101)},
		{From: at(299), To: at(400)},
		{From: at(-50), To: at(1)},
		{From: at(120), To: at(120)},
		{From: at(400), To: at(500)},
	}
	for range 20 {
		a, b := rng.IntN(320)-10, rng.IntN(320)-10
		ranges = append(ranges, abacus.Range{From: at(min(a, b)), To: at(max(a, b))})
	}
	for _, r := range ranges {
		var want []abacus.Event
		for _, e := range all {
			if (r.From.IsZero() || !e.Time.Before(r.From)) && (r.To.IsZero() || e.Time.Before(r.To)) {
				want = append(want, e)
			}
		}
		for _, reverse := range []bool{false, true} {
			rr := r
			rr.Reverse = reverse
			var got []abacus.Event
			if err := s.Scan(ctx, ns, "c", rr, func(e abacus.Event) error {
				got = append(got, e)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			w := want
			if reverse {
				w = slices.Clone(want)
				slices.Reverse(w)
			}
			if fmt.Sprint(got) != fmt.Sprint(w) {
				t.Errorf("Scan %v reverse=%v: %d events, want %d\ngot  %v\nwant %v", r, reverse, len(got), len(w), got, w)
			}
		}
		var many []abacus.Event
		if err := s.ScanMany(ctx, ns, []abacus.ScanRequest{{Counter: "c", Range: r}}, func(_ int, e abacus.Event) error {
			many = append(many, e)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(many) != fmt.Sprint(want) {
			t.Errorf("ScanMany %v: %d events, want %d", r, len(many), len(want))
		}
	}
}
