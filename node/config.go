package node

import (
	"errors"
	"fmt"
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
	if c.GRPCAddr == "" {
		c.GRPCAddr = "127.0.0.1:0"
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:0"
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.DefaultTimeout == 0 {
		c.DefaultTimeout = 30 * time.Second
	}
	if c.WatchInterval == 0 {
		c.WatchInterval = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Defaults of the limits, named for the flags' help.
const (
	DefaultMaxRequestBytes = 4 << 20
	DefaultMaxConnections  = 10000
)

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
	if c.AuthTokens == "" && !c.Insecure {
		for _, l := range []struct{ flag, addr string }{{"--grpc-addr", c.GRPCAddr}, {"--http-addr", c.HTTPAddr}} {
			if l.addr != "" && exposed(l.addr) { // "": a free loopback port
				add(fmt.Sprintf("%s %s listens beyond loopback, where anyone who reaches it could read, write and delete every namespace: add --auth-tokens FILE to require access tokens (see the README's Security section), or --insecure to serve without them", l.flag, l.addr))
			}
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		add("TLS needs both a certificate (--tls-cert) and its key (--tls-key)")
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		add("--tls-client-ca needs TLS on: add --tls-cert and --tls-key")
	}
	if c.MaxRequestBytes < 0 {
		add("MaxRequestBytes (--max-request-bytes) must not be negative")
	}
	if c.ReadHeaderTimeout < 0 || c.WatchInterval < 0 {
		add("ReadHeaderTimeout (--read-header-timeout) and WatchInterval must not be negative")
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
