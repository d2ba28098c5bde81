package redis

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/abacus-dev/abacus"
	goredis "github.com/redis/go-redis/v9"
)

// addScript adds ARGV[1] to the count at KEYS[1] and sets its TTL to ARGV[2]
// milliseconds (0: no expiry), atomically. It replies with the new count as a
// string: Lua numbers are doubles, so returning INCRBY's integer through Lua
// would round counts beyond 2^53.
//
// INCRBY refuses to overflow int64 and leaves the count as it was. Its error
// for that is a generic ERR, so when INCRBY fails on a count that is an integer
// (the only other failure, a non-integer value, cannot be one), the script
// replies with its own error code instead.
var addScript = goredis.NewScript(`
local r = redis.pcall('INCRBY', KEYS[1], ARGV[1])
if type(r) == 'table' and r.err then
	local cur = redis.call('GET', KEYS[1])
	if cur and string.match(cur, '^%-?%d+$') then
		return redis.error_reply('` + errOutOfRange + ` adding ' .. ARGV[1] .. ' to ' .. cur .. ' would overflow int64')
	end
	return r
end
if ARGV[2] ~= '0' then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
	redis.call('PERSIST', KEYS[1])
end
return redis.call('GET', KEYS[1])
`)

// Add implements abacus.Cache. OutOfRange, with the count and its TTL
// unchanged, if the result would not fit in int64.
func (c *Cache) Add(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	s, err := addScript.Run(ctx, c.client, []string{c.countKey(key)},
		strconv.FormatInt(delta, 10), strconv.FormatInt(millis(ttl), 10)).Text()
	if err != nil {
		return 0, wrap(ctx, err, "add")
	}
	return parseCount(s)
}

// Get implements abacus.Cache.
func (c *Cache) Get(ctx context.Context, key string) (int64, error) {
	s, err := c.client.Get(ctx, c.countKey(key)).Result()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap(ctx, err, "get")
	}
	return parseCount(s)
}

// Delete implements abacus.Cache.
func (c *Cache) Delete(ctx context.Context, key string) error {
	return wrap(ctx, c.client.Del(ctx, c.countKey(key)).Err(), "delete")
}

func parseCount(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, abacus.Errorf(abacus.Internal, "redis: the count is not an int64: %w", err)
	}
	return n, nil
}
