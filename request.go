package abacus

import (
	"context"
	"time"
	"unicode"
	"unicode/utf8"
)

// CounterService is what abacus does with counters [API-2], in the terms of
// this package: the counter service (package counter) implements it over
// the stores, and the Go client (package client) over the network, so that
// code such as the CLI and the load generator works with either.
//
// Errors are *Error values with the codes of the README's error table.
type CounterService interface {
	// Add adds r.Delta to a counter and returns the token it is stored
	// under (the request's, or one assigned when it has none).
	Add(ctx context.Context, r AddRequest) (Token, error)
	// AddAndGet adds r.Delta and returns a count: what that count includes
	// depends on the namespace's counter type (see the README).
	AddAndGet(ctx context.Context, r AddRequest) (int64, Token, error)
	// Get returns a counter's count, 0 for a counter never written.
	Get(ctx context.Context, r Ref) (int64, error)
	// Clear resets a counter to zero at the token's time.
	Clear(ctx context.Context, r Ref, tok Token) (Token, error)
	// AddBatch applies many adds, all or none; one bad item fails the call,
	// its index in the message.
	AddBatch(ctx context.Context, rs []AddRequest) ([]Token, error)
	// GetBatch reads many counters, in order.
	GetBatch(ctx context.Context, rs []Ref) ([]int64, error)
}

// Token is an idempotency token [API-3]. A zero Token means the request
// carried none.
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

// Limits on names and batches, chosen so that keys stay small in every store
// and a counter name can still carry a URL or a composite id.
const (
	// MaxNamespaceLen is the longest namespace name, in bytes.
	MaxNamespaceLen = 128
	// MaxCounterLen is the longest counter name, in bytes.
	MaxCounterLen = 1024
	// MaxTokenLen is the longest idempotency token, in bytes.
	MaxTokenLen = 256
	// MaxBatch is the most items one AddCounts or GetCounts call may carry.
	MaxBatch = 10000
)

// NamespaceChar reports whether c may appear in a namespace name: names
// appear in keys, metric labels and URLs, hence the small alphabet
// A-Z a-z 0-9 _ . -.
func NamespaceChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

// CheckNamespaceName returns an InvalidArgument error saying what is wrong
// with a namespace name (empty, longer than MaxNamespaceLen, or a character
// outside NamespaceChar's alphabet), or nil.
func CheckNamespaceName(name string) error {
	if name == "" {
		return Errorf(InvalidArgument, "namespace is required")
	}
	if len(name) > MaxNamespaceLen {
		return Errorf(InvalidArgument, "namespace is %d bytes long; the limit is %d", len(name), MaxNamespaceLen)
	}
	for i := 0; i < len(name); i++ {
		if !NamespaceChar(name[i]) {
			return Errorf(InvalidArgument, "namespace %q has character %q at byte %d; allowed are A-Z a-z 0-9 _ . -", name, rune(name[i]), i)
		}
	}
	return nil
}

// checkText validates a counter name or token: non-empty, valid UTF-8, no
// control characters (they break logs and terminals, and 0x00 separates key
// parts in the stores), at most max bytes.
func checkText(field, s string, max int) error {
	if s == "" {
		return Errorf(InvalidArgument, "%s is required", field)
	}
	if len(s) > max {
		return Errorf(InvalidArgument, "%s is %d bytes long; the limit is %d", field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return Errorf(InvalidArgument, "%s is not valid UTF-8", field)
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return Errorf(InvalidArgument, "%s has control character %U at byte %d", field, r, i)
		}
	}
	return nil
}

// Check returns an InvalidArgument error if r does not name a counter
// validly, or nil.
func (r Ref) Check() error {
	if err := CheckNamespaceName(r.Namespace); err != nil {
		return err
	}
	return checkText("counter_name", r.Counter, MaxCounterLen)
}

// Check returns an InvalidArgument error if t is not a valid token, or nil.
// The zero Token is valid: the server assigns one.
func (t Token) Check() error {
	if t == (Token{}) {
		return nil
	}
	if err := checkText("idempotency_token.token", t.ID, MaxTokenLen); err != nil {
		return err
	}
	if t.Time.IsZero() {
		return Errorf(InvalidArgument, "idempotency_token.generation_time is required when a token is given")
	}
	return nil
}

// Check returns an InvalidArgument error if r is not a valid add, or nil.
func (r AddRequest) Check() error {
	if err := (Ref{r.Namespace, r.Counter}).Check(); err != nil {
		return err
	}
	if r.Delta == 0 {
		return Errorf(InvalidArgument, "delta must not be zero: a zero add changes nothing (use GetCount to read)")
	}
	return r.Token.Check()
}
