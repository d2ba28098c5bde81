package redis

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/cache/cachetest"
	goredis "github.com/redis/go-redis/v9"
)

// Test servers, named by environment variables; see cachetest.ServerAddr.
const (
	envRedis   = "ABACUS_TEST_REDIS"         // host:port of a single server
	envCluster = "ABACUS_TEST_REDIS_CLUSTER" // comma-separated host:ports of a cluster
)

func dialer(addrs []string, cluster bool) func(t *testing.T) cachetest.Cache {
	return func(t *testing.T) cachetest.Cache { return dialTest(t, addrs, cluster) }
}

// dialTest returns a cache under the test's own key prefix.
func dialTest(t *testing.T, addrs []string, cluster bool) *Cache {
	t.Helper()
	c, err := Dial(addrs, cluster, Options{Prefix: cachetest.KeyPrefix(t)})
	if err != nil {
		t.Fatalf("Dial(%v, %v): %v", addrs, cluster, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	addr := cachetest.ServerAddr(t, envRedis)
	cachetest.Run(t, dialer([]string{addr}, false), cachetest.Capabilities{})
}

func TestConformanceCluster(t *testing.T) {
	addrs := strings.Split(cachetest.ServerAddr(t, envCluster), ",")
	cachetest.Run(t, dialer(addrs, true), cachetest.Capabilities{})
}

// TestClusterSpreadsKeys checks that the cluster client really routes: the
// keys of one cache land on several masters.
func TestClusterSpreadsKeys(t *testing.T) {
	addrs := strings.Split(cachetest.ServerAddr(t, envCluster), ",")
	c := dialTest(t, addrs, true)
	ctx := context.Background()
	for i := range 64 {
		if _, err := c.Add(ctx, fmt.Sprint("spread", i), 1, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	var holding atomic.Int32 // ForEachMaster calls in parallel
	err := c.client.(*goredis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
		keys, _, err := m.Scan(ctx, 0, c.prefix+"*", 1000).Result()
		if len(keys) > 0 {
			holding.Add(1)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := holding.Load(); n < 2 {
		t.Fatalf("64 keys are on %d master(s); a cluster of several should spread them", n)
	}
}

// TestForeignValues checks that a count key holding something that is not an
// int64 fails as Internal: the script must not mistake it for an overflow.
func TestForeignValues(t *testing.T) {
	addr := cachetest.ServerAddr(t, envRedis)
	c := dialTest(t, []string{addr}, false)
	ctx := context.Background()
	if err := c.client.Set(ctx, c.countKey("text"), "abc", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.client.HSet(ctx, c.countKey("hash"), "f", 1).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.client.Set(ctx, c.checkpointKey("cp"), "garbage", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"text", "hash"} {
		if _, err := c.Add(ctx, key, 1, time.Minute); abacus.ErrorCode(err) != abacus.Internal {
			t.Errorf("Add to %s value: %v, want Internal", key, err)
		}
	}
	if _, err := c.Get(ctx, "text"); abacus.ErrorCode(err) != abacus.Internal {
		t.Errorf("Get of a text value: %v, want Internal", err)
	}
	if _, _, err := c.GetCheckpoint(ctx, "cp"); abacus.ErrorCode(err) != abacus.Internal {
		t.Errorf("GetCheckpoint of garbage: %v, want Internal", err)
	}
	// A put replaces a value it cannot read.
	cp := abacus.Checkpoint{Count: abacus.SumOf(1), Through: time.Unix(1, 0)}
	if err := c.PutCheckpoint(ctx, "cp", cp, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := c.GetCheckpoint(ctx, "cp"); err != nil || !ok || got.Count != cp.Count || !got.Through.Equal(cp.Through) {
		t.Fatalf("after a put over garbage: %+v %v %v", got, ok, err)
	}
}

// TestOverflowKeepsTTL checks that a refused add leaves the TTL alone, as it
// leaves the count.
func TestOverflowKeepsTTL(t *testing.T) {
	addr := cachetest.ServerAddr(t, envRedis)
	c := dialTest(t, []string{addr}, false)
	ctx := context.Background()
	if _, err := c.Add(ctx, "k", math.MaxInt64, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Add(ctx, "k", 1, time.Second); abacus.ErrorCode(err) != abacus.OutOfRange {
		t.Fatalf("Add past MaxInt64: %v, want OutOfRange", err)
	}
	if ttl := c.client.PTTL(ctx, c.countKey("k")).Val(); ttl < time.Minute {
		t.Fatalf("TTL after a refused add = %s, want about 1h", ttl)
	}
}

func TestDialArguments(t *testing.T) {
	for _, tt := range []struct {
		addrs   []string
		cluster bool
	}{{nil, false}, {nil, true}, {[]string{"a:1", "b:2"}, false}} {
		if _, err := Dial(tt.addrs, tt.cluster, Options{}); abacus.ErrorCode(err) != abacus.InvalidArgument {
			t.Errorf("Dial(%v, %v): %v, want InvalidArgument", tt.addrs, tt.cluster, err)
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
	for _, s := range []string{"", "1 2 3", "1 2 3 4 5", "x 0 0 0", "0 1000000000 0 0", "0 -1 0 0", "0 0 0 -1"} {
		if _, err := decodeCheckpoint(s); abacus.ErrorCode(err) != abacus.Internal {
			t.Errorf("decode(%q): %v, want Internal", s, err)
		}
	}
}

func TestMillis(t *testing.T) {
	for ttl, want := range map[time.Duration]int64{
		-time.Second: 0, 0: 0, time.Nanosecond: 1, time.Millisecond: 1,
		time.Millisecond + 1: 2, 2 * time.Second: 2000,
	} {
		if got := millis(ttl); got != want {
			t.Errorf("millis(%s) = %d, want %d", ttl, got, want)
		}
	}
}
