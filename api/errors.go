package api

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/abacus-dev/abacus"
)

// wireCodes is the one mapping from domain codes to wire codes. Connect codes
// are numerically equal to gRPC codes, so the connect transport uses the same
// table through connect.Code(c).
var wireCodes = [...]codes.Code{
	abacus.Internal:           codes.Internal,
	abacus.InvalidArgument:    codes.InvalidArgument,
	abacus.NotFound:           codes.NotFound,
	abacus.AlreadyExists:      codes.AlreadyExists,
	abacus.FailedPrecondition: codes.FailedPrecondition,
	abacus.OutOfRange:         codes.OutOfRange,
	abacus.Unavailable:        codes.Unavailable,
	abacus.Canceled:           codes.Canceled,
	abacus.DeadlineExceeded:   codes.DeadlineExceeded,
}

// internalMessage replaces the message of Internal errors: their text may
// hold store paths, SQL or stack details that clients must not see and cannot
// act on.
const internalMessage = "internal error (logged on the server)"

// wireError classifies a non-nil err for the wire. Internal errors, and codes
// missing from the table, are logged with the procedure that failed.
func wireError(ctx context.Context, log *slog.Logger, procedure string, err error) (codes.Code, string) {
	c := abacus.ErrorCode(err)
	if c >= 0 && int(c) < len(wireCodes) && c != abacus.Internal {
		return wireCodes[c], abacus.ErrorMessage(err)
	}
	log.ErrorContext(ctx, "internal error", "procedure", procedure, "code", c.String(), "err", err)
	return codes.Internal, internalMessage
}

// grpcError returns err as a gRPC status error; nil for nil.
func grpcError(ctx context.Context, log *slog.Logger, procedure string, err error) error {
	if err == nil {
		return nil
	}
	c, msg := wireError(ctx, log, procedure, err)
	return status.Error(c, msg)
}

// connectError returns err as a *connect.Error; nil for nil.
func connectError(ctx context.Context, log *slog.Logger, procedure string, err error) error {
	if err == nil {
		return nil
	}
	c, msg := wireError(ctx, log, procedure, err)
	return connect.NewError(connect.Code(c), errors.New(msg))
}

// codeLabel names a code for metric labels, identically for both transports
// (Connect's snake_case names, "ok" for success).
func codeLabel(c codes.Code) string {
	if c == codes.OK {
		return "ok"
	}
	return connect.Code(c).String()
}
