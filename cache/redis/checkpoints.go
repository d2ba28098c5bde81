package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/abacus-dev/abacus"
	goredis "github.com/redis/go-redis/v9"
)

// A checkpoint is one string value, so its count and time are always read and
// written together [ROLL-3]: "<sec> <nsec> <hi> <lo>" in decimal, where
// sec/nsec are Through as Unix seconds and nanoseconds, and hi/lo the 128-bit
// count. Through comes first so the put script can read it without parsing the
// rest; decimal keeps the value readable in redis-cli.

// putScript stores ARGV[3] at KEYS[1] with a TTL of ARGV[4] milliseconds (0: no
// expiry) unless the stored checkpoint is newer than (ARGV[1], ARGV[2]) =
// (sec, nsec). It compares seconds and nanoseconds as separate Lua numbers,
// exact as doubles for any time within ±285 million years of 1970, where
// Unix nanoseconds as one number would not be. A stored value it cannot parse
// is replaced. It replies 1 if it stored the checkpoint, 0 if it kept a newer.
var putScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
	local s, n = string.match(cur, '^(%-?%d+) (%d+) ')
	s, n = tonumber(s), tonumber(n)
	local ns, nn = tonumber(ARGV[1]), tonumber(ARGV[2])
	if s and n and (s > ns or (s == ns and n > nn)) then
		return 0
	end
end
if ARGV[4] ~= '0' then
	redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
	redis.call('SET', KEYS[1], ARGV[3])
end
return 1
`)

// GetCheckpoint implements abacus.RollupCache. Through is returned in UTC.
func (c *Cache) GetCheckpoint(ctx context.Context, key string) (abacus.Checkpoint, bool, error) {
	s, err := c.client.Get(ctx, c.checkpointKey(key)).Result()
	if errors.Is(err, goredis.Nil) {
		return abacus.Checkpoint{}, false, nil
	}
	if err != nil {
		return abacus.Checkpoint{}, false, wrap(ctx, err, "get checkpoint")
	}
	cp, err := decodeCheckpoint(s)
	if err != nil {
		return abacus.Checkpoint{}, false, err
	}
	return cp, true, nil
}

// PutCheckpoint implements abacus.RollupCache: a compare-and-set on Through in
// one script, so a slow rollup finishing late cannot replace a newer cached
// checkpoint, even one put by another node. A put that is not stored leaves
// the TTL of the newer checkpoint as it was.
func (c *Cache) PutCheckpoint(ctx context.Context, key string, cp abacus.Checkpoint, ttl time.Duration) error {
	err := putScript.Run(ctx, c.client, []string{c.checkpointKey(key)},
		strconv.FormatInt(cp.Through.Unix(), 10), strconv.Itoa(cp.Through.Nanosecond()),
		encodeCheckpoint(cp), strconv.FormatInt(millis(ttl), 10)).Err()
	return wrap(ctx, err, "put checkpoint")
}

func encodeCheckpoint(cp abacus.Checkpoint) string {
	return fmt.Sprintf("%d %d %d %d", cp.Through.Unix(), cp.Through.Nanosecond(), cp.Count.Hi, cp.Count.Lo)
}

func decodeCheckpoint(s string) (abacus.Checkpoint, error) {
	f := strings.Fields(s)
	bad := func(err error) (abacus.Checkpoint, error) {
		return abacus.Checkpoint{}, abacus.Errorf(abacus.Internal, "redis: malformed cached checkpoint %q: %w", s, err)
	}
	if len(f) != 4 {
		return bad(fmt.Errorf("%d fields, want 4", len(f)))
	}
	sec, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return bad(err)
	}
	nsec, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return bad(err)
	}
	if nsec < 0 || nsec >= int64(time.Second) {
		return bad(fmt.Errorf("nanoseconds %d out of range", nsec))
	}
	hi, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return bad(err)
	}
	lo, err := strconv.ParseUint(f[3], 10, 64)
	if err != nil {
		return bad(err)
	}
	return abacus.Checkpoint{Count: abacus.Sum{Hi: hi, Lo: lo}, Through: time.Unix(sec, nsec).UTC()}, nil
}
