package abacus

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an error for callers. Each code maps to exactly one gRPC /
// Connect code in the API layer; nothing classifies errors by message text.
type Code int

// Error codes. The zero value is Internal so that an unclassified error is
// never mistaken for a client mistake.
const (
	// Internal is a bug or an invariant violation.
	Internal Code = iota
	// InvalidArgument: the request is malformed (bad name, zero delta, missing field).
	InvalidArgument
	// NotFound: the namespace does not exist.
	NotFound
	// AlreadyExists: the namespace exists, or an idempotency token was reused
	// with another payload.
	AlreadyExists
	// FailedPrecondition: the request is well formed but not acceptable now,
	// e.g. a generation_time outside the accept window.
	FailedPrecondition
	// OutOfRange: a count would not fit in int64.
	OutOfRange
	// Unavailable: a store failed; the request may be retried with the same token.
	Unavailable
	// Canceled: the caller went away.
	Canceled
	// DeadlineExceeded: the caller's deadline passed.
	DeadlineExceeded
	// ResourceExhausted: a rate or size limit refused the request; nothing
	// was applied. Error.RetryAfter, if set, says when to try again.
	ResourceExhausted
	// Unauthenticated: the request carried no valid access token.
	Unauthenticated
	// PermissionDenied: the access token lacks the right the call needs.
	PermissionDenied
)

var codeNames = [...]string{
	Internal:           "internal",
	InvalidArgument:    "invalid_argument",
	NotFound:           "not_found",
	AlreadyExists:      "already_exists",
	FailedPrecondition: "failed_precondition",
	OutOfRange:         "out_of_range",
	Unavailable:        "unavailable",
	Canceled:           "canceled",
	DeadlineExceeded:   "deadline_exceeded",
	ResourceExhausted:  "resource_exhausted",
	Unauthenticated:    "unauthenticated",
	PermissionDenied:   "permission_denied",
}

// String returns the code's snake_case name.
func (c Code) String() string {
	if c >= 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", int(c))
}

// Error is an error with a Code. Msg is the whole message shown to clients
// (it already includes the cause's text); Err, if set, is the underlying cause,
// kept for errors.Is and errors.As.
type Error struct {
	Code Code
	Msg  string
	Err  error
	// RetryAfter, for ResourceExhausted, is how long the caller should wait
	// before trying again; zero if unknown.
	RetryAfter time.Duration
}

// Error implements error.
func (e *Error) Error() string {
	if e.Msg == "" && e.Err != nil {
		return e.Err.Error()
	}
	return e.Msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and formatted message. A %w verb
// wraps its operand as the cause.
func Errorf(code Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	cause := errors.Unwrap(err)
	if _, multi := err.(interface{ Unwrap() []error }); multi {
		cause = err // several %w: the fmt error keeps them all for errors.Is
	}
	return &Error{Code: code, Msg: err.Error(), Err: cause}
}

// Wrap returns err classified as code, with msg in front. It returns nil for a nil err.
func Wrap(code Code, err error, msg string) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Msg: msg + ": " + err.Error(), Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, Canceled or
// DeadlineExceeded for context errors, and Internal otherwise. It returns -1
// for a nil error.
func ErrorCode(err error) Code {
	if err == nil {
		return -1
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return contextCode(err)
}

// RetryAfter returns the RetryAfter of the first *Error in err's chain, zero
// if none.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// ErrorMessage returns the client-facing message of err: the Msg of its first
// *Error, or err.Error() otherwise.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return err.Error()
}
