package bench

import (
	"context"
	"errors"
	"net"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorCode names the kind of a failed op, for Result.ErrorsByCode:
//
//   - a gRPC status: its code in snake case ("unavailable",
//     "deadline_exceeded"), as the abacus CLI prints codes;
//   - a context error: "deadline_exceeded" or "canceled";
//   - a PostgreSQL error: "pg_" and its SQLSTATE ("pg_40P01" is a deadlock);
//   - a network timeout: "timeout"; another network error: "network";
//   - anything else: "error".
func ErrorCode(err error) string {
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return snake(s.Code().String())
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return "pg_" + pg.Code
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return "timeout"
		}
		return "network"
	}
	if _, ok := status.FromError(err); ok {
		return "unknown"
	}
	return "error"
}

// snake turns a gRPC code name ("DeadlineExceeded") into snake case
// ("deadline_exceeded").
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
