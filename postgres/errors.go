package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATEs the store acts on. Errors are classified by SQLSTATE and Go type,
// never by message text.
const (
	sqlstateCheckViolation      = "23514" // also "no partition of relation ... found for row"
	sqlstateSerializationFailed = "40001"
	sqlstateDeadlock            = "40P01"
	// sqlstateRefused is raised by the store's own function refuse_events
	// (see schema.go, group.go); the class "AB" is not used by PostgreSQL.
	sqlstateRefused = "AB409"
)

// classify turns an error from pgx into an *abacus.Error: a context error of
// the caller as Canceled or DeadlineExceeded, anything that may succeed on a
// retry (connection failures, timeouts, shutdowns, serialization failures,
// lock timeouts, resource exhaustion) as Unavailable, bad input as
// InvalidArgument, and the rest as Internal. callerCtx tells the caller's own
// cancellation or deadline from the store's Timeout: running out of the
// latter means the server did not answer in time, which is Unavailable.
func classify(callerCtx context.Context, err error, what string) error {
	if err == nil {
		return nil
	}
	var ae *abacus.Error
	if errors.As(err, &ae) {
		return err
	}
	if cerr := callerCtx.Err(); cerr != nil {
		// Whatever the driver reports then (an interrupted read, a canceled
		// query) is the consequence of the caller leaving.
		return &abacus.Error{Code: abacus.ErrorCode(cerr), Msg: "postgres: " + what + ": " + cerr.Error(), Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return abacus.Wrap(abacus.Unavailable, err, "postgres: "+what+": the server did not answer in time")
	}
	return abacus.Wrap(codeOf(err), err, "postgres: "+what)
}

// codeOf returns the abacus code of an error that is not the caller's
// context error. An error without a server error (SQLSTATE) comes from the
// client side of the connection: dialing, TLS, I/O, a timeout, a closed pool.
// The server's state is then unknown, so it is Unavailable: every write of
// this store is idempotent and may be retried.
func codeOf(err error) abacus.Code {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return sqlstateCode(pe.Code)
	}
	return abacus.Unavailable
}

// sqlstateCode classifies a server error by its SQLSTATE.
func sqlstateCode(code string) abacus.Code {
	switch code {
	case sqlstateSerializationFailed, sqlstateDeadlock,
		"55P03", // lock_not_available: lock_timeout expired
		"57014", // query_canceled: statement_timeout or a cancel request
		"57P01", // admin_shutdown
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now: starting up or shutting down
		"57P04", // database_dropped
		"25006", // read_only_sql_transaction: a standby or a read-only server
		"40003": // statement_completion_unknown
		return abacus.Unavailable
	}
	switch code[:2] {
	case "08", // connection exception
		"53", // insufficient resources: disk full, out of memory, too many connections
		"58", // system error: I/O
		"28", // invalid authorization: the node is misconfigured; nothing it can serve
		"3D": // invalid catalog name: the database does not exist
		return abacus.Unavailable
	case "22": // data exception: a value the column cannot hold
		return abacus.InvalidArgument
	}
	return abacus.Internal
}

// isSQLState reports whether err is a server error with the given SQLSTATE.
func isSQLState(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// ctxError classifies the caller's context error.
func ctxError(err error) error {
	return &abacus.Error{Code: abacus.ErrorCode(err), Msg: "postgres store: " + err.Error(), Err: err}
}

func closedError() error { return abacus.Errorf(abacus.Unavailable, "postgres store is closed") }

func timeoutError(what string, d time.Duration) error {
	return abacus.Errorf(abacus.Unavailable, "postgres: %s: no answer from the server within %s", what, d)
}
