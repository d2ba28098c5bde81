package cachetest

import (
	"strings"
	"testing"
)

func TestKeyPrefix(t *testing.T) {
	p := KeyPrefix(t)
	if KeyPrefix(t) != p {
		t.Fatal("KeyPrefix differs between calls within one test")
	}
	if strings.ContainsAny(p, " \t\r\n") || len(p) > 64 {
		t.Fatalf("KeyPrefix = %q: want short, without spaces", p)
	}
	for range 2 {
		t.Run("sub", func(t *testing.T) {
			if q := KeyPrefix(t); q == p {
				t.Fatalf("a subtest has its parent's prefix %q", q)
			}
		})
	}
}

// recorder is a testing.TB that records a skip or failure instead of
// stopping the test.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Skipf(string, ...any)  { r.skipped = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

func TestServerAddr(t *testing.T) {
	const env = "ABACUS_TEST_CACHETEST_UNSET"
	tests := []struct {
		value, require string
		skip, fail     bool
	}{
		{value: "127.0.0.1:1"},
		{value: "127.0.0.1:1", require: "1"},
		{skip: true},
		{require: "1", fail: true},
		{require: "0", skip: true},
	}
	for _, tt := range tests {
		t.Setenv(env, tt.value)
		t.Setenv(RequireServersEnv, tt.require)
		r := &recorder{TB: t}
		got := ServerAddr(r, env)
		// A real Fatalf stops the test before a skip; the recorder does not.
		if r.failed != tt.fail || (!tt.fail && r.skipped != tt.skip) || (tt.value != "" && got != tt.value) {
			t.Errorf("value %q, require %q: got %q, skipped %v, failed %v", tt.value, tt.require, got, r.skipped, r.failed)
		}
	}
}
