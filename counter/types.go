// Package counter is the counter service: the three counter types, idempotency tokens and the accept window, over the store interfaces of package abacus.
package counter

import "time"

// Token is an idempotency token. A zero ID means the request carried none.
type Token struct {
	// ID is the client-chosen token (an event id, a UUID); it may carry provenance.
	ID string
	// Time is the token's generation_time: the event time, which must fall in
	// the namespace's accept window. A zero Time with a non-empty ID is refused.
	Time time.Time
}

// AddRequest adds Delta to one counter.
type AddRequest struct {
	// Namespace and Counter name the counter.
	Namespace, Counter string
	// Delta is added to the count; it may be negative but not zero.
	Delta int64
	// Token makes the write retry-safe; the zero Token asks the service to assign one.
	Token Token
}

// Ref names one counter.
type Ref struct {
	// Namespace and Counter name the counter.
	Namespace, Counter string
}
