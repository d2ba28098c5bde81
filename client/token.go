package client

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// randChunk is how many random bytes one read from crypto/rand fetches: 256
// tokens' worth, so that the cost of the read is shared.
const randChunk = 16 * 256

// randBuf is a stretch of crypto/rand output that is handed out 16 bytes at a
// time and never twice.
type randBuf struct {
	b   [randChunk]byte
	off int
}

// tokens makes idempotency tokens: random (version 4) UUIDs. Every write
// needs one, so they come from per-P buffers of crypto/rand output (a
// sync.Pool) instead of one crypto/rand read or one shared lock per token.
type tokens struct{ pool sync.Pool }

func (t *tokens) next() string {
	rb, _ := t.pool.Get().(*randBuf)
	if rb == nil {
		rb = &randBuf{off: randChunk}
	}
	if rb.off == randChunk {
		rand.Read(rb.b[:]) // never fails (it crashes the program instead)
		rb.off = 0
	}
	var u uuid.UUID
	copy(u[:], rb.b[rb.off:rb.off+16])
	rb.off += 16
	t.pool.Put(rb)
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u.String()
}

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
