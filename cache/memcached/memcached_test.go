package memcached

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/cache/cachetest"
	"github.com/bradfitz/gomemcache/memcache"
)

// envMemcached names the test server (host:port); see cachetest.ServerAddr.
const envMemcached = "ABACUS_TEST_MEMCACHED"

// newTest returns a cache under the test's own key prefix.
func newTest(t *testing.T, addr string) *Cache {
	t.Helper()
	c, err := New([]string{addr}, Options{Prefix: cachetest.KeyPrefix(t)})
	if err != nil {
		t.Fatalf("New(%s): %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	addr := cachetest.ServerAddr(t, envMemcached)
	cachetest.Run(t, func(t *testing.T) cachetest.Cache { return newTest(t, addr) },
		cachetest.Capabilities{NoNegative: true})
}

// TestConcurrentOverflow checks the undo of adds past the maximum when many
// are in flight at once. With equal deltas of MaxInt64 every interleaving
// leaves a value that is either above MaxInt64 or wrapped below the delta, so
// each add is refused and the count ends where it started. (Unequal deltas can
// wrap each other back into range: the race the package doc states.)
func TestConcurrentOverflow(t *testing.T) {
	c := newTest(t, cachetest.ServerAddr(t, envMemcached))
	ctx := context.Background()
	if _, err := c.Add(ctx, "k", math.MaxInt64, time.Minute); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				if n, err := c.Add(ctx, "k", math.MaxInt64, time.Minute); abacus.ErrorCode(err) != abacus.OutOfRange {
					t.Errorf("Add(MaxInt64) = %d, %v; want OutOfRange", n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n, err := c.Get(ctx, "k"); err != nil || n != math.MaxInt64 {
		t.Fatalf("count after refused adds = %d, %v; want MaxInt64", n, err)
	}
}

// TestLongTTL checks TTLs over memcached's 30-day limit for relative times:
// sent as relative seconds, memcached would read them as a time in 1970 and
// expire the entry at once.
func TestLongTTL(t *testing.T) {
	c := newTest(t, cachetest.ServerAddr(t, envMemcached))
	ctx := context.Background()
	for _, ttl := range []time.Duration{30 * 24 * time.Hour, 30*24*time.Hour + time.Second, 365 * 24 * time.Hour} {
		key := ttl.String()
		if _, err := c.Add(ctx, key, 1, ttl); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Add(ctx, key, 1, ttl); err != nil { // touched with the long TTL too
			t.Fatal(err)
		}
		if n, err := c.Get(ctx, key); err != nil || n != 2 {
			t.Errorf("count with TTL %s = %d, %v; want 2", ttl, n, err)
		}
		cp := abacus.Checkpoint{Count: abacus.SumOf(1), Through: time.Unix(1, 0)}
		if err := c.PutCheckpoint(ctx, key, cp, ttl); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := c.GetCheckpoint(ctx, key); err != nil || !ok {
			t.Errorf("checkpoint with TTL %s: found %v, %v", ttl, ok, err)
		}
	}
}

// TestForeignValues checks items this package did not write: a count that is
// not a number fails as Internal, and a checkpoint it cannot read fails as
// Internal and is replaced by the next put.
func TestForeignValues(t *testing.T) {
	c := newTest(t, cachetest.ServerAddr(t, envMemcached))
	ctx := context.Background()
	for k, v := range map[string]string{c.countKey("text"): "abc", c.checkpointKey("cp"): "garbage"} {
		if err := c.client.Set(&memcache.Item{Key: k, Value: []byte(v), Expiration: 60}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Add(ctx, "text", 1, time.Minute); abacus.ErrorCode(err) != abacus.Internal {
		t.Errorf("Add to a text value: %v, want Internal", err)
	}
	if _, err := c.Get(ctx, "text"); abacus.ErrorCode(err) != abacus.Internal {
		t.Errorf("Get of a text value: %v, want Internal", err)
	}
	if _, _, err := c.GetCheckpoint(ctx, "cp"); abacus.ErrorCode(err) != abacus.Internal {
		t.Errorf("GetCheckpoint of garbage: %v, want Internal", err)
	}
	cp := abacus.Checkpoint{Count: abacus.SumOf(1), Through: time.Unix(1, 0)}
	if err := c.PutCheckpoint(ctx, "cp", cp, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := c.GetCheckpoint(ctx, "cp"); err != nil || !ok || got.Count != cp.Count || !got.Through.Equal(cp.Through) {
		t.Fatalf("after a put over garbage: %+v %v %v", got, ok, err)
	}
}

// TestSpacePadding checks a count that incr rewrote shorter in place: memcached
// pads it with spaces.
func TestSpacePadding(t *testing.T) {
	c := newTest(t, cachetest.ServerAddr(t, envMemcached))
	ctx := context.Background()
	for _, d := range []int64{1000, -995} {
		if _, err := c.Add(ctx, "k", d, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := c.Get(ctx, "k"); err != nil || n != 5 {
		t.Fatalf("Get = %d, %v; want 5", n, err)
	}
}

func TestItemKeys(t *testing.T) {
	c, err := New([]string{"127.0.0.1:1"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 300)
	tests := []struct {
		key, want string
	}{
		{"plain", "abacus:n:plain"},
		{"ünïcode", "abacus:n:ünïcode"},
		{"with space", ""}, // hashed: checked below
		{long, ""},
		{long + "y", ""},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := c.countKey(tt.key)
		if tt.want != "" && got != tt.want {
			t.Errorf("countKey(%q) = %q, want %q", tt.key, got, tt.want)
		}
		if len(got) > maxKeyLen || !legalKey(got) {
			t.Errorf("countKey(%q) = %q is not a legal memcached key", tt.key, got)
		}
		if prev, ok := seen[got]; ok {
			t.Errorf("keys %q and %q map to the same item", prev, tt.key)
		}
		seen[got] = tt.key
	}
	if got := c.countKey("with space"); !strings.HasPrefix(got, "abacus:n#") || len(got) != len("abacus:n#")+64 {
		t.Errorf("countKey of a key with a space = %q, want the prefix and a SHA-256", got)
	}
	if c.countKey("k") == c.checkpointKey("k") || c.countKey(long) == c.checkpointKey(long) {
		t.Error("a count and a checkpoint share an item")
	}
}

func TestNewArguments(t *testing.T) {
	for _, tt := range []struct {
		addrs  []string
		prefix string
	}{
		{nil, ""},
		{[]string{"no-port"}, ""},
		{[]string{"127.0.0.1:1"}, "has space"},
		{[]string{"127.0.0.1:1"}, strings.Repeat("p", maxPrefixLen+1)},
	} {
		if _, err := New(tt.addrs, Options{Prefix: tt.prefix}); abacus.ErrorCode(err) != abacus.InvalidArgument {
			t.Errorf("New(%v, prefix %q): %v, want InvalidArgument", tt.addrs, tt.prefix, err)
		}
	}
}

func TestExpiration(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		ttl  time.Duration
		want int32
	}{
		{-time.Second, 0},
		{0, 0},
		{time.Nanosecond, 1},
		{time.Second, 1},
		{time.Second + time.Millisecond, 2},
		{30 * 24 * time.Hour, maxRelative},
		{30*24*time.Hour + time.Second, 1_800_000_000 + maxRelative + 1},
		{100 * 365 * 24 * time.Hour, math.MaxInt32},
		{math.MaxInt64, math.MaxInt32},
	}
	for _, tt := range tests {
		if got := expiration(tt.ttl, now); got != tt.want {
			t.Errorf("expiration(%s) = %d, want %d", tt.ttl, got, tt.want)
		}
	}
}

func TestCheckpointEncoding(t *testing.T) {
	for _, cp := range []abacus.Checkpoint{
		{},
		{Count: abacus.Sum{Hi: math.MinInt64, Lo: math.MaxUint64}, Through: time.Unix(-1, 999999999)},
		{Count: abacus.Sum{Hi: 1, Lo: 2}, Through: time.Date(2500, 1, 1, 0, 0, 0, 1, time.UTC)},
	} {
		got, err := decodeCheckpoint(encodeCheckpoint(cp))
		if err != nil || got.Count != cp.Count || !got.Through.Equal(cp.Through) {
			t.Errorf("round trip of %+v = %+v, %v", cp, got, err)
		}
	}
	bad := encodeCheckpoint(abacus.Checkpoint{})
	copy(bad[len(bad)-4:], []byte{0xff, 0xff, 0xff, 0xff}) // nanoseconds out of range
	for _, b := range [][]byte{nil, []byte("garbage"), append([]byte{2}, make([]byte, checkpointLen-1)...), bad} {
		if _, err := decodeCheckpoint(b); abacus.ErrorCode(err) != abacus.Internal {
			t.Errorf("decode(%q): %v, want Internal", b, err)
		}
	}
}
