package cachetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// awkwardKeys are keys a backend must store as they are or map without
// collisions: memcached refuses spaces, control characters and keys over 250
// bytes, so its backend hashes them; keys that differ only in their last byte
// must stay apart.
var awkwardKeys = []string{
	"with space",
	"tab\tnew\nline",
	"nul\x00byte",
	"del\x7fbyte",
	"счётчик/зелёный",
	"🎉 emoji",
	"{hash}tag",
	strings.Repeat("a", 249),
	strings.Repeat("a", 250),
	strings.Repeat("a", 251),
	strings.Repeat("k", 1023) + "1",
	strings.Repeat("k", 1023) + "2",
	strings.Repeat("é", 512), // 1024 bytes of UTF-8
}

func testKeys(t *testing.T, c Cache, _ Capabilities) {
	ctx := context.Background()
	for i, key := range awkwardKeys {
		if got := add(t, c, key, int64(i+1)); got != int64(i+1) {
			t.Fatalf("Add(%q, %d) returned %d: the key shares a count with another", short(key), i+1, got)
		}
		mustPut(t, c, key, abacus.Checkpoint{Count: abacus.SumOf(int64(i)), Through: base.Add(time.Duration(i))})
	}
	for i, key := range awkwardKeys {
		wantCount(t, c, key, int64(i+1))
		wantCheckpoint(t, c, key, abacus.Checkpoint{Count: abacus.SumOf(int64(i)), Through: base.Add(time.Duration(i))})
	}
	for i, key := range awkwardKeys {
		if i%2 == 0 {
			if err := c.Delete(ctx, key); err != nil {
				t.Fatalf("Delete(%q): %v", short(key), err)
			}
		}
	}
	for i, key := range awkwardKeys {
		want := int64(i + 1)
		if i%2 == 0 {
			want = 0
		}
		wantCount(t, c, key, want)
	}
}

// testApart checks that a key's count and its checkpoint are kept apart: the
// counter service uses the same key for both.
func testApart(t *testing.T, c Cache, _ Capabilities) {
	cp := abacus.Checkpoint{Count: abacus.SumOf(9), Through: base}
	add(t, c, "k", 5)
	mustPut(t, c, "k", cp)
	wantCount(t, c, "k", 5)
	wantCheckpoint(t, c, "k", cp)
	if err := c.Delete(context.Background(), "k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantCount(t, c, "k", 0)
	wantCheckpoint(t, c, "k", cp)
}

// testShared checks that two clients of one server see each other's counts
// and checkpoints, as nodes sharing a cache do [DEP-2].
func testShared(t *testing.T, a, b Cache) {
	add(t, a, "shared", 5)
	if got := add(t, b, "shared", 3); got != 8 {
		t.Fatalf("the second client's Add returned %d, want 8", got)
	}
	wantCount(t, a, "shared", 8)
	cp := abacus.Checkpoint{Count: abacus.SumOf(8), Through: base}
	mustPut(t, b, "shared", cp)
	wantCheckpoint(t, a, "shared", cp)
	mustPut(t, a, "shared", abacus.Checkpoint{Count: abacus.SumOf(1), Through: base.Add(-time.Second)})
	wantCheckpoint(t, b, "shared", cp)
	if err := a.Delete(context.Background(), "shared"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantCount(t, b, "shared", 0)
}
