package client

import (
	"bytes"
	"testing"

	"github.com/google/uuid"
)

// TestTokens checks that the client's tokens are version 4 UUIDs, distinct,
// and that a run that has used up its count starts another with a new
// prefix.
func TestTokens(t *testing.T) {
	var tk tokens
	seen := map[string]bool{}
	for range 1000 {
		s := tk.next()
		u, err := uuid.Parse(s)
		if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 || u.String() != s {
			t.Fatalf("token %q: %v, version %v, variant %v", s, err, u.Version(), u.Variant())
		}
		if seen[s] {
			t.Fatalf("token %q made twice", s)
		}
		seen[s] = true
	}
	var other tokens
	if a, b := tk.nextUUID(), other.nextUUID(); bytes.Equal(a[:10], b[:10]) {
		t.Errorf("two clients share the prefix of %v and %v", a, b)
	}
	first := tk.run.Load()
	first.n.Store(1<<tokenSeqBits - 2)
	last := tk.nextUUID()
	next := tk.nextUUID()
	if tk.run.Load() == first || bytes.Equal(last[:10], next[:10]) || seen[next.String()] {
		t.Errorf("after the last token of a run (%v) came %v, not a new run", last, next)
	}
	if u, _ := uuid.Parse(next.String()); u.Version() != 4 {
		t.Errorf("a new run's token %v is not a version 4 UUID", next)
	}
}
