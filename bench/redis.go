package bench

import (
	"context"
	"errors"
	"strconv"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// redisTarget drives Redis with go-redis: INCRBY key 1 per add and GET per
// read; a batch is one pipeline of INCRBY, or one MGET.
type redisTarget struct {
	label  string
	addr   string
	prefix string
	c      *redis.Client
	cpu    CPUSource
}

func newRedisTarget(label string, o Options) *redisTarget {
	return &redisTarget{label: label, addr: o.Redis, prefix: o.KeyPrefix, cpu: o.procCPU(PIDRedis)}
}

func (t *redisTarget) ServerCPU() CPUSource { return t.cpu }

func (t *redisTarget) Name() string { return t.label }

func (t *redisTarget) Setup(ctx context.Context, w Workload) error {
	t.c = redis.NewClient(&redis.Options{
		Addr: t.addr,
		// One connection per caller, as a tuned application would have:
		// go-redis's default (10 per CPU) would make callers queue for a
		// connection and understate Redis.
		PoolSize:     w.Callers,
		MinIdleConns: w.Callers,
		ReadTimeout:  w.Timeout,
		WriteTimeout: w.Timeout,
		PoolTimeout:  w.Timeout,
		// No retries: errors should show, and a retried INCRBY may count twice.
		MaxRetries:            -1,
		ContextTimeoutEnabled: true,
		// Redis Enterprise / Redis 8 maintenance notifications: probing
		// for them costs a round trip per new connection.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	return t.c.Ping(ctx).Err()
}

func (t *redisTarget) key(i int) string { return t.prefix + "c" + strconv.Itoa(i) }

func (t *redisTarget) Do(ctx context.Context, _ int, op Op) error {
	if len(op.Counters) == 1 {
		k := t.key(op.Counters[0])
		if op.Read {
			if err := t.c.Get(ctx, k).Err(); err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			return nil
		}
		return t.c.IncrBy(ctx, k, 1).Err()
	}
	if op.Read {
		keys := make([]string, len(op.Counters))
		for i, c := range op.Counters {
			keys[i] = t.key(c)
		}
		return t.c.MGet(ctx, keys...).Err()
	}
	pipe := t.c.Pipeline()
	for _, c := range op.Counters {
		pipe.IncrBy(ctx, t.key(c), 1)
	}
	_, err := pipe.Exec(ctx)
	return err
}

func (t *redisTarget) Close() error {
	if t.c == nil {
		return nil
	}
	return t.c.Close()
}
