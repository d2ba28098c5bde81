package node

import (
	"errors"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"time"
)

// withDefaults returns c with every field left zero that has a default set
// to it, so that the rest of the node reads one value and never repeats a
// default.
func (c Config) withDefaults() Config {
	if c.NamespaceRefresh == 0 {
		c.NamespaceRefresh = 2 * time.Second
	}
	if c.RetentionInterval == 0 {
		c.RetentionInterval = time.Minute
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.RollupConcurrency == 0 {
		c.RollupConcurrency = 8 * runtime.GOMAXPROCS(0)
		if c.Postgres != "" {
			c.RollupConcurrency = 256
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every problem of c at once, in one error, or nil. Zero
// fields take their defaults and are never a problem, except the data
// directory, which the embedded store needs.
func (c Config) Validate() error {
	var probs []string
	add := func(p string) { probs = append(probs, p) }
	if c.Postgres == "" && c.DataDir == "" {
		add("a data directory (DataDir, --data-dir) is required without PostgreSQL (--postgres)")
	}
	if c.RedisCluster && len(c.Redis) == 0 {
		add("RedisCluster (--redis-cluster) needs Redis addresses (--redis)")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"NamespaceRefresh (--namespace-refresh)", c.NamespaceRefresh},
		{"RetentionInterval (--retention-interval)", c.RetentionInterval},
		{"DrainTimeout (--drain-timeout)", c.DrainTimeout},
		{"ShutdownDelay (--shutdown-delay)", c.ShutdownDelay},
	} {
		if d.v < 0 {
			add(d.name + " must not be negative, got " + d.v.String())
		}
	}
	if c.RollupConcurrency < 0 {
		add("RollupConcurrency (--rollup-concurrency) must not be negative")
	}
	if math.IsNaN(c.RollupPause) || math.IsInf(c.RollupPause, 0) {
		add("RollupPause (--rollup-pause) must be a number")
	}
	if len(probs) == 0 {
		return nil
	}
	return errors.New("invalid node configuration: " + strings.Join(probs, "; "))
}
