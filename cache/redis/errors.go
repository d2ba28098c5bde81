package redis

import (
	"context"
	"errors"

	"github.com/abacus-dev/abacus"
	goredis "github.com/redis/go-redis/v9"
)

// errOutOfRange is the error code the Add script replies with when INCRBY
// refuses to overflow. Redis's own reply for that case is a generic "ERR" with
// only a message, so the script turns it into a code of its own.
const errOutOfRange = "ABACUS_OUTOFRANGE"

// wrap classifies a client error for abacus callers. The caller's context
// first: a canceled request is Canceled, not an outage. Then errors that are
// not server replies are transport failures (the client returns replies as
// goredis.Error, and refused or broken connections, timeouts and pool waits as
// other types), so they are Unavailable. Replies are classified by the typed
// helpers of go-redis: a cluster that is down or resharding, a server loading
// or out of memory, a read-only replica are Unavailable; any other reply (a
// wrong type under our key, a script error) is Internal.
func wrap(ctx context.Context, err error, op string) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return abacus.Wrap(abacus.ErrorCode(ctxErr), err, "redis "+op)
	}
	var reply goredis.Error
	if !errors.As(err, &reply) {
		return abacus.Wrap(abacus.Unavailable, err, "redis "+op)
	}
	_, moved := goredis.IsMovedError(err)
	_, ask := goredis.IsAskError(err)
	switch {
	case goredis.HasErrorPrefix(err, errOutOfRange):
		return abacus.Wrap(abacus.OutOfRange, err, "redis "+op+": the count would not fit in int64 and is unchanged")
	case goredis.IsClusterDownError(err), goredis.IsTryAgainError(err), goredis.IsLoadingError(err),
		goredis.IsMasterDownError(err), goredis.IsReadOnlyError(err), goredis.IsMaxClientsError(err),
		goredis.IsOOMError(err), goredis.IsNoReplicasError(err), moved, ask:
		// MOVED and ASK are followed by the cluster client; one that reaches
		// here ran out of redirects while the cluster reshards.
		return abacus.Wrap(abacus.Unavailable, err, "redis "+op)
	}
	return abacus.Wrap(abacus.Internal, err, "redis "+op)
}
