// Package testservers gives tests the servers of the shared backends.
//
// scripts/test.sh starts PostgreSQL, a Redis server, a 3-node Redis Cluster
// and memcached (scripts/servers.sh) and exports their addresses; Env reads
// them. StartPostgres starts a private PostgreSQL instance for one test, which
// the test may stop and start again (an outage). NewDatabase gives a test its
// own database on a shared server, so that packages testing at the same time
// stay apart.
//
// A missing server skips the test, unless ABACUS_REQUIRE_SERVERS=1 (set by
// scripts/test.sh, so in CI), where it fails it.
package testservers

import (
	"fmt"
	"os"
	"testing"
)

// The environment variables that scripts/servers.sh writes.
const (
	// PostgresEnv holds a URL of the shared PostgreSQL server:
	// postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable.
	PostgresEnv = "ABACUS_TEST_POSTGRES"
	// PGBinEnv holds PostgreSQL's bin dir (initdb, postgres, pg_ctl).
	PGBinEnv = "ABACUS_TEST_PG_BIN"
	// RedisEnv holds the HOST:PORT of a single Redis server (appendonly,
	// appendfsync everysec).
	RedisEnv = "ABACUS_TEST_REDIS"
	// RedisClusterEnv holds HOST:PORT,HOST:PORT,HOST:PORT: the three
	// masters of a Redis Cluster.
	RedisClusterEnv = "ABACUS_TEST_REDIS_CLUSTER"
	// MemcachedEnv holds the HOST:PORT of a memcached server.
	MemcachedEnv = "ABACUS_TEST_MEMCACHED"
	// RequireEnv, when "1", turns a missing server from a skip into a
	// failure.
	RequireEnv = "ABACUS_REQUIRE_SERVERS"
)

// Required reports whether a missing server must fail the test
// (ABACUS_REQUIRE_SERVERS=1) rather than skip it.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// Env returns the value of the environment variable name. If it is empty, the
// test is skipped, or fails if Required.
func Env(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		skipOrFail(t, "%s is not set", name)
	}
	return v
}

// skipOrFail skips the test, or fails it if Required, saying why.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("%s (and %s=1)", msg, RequireEnv)
	}
	t.Skipf("%s: skipped (./scripts/test.sh starts the test servers; see scripts/servers.sh)", msg)
}
