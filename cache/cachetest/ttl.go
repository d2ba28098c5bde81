package cachetest

import (
	"context"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// Expiry is checked with short TTLs and polling: an entry must be gone some
// time after its TTL (never exactly at it: memcached counts whole seconds) and
// must still be there well before it. No assertion depends on a tight timing.
const (
	ttlShort     = 2 * time.Second
	expiryWait   = 20 * time.Second        // how long an expired entry may linger
	expirySlack  = 1500 * time.Millisecond // past a TTL, for second-granularity clocks
	pollInterval = 100 * time.Millisecond
)

// testTTL checks that counts and checkpoints expire, that each add sets the
// count's TTL to the one it is given (longer or shorter), and that a count
// that expired starts again from 0.
func testTTL(t *testing.T, c Cache, _ Capabilities) {
	ctx := context.Background()
	mustAdd := func(key string, delta int64, ttl time.Duration) {
		t.Helper()
		if _, err := c.Add(ctx, key, delta, ttl); err != nil {
			t.Fatalf("Add(%q, %d, %s): %v", key, delta, ttl, err)
		}
	}
	mustPut := func(key string, cp abacus.Checkpoint, ttl time.Duration) {
		t.Helper()
		if err := c.PutCheckpoint(ctx, key, cp, ttl); err != nil {
			t.Fatalf("PutCheckpoint(%q, %s): %v", key, ttl, err)
		}
	}
	cp1 := abacus.Checkpoint{Count: abacus.SumOf(1), Through: time.Unix(1_700_000_000, 0)}
	cp2 := abacus.Checkpoint{Count: abacus.SumOf(2), Through: cp1.Through.Add(time.Second)}

	mustAdd("expires", 1, ttlShort)
	mustAdd("shortened", 1, ttlLong)
	mustAdd("shortened", 1, ttlShort)
	start := time.Now()
	mustAdd("extended", 1, ttlShort)
	mustAdd("extended", 1, ttlLong)
	mustPut("cp-expires", cp1, ttlShort)
	mustPut("cp-extended", cp1, ttlShort)
	mustPut("cp-extended", cp2, ttlLong)
	wantCount(t, c, "expires", 1)
	wantCheckpoint(t, c, "cp-expires", cp1)

	deadline := time.Now().Add(expiryWait)
	for {
		expired := get(t, c, "expires") == 0 && get(t, c, "shortened") == 0
		if expired {
			_, ok, err := c.GetCheckpoint(ctx, "cp-expires")
			if err != nil {
				t.Fatalf("GetCheckpoint: %v", err)
			}
			expired = !ok
		}
		if expired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("entries with a TTL of %s are still there after %s", ttlShort, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(pollInterval)
	}
	if d := time.Until(start.Add(ttlShort + expirySlack)); d > 0 {
		time.Sleep(d)
	}
	wantCount(t, c, "extended", 2)
	wantCheckpoint(t, c, "cp-extended", cp2)
	if got := add(t, c, "expires", 5); got != 5 {
		t.Fatalf("Add(5) to an expired count returned %d, want 5", got)
	}
}
