package memcached

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/abacus-dev/abacus"
	"github.com/bradfitz/gomemcache/memcache"
)

// classify classifies a gomemcache error for abacus callers, by type: the
// caller's context first, then connection failures, timeouts, a connection
// closed mid-reply, no reachable server and server errors are Unavailable.
// Anything else (a protocol reply we did not expect, a value that is not a
// number) is Internal. A cache miss never reaches here: the callers read it
// as absent.
func classify(ctx context.Context, err error, op string) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return abacus.Wrap(abacus.ErrorCode(ctx.Err()), err, "memcached "+op)
	}
	var (
		netErr      net.Error
		dialTimeout *memcache.ConnectTimeoutError
	)
	switch {
	case errors.As(err, &netErr), errors.As(err, &dialTimeout),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, memcache.ErrNoServers), errors.Is(err, memcache.ErrServerError):
		return abacus.Wrap(abacus.Unavailable, err, "memcached "+op)
	}
	return abacus.Wrap(abacus.Internal, err, "memcached "+op)
}

// wrap classifies err with classify and, for a transport failure, closes the
// client's idle connections. gomemcache does not check a
// pooled connection before using it, so after a server restart every idle
// connection would fail one call; dropping them all on the first failure
// makes that one call. During an outage they are dead anyway.
func (c *Cache) wrap(ctx context.Context, err error, op string) error {
	err = classify(ctx, err, op)
	if abacus.ErrorCode(err) == abacus.Unavailable {
		_ = c.client.Close()
	}
	return err
}

// ctxErr returns the error for a context that is already done, before a call
// that could not be interrupted.
func ctxErr(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return abacus.Wrap(abacus.ErrorCode(err), err, "memcached "+op)
	}
	return nil
}
