package cachetest

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

func wantCheckpoint(t *testing.T, c Cache, key string, want abacus.Checkpoint) {
	t.Helper()
	got, ok, err := c.GetCheckpoint(context.Background(), key)
	if err != nil {
		t.Fatalf("GetCheckpoint(%q): %v", short(key), err)
	}
	if !ok {
		t.Fatalf("GetCheckpoint(%q) found nothing, want %s", short(key), fmtCP(want))
	}
	if !sameCP(got, want) {
		t.Fatalf("GetCheckpoint(%q) = %s, want %s", short(key), fmtCP(got), fmtCP(want))
	}
}

// sameCP compares checkpoints by instant: a backend need not keep the
// time.Location of Through.
func sameCP(a, b abacus.Checkpoint) bool { return a.Count == b.Count && a.Through.Equal(b.Through) }

func fmtCP(cp abacus.Checkpoint) string {
	return fmt.Sprintf("{hi %d lo %d through %s}", cp.Count.Hi, cp.Count.Lo, cp.Through.UTC().Format(time.RFC3339Nano))
}

func mustPut(t *testing.T, c Cache, key string, cp abacus.Checkpoint) {
	t.Helper()
	if err := c.PutCheckpoint(context.Background(), key, cp, ttlLong); err != nil {
		t.Fatalf("PutCheckpoint(%q, %s): %v", short(key), fmtCP(cp), err)
	}
}

// base is a checkpoint time with nanoseconds, so that a backend that rounds
// Through to a coarser unit fails.
var base = time.Date(2024, 10, 5, 14, 48, 0, 123456789, time.UTC)

func testCheckpointRoundTrip(t *testing.T, c Cache, _ Capabilities) {
	tests := []struct {
		name string
		cp   abacus.Checkpoint
	}{
		{"small", abacus.Checkpoint{Count: abacus.SumOf(42), Through: base}},
		{"negative", abacus.Checkpoint{Count: abacus.SumOf(-42), Through: base}},
		{"beyond int64", abacus.Checkpoint{Count: abacus.SumOf(math.MaxInt64).Add(math.MaxInt64).Add(5), Through: base}},
		{"below int64", abacus.Checkpoint{Count: abacus.SumOf(math.MinInt64).Add(math.MinInt64), Through: base}},
		{"extreme 128-bit", abacus.Checkpoint{Count: abacus.Sum{Hi: math.MinInt64, Lo: math.MaxUint64}, Through: base}},
		{"one nanosecond", abacus.Checkpoint{Count: abacus.SumOf(1), Through: time.Unix(0, 1)}},
		{"before 1970", abacus.Checkpoint{Count: abacus.SumOf(7), Through: time.Date(1969, 7, 20, 20, 17, 40, 999999999, time.UTC)}},
		{"after 2262", abacus.Checkpoint{Count: abacus.SumOf(7), Through: time.Date(2500, 1, 1, 0, 0, 0, 1, time.UTC)}},
		{"other location", abacus.Checkpoint{Count: abacus.SumOf(7), Through: base.In(time.FixedZone("X", -7*3600))}},
		{"zero", abacus.Checkpoint{}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("cp%d", i)
			mustPut(t, c, key, tt.cp)
			wantCheckpoint(t, c, key, tt.cp)
		})
	}
}

// testCheckpointKeepsNewer checks that a put never replaces a newer cached
// checkpoint, to the nanosecond, and that a put at the same time replaces it
// (it is not newer).
func testCheckpointKeepsNewer(t *testing.T, c Cache, _ Capabilities) {
	at := func(n int64, d time.Duration) abacus.Checkpoint {
		return abacus.Checkpoint{Count: abacus.SumOf(n), Through: base.Add(d)}
	}
	tests := []struct {
		name string
		puts []abacus.Checkpoint
		want abacus.Checkpoint
	}{
		{"older after newer", []abacus.Checkpoint{at(2, time.Second), at(1, 0)}, at(2, time.Second)},
		{"newer after older", []abacus.Checkpoint{at(1, 0), at(2, time.Second)}, at(2, time.Second)},
		{"one nanosecond newer", []abacus.Checkpoint{at(1, 0), at(2, time.Nanosecond)}, at(2, time.Nanosecond)},
		{"one nanosecond older", []abacus.Checkpoint{at(2, time.Nanosecond), at(1, 0)}, at(2, time.Nanosecond)},
		// A later second beats larger nanoseconds: the order is by instant.
		{"seconds before nanoseconds", []abacus.Checkpoint{at(2, time.Second), at(1, 999999999)}, at(2, time.Second)},
		{"same time replaces", []abacus.Checkpoint{at(1, 0), at(2, 0)}, at(2, 0)},
		{"newer after many older", []abacus.Checkpoint{at(5, 5), at(3, 3), at(4, 4), at(1, 1)}, at(5, 5)},
		{"newer beyond int64", []abacus.Checkpoint{at(1, 0), {Count: abacus.Sum{Hi: 3, Lo: 9}, Through: base.Add(time.Hour)}},
			abacus.Checkpoint{Count: abacus.Sum{Hi: 3, Lo: 9}, Through: base.Add(time.Hour)}},
		{"older than zero", []abacus.Checkpoint{{}, at(1, 0)}, at(1, 0)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("newer%d", i)
			for _, cp := range tt.puts {
				mustPut(t, c, key, cp)
			}
			wantCheckpoint(t, c, key, tt.want)
		})
	}
}

// testCheckpointConcurrent checks that concurrent puts end with the newest,
// and that readers meanwhile never see Through move back or a count that does
// not belong with its Through [ROLL-3].
func testCheckpointConcurrent(t *testing.T, c Cache, _ Capabilities) {
	const workers, perWorker = 8, 40
	ctx := context.Background()
	// Checkpoint i is i nanoseconds after base, with a count derived from i,
	// so a reader can tell a torn value.
	cpOf := func(i int) abacus.Checkpoint {
		return abacus.Checkpoint{Count: abacus.Sum{Hi: int64(i), Lo: uint64(i) * 7}, Through: base.Add(time.Duration(i))}
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		writing = make(chan struct{})
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Worker w puts w+1, w+1+workers, ...; the interleaving decides
			// which put comes last, never the newest.
			for j := range perWorker {
				i := 1 + w + j*workers
				if w%2 == 1 {
					i = 1 + w + (perWorker-1-j)*workers // newest first
				}
				if err := c.PutCheckpoint(ctx, "hot", cpOf(i), ttlLong); err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		var last time.Time
		for {
			select {
			case <-writing:
				return
			default:
			}
			cp, ok, err := c.GetCheckpoint(ctx, "hot")
			if err != nil {
				fail(err)
				return
			}
			if !ok {
				continue
			}
			i := int(cp.Through.Sub(base))
			if !sameCP(cp, cpOf(i)) {
				fail(fmt.Errorf("read a checkpoint whose count does not belong with its time: %s", fmtCP(cp)))
				return
			}
			if cp.Through.Before(last) {
				fail(fmt.Errorf("checkpoint moved back from %s to %s", last.Format(time.RFC3339Nano), cp.Through.Format(time.RFC3339Nano)))
				return
			}
			last = cp.Through
		}
	}()
	wg.Wait()
	close(writing)
	readers.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d errors, first: %v", len(errs), errs[0])
	}
	wantCheckpoint(t, c, "hot", cpOf(workers*perWorker))
}
