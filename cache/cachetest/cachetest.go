// Package cachetest is the conformance suite for abacus cache backends: the
// in-process cache (memory), Redis and memcached run the same tests against the
// contracts documented on abacus.Cache and abacus.RollupCache, from their own
// _test.go:
//
//	func TestConformance(t *testing.T) {
//		addr := cachetest.ServerAddr(t, "ABACUS_TEST_REDIS")
//		cachetest.Run(t, func(t *testing.T) cachetest.Cache {
//			c, err := redis.Dial([]string{addr}, false, redis.Options{Prefix: cachetest.KeyPrefix(t)})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { c.Close() })
//			return c
//		}, cachetest.Capabilities{})
//	}
//
// A backend states the limits it documents in Capabilities, and the suite then
// checks the documented behaviour instead of the general one (for example that
// memcached clamps a count at 0 rather than going negative). Expiry is tested
// with TTLs of a few seconds and generous polling, never tight timings, so the
// suite holds on slow machines and under the race detector.
package cachetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// Cache is a cache backend under test: one value serving both cache interfaces,
// as every abacus cache backend does.
type Cache interface {
	abacus.Cache
	abacus.RollupCache
}

// Capabilities declares the documented limits of a backend. The zero value is
// a backend without limits: signed 64-bit counts, shared by every client.
type Capabilities struct {
	// NoNegative declares that counts cannot go below 0: an add that would
	// take a count below 0 leaves it at 0 and returns 0 (memcached, whose
	// counters are unsigned and whose decr stops at 0).
	NoNegative bool
	// Local declares an in-process cache: two caches returned by newCache
	// never share counts, so the test that two clients see each other's
	// counts is skipped.
	Local bool
}

// Run runs the suite, one subtest per contract. newCache is called at least
// once per subtest; every call within one subtest must return a cache over the
// same data (for a server backend: a new client with the same key prefix, see
// KeyPrefix), empty at the start of the subtest. It should release what it
// opens with t.Cleanup.
func Run(t *testing.T, newCache func(t *testing.T) Cache, caps Capabilities) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c Cache, caps Capabilities)
	}{
		{"AddGetDelete", testAddGetDelete},
		{"AbsentIsZero", testAbsent},
		{"NegativeDeltas", testNegative},
		{"Int64Limits", testInt64Limits},
		{"ConcurrentAdds", testConcurrentAdds},
		{"TTL", testTTL},
		{"CheckpointRoundTrip", testCheckpointRoundTrip},
		{"CheckpointKeepsNewer", testCheckpointKeepsNewer},
		{"CheckpointConcurrent", testCheckpointConcurrent},
		{"Keys", testKeys},
		{"CountsAndCheckpointsApart", testApart},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newCache(t), caps) })
	}
	t.Run("SharedByClients", func(t *testing.T) {
		if caps.Local {
			t.Skip("an in-process cache is not shared by clients (Capabilities.Local)")
		}
		testShared(t, newCache(t), newCache(t))
	})
}

// prefixes holds the key prefix of each running test (testing.TB → string),
// so that every call of KeyPrefix within one test returns the same prefix.
var prefixes sync.Map

// KeyPrefix returns a random key prefix for a server backend under test: the
// same for every call with one test, different for every other test, every
// run and every repetition (go test -count), so tests never see each other's
// keys and need no cleanup of the server. It is short and holds only
// characters every backend accepts in a key.
func KeyPrefix(t testing.TB) string {
	if p, ok := prefixes.Load(t); ok {
		return p.(string)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	p, loaded := prefixes.LoadOrStore(t, "abacustest:"+hex.EncodeToString(b)+":")
	if !loaded {
		t.Cleanup(func() { prefixes.Delete(t) })
	}
	return p.(string)
}

// RequireServersEnv names the environment variable that turns a missing test
// server from a skip into a failure: CI sets it to 1, so the backend suites can
// never silently not run.
const RequireServersEnv = "ABACUS_REQUIRE_SERVERS"

// ServerAddr returns the value of the environment variable env, which names a
// test server (for example ABACUS_TEST_REDIS=127.0.0.1:6379). If it is unset
// the test is skipped, or fails when ABACUS_REQUIRE_SERVERS=1.
func ServerAddr(t testing.TB, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v != "" {
		return v
	}
	if os.Getenv(RequireServersEnv) == "1" {
		t.Fatalf("%s is not set, and %s=1 requires every backend suite to run", env, RequireServersEnv)
	}
	t.Skipf("%s is not set: set it to the test server's address to run this test (%s=1 makes this a failure)", env, RequireServersEnv)
	return ""
}

// ttlLong is the TTL of entries that must not expire during a test.
const ttlLong = time.Hour

func add(t *testing.T, c Cache, key string, delta int64) int64 {
	t.Helper()
	n, err := c.Add(context.Background(), key, delta, ttlLong)
	if err != nil {
		t.Fatalf("Add(%q, %d): %v", short(key), delta, err)
	}
	return n
}

func get(t *testing.T, c Cache, key string) int64 {
	t.Helper()
	n, err := c.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", short(key), err)
	}
	return n
}

func wantCount(t *testing.T, c Cache, key string, want int64) {
	t.Helper()
	if got := get(t, c, key); got != want {
		t.Fatalf("Get(%q) = %d, want %d", short(key), got, want)
	}
}

// short shortens long keys in messages.
func short(key string) string {
	if len(key) > 40 {
		return key[:20] + "…" + key[len(key)-10:]
	}
	return key
}
