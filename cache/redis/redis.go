// Package redis is the Redis cache of abacus: BEST_EFFORT counts and the
// shared rollup cache, over one Redis server or a Redis Cluster, shared by every
// node that names the same servers [DEP-2]. It is built on
// github.com/redis/go-redis/v9.
//
// Every operation touches a single key, and the read-modify-write ones (Add,
// PutCheckpoint) are Lua scripts on that key, so they are atomic and route to
// one node of a Redis Cluster.
//
// Limits:
//   - Counts are Redis integers: signed 64-bit. Redis refuses an INCRBY that
//     would overflow; Add then returns OutOfRange and the count is unchanged.
//   - TTLs have millisecond resolution (PEXPIRE); a TTL under 1 ms is 1 ms,
//     and a TTL <= 0 means the entry does not expire. Each Add sets the count's
//     TTL to the one it is given.
//   - Add is not idempotent [TYPE-1]: a Redis Cluster client retries a command
//     that timed out, so an add whose reply was lost may count twice. The
//     single-server client from Dial does not retry.
package redis

import (
	"context"
	"time"

	"github.com/abacus-dev/abacus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultPrefix is the key prefix when Options.Prefix is empty.
const DefaultPrefix = "abacus:"

// Default timeouts of the clients Dial builds. They are short so that an
// outage fails requests within about a second (Unavailable) instead of
// holding them.
const (
	// DefaultDialTimeout bounds connecting to a server.
	DefaultDialTimeout = time.Second
	// DefaultTimeout bounds each read, write and wait for a pooled connection.
	DefaultTimeout = 500 * time.Millisecond
)

// Options configures a Cache. The zero value is usable.
type Options struct {
	// Prefix is put before every key, so that several deployments (or tests)
	// can share a server. Default DefaultPrefix. Under the prefix, counts are
	// kept at "n:"+key and checkpoints at "c:"+key.
	Prefix string
	// DialTimeout bounds connecting to a server. Used by Dial only; default
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// Timeout bounds each read and each write on a connection, and the wait
	// for a free pooled connection. Used by Dial only; default DefaultTimeout.
	Timeout time.Duration
}

// Cache implements abacus.Cache and abacus.RollupCache over Redis. It is safe
// for concurrent use.
type Cache struct {
	client goredis.UniversalClient
	prefix string
}

var (
	_ abacus.Cache       = (*Cache)(nil)
	_ abacus.RollupCache = (*Cache)(nil)
)

// New returns a cache over client: a *goredis.Client for one server or a
// *goredis.ClusterClient for a Redis Cluster. The cache owns the client from
// then on: Close closes it.
func New(client goredis.UniversalClient, opts Options) *Cache {
	p := opts.Prefix
	if p == "" {
		p = DefaultPrefix
	}
	return &Cache{client: client, prefix: p}
}

// Dial returns a cache over the Redis server at addrs[0], or over the Redis
// Cluster that addrs (some of its nodes) belong to if cluster is set. It does
// not contact the servers: connections are made on first use, so a node starts
// while Redis is down, and its cache calls fail with Unavailable until Redis is
// back. InvalidArgument if addrs is empty, or names several servers without
// cluster.
func Dial(addrs []string, cluster bool, opts Options) (*Cache, error) {
	if len(addrs) == 0 {
		return nil, abacus.Errorf(abacus.InvalidArgument, "redis: no server address")
	}
	if !cluster && len(addrs) > 1 {
		return nil, abacus.Errorf(abacus.InvalidArgument, "redis: %d addresses given for a single server; name one, or set cluster mode for a Redis Cluster", len(addrs))
	}
	dial, rw := opts.DialTimeout, opts.Timeout
	if dial <= 0 {
		dial = DefaultDialTimeout
	}
	if rw <= 0 {
		rw = DefaultTimeout
	}
	// Maintenance notifications are a Redis Enterprise / Redis 8 feature;
	// probing older servers for them costs a round trip per connection.
	noMaint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if cluster {
		return New(goredis.NewClusterClient(&goredis.ClusterOptions{
			Addrs:                    addrs,
			DialTimeout:              dial,
			DialerRetries:            1,
			ReadTimeout:              rw,
			WriteTimeout:             rw,
			PoolTimeout:              rw,
			ContextTimeoutEnabled:    true,
			MaintNotificationsConfig: noMaint,
		}), opts), nil
	}
	return New(goredis.NewClient(&goredis.Options{
		Addr:        addrs[0],
		DialTimeout: dial,
		// One dial attempt per command: a refused connection fails at once.
		DialerRetries: 1,
		ReadTimeout:   rw,
		WriteTimeout:  rw,
		PoolTimeout:   rw,
		// No retries: a retried Add whose first reply was lost counts twice.
		MaxRetries:               -1,
		ContextTimeoutEnabled:    true,
		MaintNotificationsConfig: noMaint,
	}), opts), nil
}

// Ping checks that every server answers (each master of a cluster);
// Unavailable if one does not. It is meant for readiness checks.
func (c *Cache) Ping(ctx context.Context) error {
	var err error
	if cc, ok := c.client.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error { return m.Ping(ctx).Err() })
	} else {
		err = c.client.Ping(ctx).Err()
	}
	return wrap(ctx, err, "ping")
}

// Close closes the client and its connections.
func (c *Cache) Close() error { return c.client.Close() }

// countKey and checkpointKey keep a key's count and checkpoint apart: the
// counter service uses the same key for both.
func (c *Cache) countKey(key string) string      { return c.prefix + "n:" + key }
func (c *Cache) checkpointKey(key string) string { return c.prefix + "c:" + key }

// millis returns ttl in whole milliseconds, rounded up so that a short TTL
// never becomes "no expiry"; 0 (no expiry) for ttl <= 0.
func millis(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}
