package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// maxBackoff caps the pause between retries: a CLI user waits for the answer,
// so a few quick tries are worth more than a long patient one.
const maxBackoff = 2 * time.Second

// connect returns the connection to --addr, creating it on first use so that
// commands that need no server (help, version) never dial.
func (a *app) connect() (*grpc.ClientConn, error) {
	if a.conn != nil {
		return a.conn, nil
	}
	conn, err := grpc.NewClient(a.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("--addr %q: %w", a.addr, err)}
	}
	a.conn = conn
	return conn, nil
}

func (a *app) counters() (abacusv1.CounterServiceClient, error) {
	conn, err := a.connect()
	if err != nil {
		return nil, err
	}
	return abacusv1.NewCounterServiceClient(conn), nil
}

func (a *app) namespaces() (abacusv1.NamespaceServiceClient, error) {
	conn, err := a.connect()
	if err != nil {
		return nil, err
	}
	return abacusv1.NewNamespaceServiceClient(conn), nil
}

// once makes one call with the --timeout deadline and no retry. It is for
// calls whose repetition is not harmless (creating, updating or deleting a
// namespace), where a retry could turn a success into ALREADY_EXISTS or
// NOT_FOUND.
func (a *app) once(ctx context.Context, call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	return call(ctx)
}

// retry makes an idempotent call, each attempt with its own --timeout
// deadline, and repeats it up to --retries times, with exponential backoff,
// while it fails with a code that says the request may not have been served.
// Only calls that are safe to repeat may go through here: reads, and writes
// that carry an idempotency token that stays the same on every attempt.
func (a *app) retry(ctx context.Context, call func(context.Context) error) error {
	pause := a.backoff
	uncertain := false
	for attempt := 0; ; attempt++ {
		err := a.once(ctx, call)
		if err != nil && uncertain && !retryable(err) {
			return &afterRetryError{err}
		}
		if err == nil || attempt >= a.retries || !retryable(err) || ctx.Err() != nil {
			return err
		}
		uncertain = true
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		pause = min(2*pause, maxBackoff)
	}
}

// retryable reports whether a failed call may be sent again. UNAVAILABLE is
// the server's (and grpc-go's) "safe to retry with the same token";
// DEADLINE_EXCEEDED is an attempt that ran out of time, whose write may or
// may not have landed, which the idempotency token makes harmless.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// writeError is a failed add or clear whose outcome is unknown: the server
// may have applied it before the failure. It carries the idempotency key so
// the user can rerun the same write without applying it twice.
type writeError struct {
	err   error
	token string
	time  time.Time
}

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// afterRetryError is the final error of a call that an earlier attempt may
// have served: a refusal after a retry (say FAILED_PRECONDITION because the
// retried generation_time left the accept window) does not prove that the
// first attempt was not applied.
type afterRetryError struct{ err error }

func (e *afterRetryError) Error() string { return e.err.Error() }
func (e *afterRetryError) Unwrap() error { return e.err }

// ambiguousWrite wraps err in a writeError when the write it failed may have
// been applied, and returns other errors (nil, a definite refusal) as they are.
func ambiguousWrite(err error, tok *abacusv1.IdempotencyToken) error {
	var after *afterRetryError
	if errors.As(err, &after) {
		return &writeError{err: after.err, token: tok.GetToken(), time: tok.GetGenerationTime().AsTime()}
	}
	switch status.Code(err) {
	case codes.OK, codes.InvalidArgument, codes.NotFound, codes.AlreadyExists,
		codes.FailedPrecondition, codes.OutOfRange, codes.PermissionDenied,
		codes.Unauthenticated, codes.ResourceExhausted, codes.Unimplemented:
		return err
	}
	return &writeError{err: err, token: tok.GetToken(), time: tok.GetGenerationTime().AsTime()}
}

// idempotencyToken builds the token of a write. Without --token the CLI
// invents a UUID, and without --time it stamps the current time: a token the
// CLI always sends is what makes its own retries safe. Both are fixed before
// the first attempt so that every retry carries the same key.
func (a *app) idempotencyToken(token, at string) (*abacusv1.IdempotencyToken, error) {
	if token == "" {
		token = a.newToken()
	}
	t := a.now()
	if at != "" {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return nil, fmt.Errorf("--time %q is not an RFC 3339 time such as 2024-10-05T14:48:00Z", at)
		}
	}
	return &abacusv1.IdempotencyToken{Token: token, GenerationTime: timestamppb.New(t)}, nil
}
