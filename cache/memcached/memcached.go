// Package memcached is the memcached cache of abacus: BEST_EFFORT counts and
// the shared rollup cache over one or more memcached servers, shared by every
// node that names the same servers [DEP-2] (EVCACHE namespaces use it too). It
// is built on github.com/bradfitz/gomemcache; with several servers, each key
// lives on one of them, chosen by a hash of the key.
//
// Limits, from memcached's protocol:
//   - Counts never go below 0. memcached counters are unsigned 64-bit and decr
//     stops at 0, so a BEST_EFFORT count on memcached that would go negative
//     is 0 instead, and the part below 0 is forgotten: 3, then -10, then +2
//     gives 2, not -5.
//   - The int64 maximum holds as elsewhere, with a small race: incr wraps at
//     2^64, so an Add whose result passes math.MaxInt64 (or wraps) is undone
//     with a second command and returns OutOfRange. Between the two, other
//     clients can see the out-of-range value (a Get or a decrement that meets
//     it returns OutOfRange), and adds of different sizes that pass the
//     maximum at the same moment can wrap each other back into range, so one
//     of them is not detected and the count is left wrong. Only counts near
//     2^63 are exposed.
//   - Keys are at most 250 bytes of printable ASCII or UTF-8 without spaces.
//     A key that does not fit, with the prefix, is stored under the prefix and
//     the SHA-256 of the key in hex, so any key works and distinct keys stay
//     apart; such items cannot be found with the key itself in memcached tools.
//   - TTLs count whole seconds: a TTL is rounded up to the next second, and
//     since memcached's clock ticks once a second an entry may expire up to a
//     second early. A TTL <= 0 means no expiry. TTLs over 30 days are sent as
//     an absolute Unix time (memcached reads any larger number so), computed
//     with this machine's clock, and cannot pass 2038-01-19 (int32).
//   - incr and decr do not refresh an item's expiration, so Add touches the
//     count after it, setting the TTL it is given. That is a second round trip,
//     and a failed touch is not reported: the add happened, and an error would
//     invite a retry that counts twice.
//   - gomemcache takes no context: a call that has started is bounded by
//     Options.Timeout, not by the caller's deadline.
package memcached

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"net"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/bradfitz/gomemcache/memcache"
)

// Defaults for Options.
const (
	// DefaultPrefix is the key prefix when Options.Prefix is empty.
	DefaultPrefix = "abacus:"
	// DefaultTimeout is the dial, read and write timeout: short, so that an
	// outage fails requests within about a second.
	DefaultTimeout = 500 * time.Millisecond
	// DefaultMaxIdleConns is the number of idle connections kept per server.
	DefaultMaxIdleConns = 64
)

// maxKeyLen is memcached's key limit; maxPrefixLen leaves room for a hashed key.
const (
	maxKeyLen    = 250
	maxPrefixLen = 150
)

// Options configures a Cache. The zero value is usable.
type Options struct {
	// Prefix is put before every key, so that several deployments (or tests)
	// can share servers. Default DefaultPrefix. At most 150 bytes, with no
	// spaces or control characters. Under the prefix, counts are kept at
	// "n:"+key and checkpoints at "c:"+key (hashed keys: "n#" and "c#").
	Prefix string
	// Timeout bounds connecting, and each read and write. Default
	// DefaultTimeout: short, so that an outage fails requests quickly with
	// Unavailable.
	Timeout time.Duration
	// MaxIdleConns is the number of idle connections kept per server; it
	// should exceed the peak of concurrent requests, or connections are
	// dialed and dropped under load. Default DefaultMaxIdleConns.
	MaxIdleConns int
}

// Cache implements abacus.Cache and abacus.RollupCache over memcached. It is
// safe for concurrent use.
type Cache struct {
	client *memcache.Client
	prefix string
}

var (
	_ abacus.Cache       = (*Cache)(nil)
	_ abacus.RollupCache = (*Cache)(nil)
)

// New returns a cache over the memcached servers at addrs (host:port, or a
// Unix socket path). It resolves the addresses but does not connect: a node
// starts while memcached is down, and calls fail with Unavailable until it is
// back. InvalidArgument for no address, a malformed one or a bad prefix.
func New(addrs []string, opts Options) (*Cache, error) {
	if len(addrs) == 0 {
		return nil, abacus.Errorf(abacus.InvalidArgument, "memcached: no server address")
	}
	p := opts.Prefix
	if p == "" {
		p = DefaultPrefix
	}
	if len(p) > maxPrefixLen || !legalKey(p) {
		return nil, abacus.Errorf(abacus.InvalidArgument, "memcached: key prefix %q must be at most %d bytes without spaces or control characters", p, maxPrefixLen)
	}
	var servers memcache.ServerList
	if err := servers.SetServers(addrs...); err != nil {
		var addrErr *net.AddrError
		if errors.As(err, &addrErr) {
			return nil, abacus.Wrap(abacus.InvalidArgument, err, "memcached: bad server address")
		}
		return nil, abacus.Wrap(abacus.Unavailable, err, "memcached: resolving server addresses")
	}
	client := memcache.NewFromSelector(&servers)
	client.Timeout = opts.Timeout
	if client.Timeout <= 0 {
		client.Timeout = DefaultTimeout
	}
	client.MaxIdleConns = opts.MaxIdleConns
	if client.MaxIdleConns <= 0 {
		client.MaxIdleConns = DefaultMaxIdleConns
	}
	return &Cache{client: client, prefix: p}, nil
}

// Ping checks that every server answers; Unavailable if one does not. It is
// meant for readiness checks.
func (c *Cache) Ping(ctx context.Context) error {
	if err := ctxErr(ctx, "ping"); err != nil {
		return err
	}
	return c.wrap(ctx, c.client.Ping(), "ping")
}

// Close closes the idle connections.
func (c *Cache) Close() error { return c.client.Close() }

func (c *Cache) countKey(key string) string      { return c.itemKey("n", key) }
func (c *Cache) checkpointKey(key string) string { return c.itemKey("c", key) }

// itemKey maps a key to a memcached key: as it is when memcached accepts it,
// or else the SHA-256 of the key. ":" and "#" after kind keep the two forms
// apart, so a plain key never equals a hashed one.
func (c *Cache) itemKey(kind, key string) string {
	k := c.prefix + kind + ":" + key
	if len(k) <= maxKeyLen && legalKey(k) {
		return k
	}
	h := sha256.Sum256([]byte(key))
	return c.prefix + kind + "#" + hex.EncodeToString(h[:])
}

// legalKey reports whether memcached's text protocol accepts key's bytes:
// no spaces or control characters (bytes of UTF-8 sequences are fine).
func legalKey(key string) bool {
	for i := range len(key) {
		if key[i] <= ' ' || key[i] == 0x7f {
			return false
		}
	}
	return true
}

// maxRelative is the longest expiration memcached reads as relative seconds;
// it reads larger values as Unix times.
const maxRelative = 30 * 24 * 60 * 60

// expiration returns memcached's expiration for ttl at now: whole seconds,
// rounded up so that a short TTL never becomes 0 (no expiry).
func expiration(ttl time.Duration, now time.Time) int32 {
	if ttl <= 0 {
		return 0
	}
	secs := int64(ttl / time.Second)
	if ttl%time.Second != 0 {
		secs++
	}
	if secs <= maxRelative {
		return int32(secs)
	}
	return int32(min(now.Unix()+secs, math.MaxInt32))
}
