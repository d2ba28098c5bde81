package client

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrClosed is returned by calls made after Close, and by calls still queued
// for a natural batch when Close ran (those were never sent).
var ErrClosed = errors.New("abacus client: closed")

// AmbiguousError is the error of a write (add or clear) that may have been
// applied although the call failed: an attempt was sent and its answer was
// lost (a broken connection, a timeout, a cancelled context, an UNAVAILABLE
// answer to a write the client may not retry), or a retry was refused after
// an earlier attempt whose outcome is unknown (for example
// FAILED_PRECONDITION because the retry came too late for the accept
// window).
//
// Token and Time are the write's idempotency key. On an EVENTUAL or
// ACCURATE namespace, sending the same write again with them, within the
// namespace's accept window, applies it at most once (through the generated
// client from Unary, say). A BEST_EFFORT namespace does not deduplicate
// keys: a write sent again there may be counted twice, which is why the
// client does not retry such writes itself (see WithBestEffortRetries). For
// an AddCounts call, item i carries the token Token + "/" + i, where i is
// the item's index in the slice the caller passed.
//
// Err is the last error; status.Code and errors.Is see through to it.
type AmbiguousError struct {
	Token string
	Time  time.Time
	Err   error
}

// Error describes the error and the idempotency key.
func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("write may have been applied (token %q, generation time %s): %v",
		e.Token, e.Time.Format(time.RFC3339Nano), e.Err)
}

// Unwrap returns the last error of the write.
func (e *AmbiguousError) Unwrap() error { return e.Err }

// retryable reports whether a failed attempt may be sent again. UNAVAILABLE
// is the server's (and grpc-go's, for a broken or refused connection) "retry
// with the same token"; DEADLINE_EXCEEDED is an attempt that ran out of
// time. The caller checks its own context separately: a deadline of the
// caller's is not retried.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// refused reports whether err proves that the server did not apply the
// write: these codes are decided before anything is stored. Any other error
// (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELED, INTERNAL, UNKNOWN, ...) may
// have come after the write was applied.
func refused(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition,
		codes.OutOfRange, codes.PermissionDenied, codes.Unauthenticated,
		codes.ResourceExhausted, codes.Unimplemented:
		return true
	}
	return false
}

// settled reports whether a write's error says that no attempt of it was
// applied: the server answers a write whose key (token and time) it holds
// with another payload ALREADY_EXISTS, and one it does not hold, outside the
// accept window, FAILED_PRECONDITION, whatever earlier attempts did.
func settled(err error) bool {
	switch status.Code(err) {
	case codes.AlreadyExists, codes.FailedPrecondition:
		return true
	}
	return false
}

// writeError turns the final error of a write into an *AmbiguousError when
// the write may have been applied: the last attempt's error does not rule it
// out, or an earlier attempt's did not (maybe).
func writeError(err error, maybe bool, token string, at time.Time) error {
	if err == nil || errors.Is(err, ErrClosed) {
		return err
	}
	if maybe || !refused(err) {
		return &AmbiguousError{Token: token, Time: at, Err: err}
	}
	return err
}
