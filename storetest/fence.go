package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// testFence: after Fence(end) or a checkpoint through end, new events before
// end are refused and nothing of their batch is written; events at or after
// end, and retries of events stored before the fence, are accepted; other
// counters are not affected.
func testFence(t *testing.T, b Backend) {
	ctx := context.Background()
	ns := newNamespace(t, b, "fence")
	mustAppend(t, b, ns, add("c", time.Second, "early", 1))
	if err := b.Fence(ctx, ns, "c", at(30*time.Second)); err != nil {
		t.Fatalf("Fence: %v", err)
	}
	err := b.Append(ctx, writes(ns, add("c", 40*time.Second, "ok-in-batch", 1), add("c", 29*time.Second, "late", 1)))
	checkCode(t, "append behind the fence", err, abacus.FailedPrecondition)
	if got := scanAll(t, b, ns, "c", abacus.Range{}); len(got) != 1 {
		t.Fatalf("a refused batch wrote %d events, want only the early one", len(got)-1)
	}
	mustAppend(t, b, ns, add("c", time.Second, "early", 1)) // retry of a stored event
	mustAppend(t, b, ns, add("c", 30*time.Second, "at-fence", 1))
	mustAppend(t, b, ns, add("other", 29*time.Second, "other-counter", 1))
	// A fence never moves back.
	if err := b.Fence(ctx, ns, "c", at(10*time.Second)); err != nil {
		t.Fatalf("Fence: %v", err)
	}
	checkCode(t, "append behind the higher fence", b.Append(ctx, writes(ns, add("c", 20*time.Second, "late2", 1))), abacus.FailedPrecondition)
	// A stored checkpoint fences too.
	advance(t, b, ns, "d", abacus.Checkpoint{Count: abacus.SumOf(0), Through: at(50 * time.Second)})
	checkCode(t, "append behind the checkpoint", b.Append(ctx, writes(ns, add("d", 49*time.Second, "late3", 1))), abacus.FailedPrecondition)
	mustAppend(t, b, ns, add("d", 50*time.Second, "after-cp", 1))
}

// testFenceConcurrent races appends around a fence: every append that was
// acknowledged with a time before the fence must be visible to a scan taken
// after Fence returned — the property rollups rely on.
func testFenceConcurrent(t *testing.T, b Backend) {
	ctx := context.Background()
	ns := newNamespace(t, b, "fencerace")
	const writers, per = 8, 40
	fence := at(time.Minute)
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		wg    sync.WaitGroup
	)
	start := make(chan struct{})
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range per {
				// Times spread around the fence.
				off := time.Duration(40+(i*7+g*3)%40) * time.Second
				id := fmt.Sprintf("g%d-%d", g, i)
				err := b.Append(ctx, writes(ns, add("hot", off, id, 1)))
				switch abacus.ErrorCode(err) {
				case -1:
					mu.Lock()
					acked[id] = at(off).Before(fence)
					mu.Unlock()
				case abacus.FailedPrecondition:
					if !at(off).Before(fence) {
						t.Errorf("append at %v refused though not behind the fence: %v", off, err)
					}
				default:
					t.Errorf("append: %v", err)
				}
			}
		}()
	}
	close(start)
	time.Sleep(time.Millisecond)
	if err := b.Fence(ctx, ns, "hot", fence); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range scanAll(t, b, ns, "hot", abacus.Range{To: fence}) {
		seen[e.ID] = true
	}
	wg.Wait()
	// Every event acknowledged before the fence must have been in the scan;
	// every event in the scan must have been acknowledged.
	mu.Lock()
	defer mu.Unlock()
	for id, before := range acked {
		if before && !seen[id] {
			t.Errorf("acknowledged event %s before the fence was not visible to a scan after Fence", id)
		}
	}
	for id := range seen {
		if !acked[id] {
			t.Errorf("scan saw %s, which was never acknowledged", id)
		}
	}
}
