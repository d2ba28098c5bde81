package client

import (
	"crypto/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// tokenSeqBits is how many of a token's bits count the tokens of one run
// (see tokens); the other 74 (128, less these and the 6 bits that mark a
// version 4 UUID) are random.
const tokenSeqBits = 48

// tokens makes idempotency tokens: version 4 UUIDs, unique across clients,
// processes and restarts. Every write needs one, and a token is on the hot
// path of AddCount, so a token is not a fresh crypto/rand read: each run of
// tokens shares a prefix of 74 random bits, drawn from crypto/rand when the
// run starts, and its last 48 bits count the run's tokens. A client starts
// one run, and another after 2^48 tokens. Two clients collide only if their
// prefixes do, which takes about 2^37 of them; a token is a key, not a
// secret (the server also keys a write by its generation time).
//
// A token is made as a uuid.UUID, a value: the natural batch writes it onto
// the wire as hex without a string, which only errors and the callers that
// are given the token pay for.
type tokens struct {
	mu  sync.Mutex // serializes the start of a run
	run atomic.Pointer[tokenRun]
}

// tokenRun is a prefix and the count of the tokens made with it.
type tokenRun struct {
	prefix uuid.UUID // random but for version and variant; the count's bytes zero
	n      atomic.Uint64
}

// nextUUID returns a new token.
func (t *tokens) nextUUID() uuid.UUID {
	for {
		r := t.run.Load()
		if r != nil {
			if n := r.n.Add(1); n < 1<<tokenSeqBits {
				u := r.prefix
				for i := 15; i >= 16-tokenSeqBits/8; i-- {
					u[i] = byte(n)
					n >>= 8
				}
				return u
			}
		}
		t.start(r)
	}
}

// start begins a new run unless another goroutine already replaced old.
func (t *tokens) start(old *tokenRun) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.run.Load() != old {
		return
	}
	r := &tokenRun{}
	rand.Read(r.prefix[:16-tokenSeqBits/8]) // never fails (it crashes the program instead)
	r.prefix[6] = r.prefix[6]&0x0f | 0x40   // version 4
	r.prefix[8] = r.prefix[8]&0x3f | 0x80   // RFC 4122 variant
	t.run.Store(r)
}

// next returns a new token as a string.
func (t *tokens) next() string { return t.nextUUID().String() }

// idempotencyToken stamps a write with a new token and the current time. It
// is called once per write, before the first attempt: every retry and hedge
// carries the same key, which is what makes them safe on EVENTUAL and
// ACCURATE namespaces (a BEST_EFFORT namespace does not deduplicate keys).
func (c *Client) idempotencyToken() *abacusv1.IdempotencyToken {
	return &abacusv1.IdempotencyToken{Token: c.tokens.next(), GenerationTime: timestamppb.New(c.o.now())}
}

// keyOf returns the idempotency key of a request's token.
func keyOf(t *abacusv1.IdempotencyToken) (string, time.Time) {
	return t.GetToken(), t.GetGenerationTime().AsTime()
}
