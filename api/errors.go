package api

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

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
	abacus.ResourceExhausted:  codes.ResourceExhausted,
	abacus.Unauthenticated:    codes.Unauthenticated,
	abacus.PermissionDenied:   codes.PermissionDenied,
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

// retryInfo returns the google.rpc.RetryInfo detail of a refused request
// that says when to try again, nil if it does not.
func retryInfo(err error) *errdetails.RetryInfo {
	d := abacus.RetryAfter(err)
	if d <= 0 {
		return nil
	}
	return &errdetails.RetryInfo{RetryDelay: durationpb.New(d)}
}

// grpcError returns err as a gRPC status error; nil for nil. A request
// refused by a rate limit carries a RetryInfo detail.
func grpcError(ctx context.Context, log *slog.Logger, procedure string, err error) error {
	if err == nil {
		return nil
	}
	c, msg := wireError(ctx, log, procedure, err)
	st := status.New(c, msg)
	if ri := retryInfo(err); ri != nil {
		if withInfo, derr := st.WithDetails(ri); derr == nil {
			st = withInfo
		}
	}
	return st.Err()
}

// connectError returns err as a *connect.Error; nil for nil. A request
// refused by a rate limit carries a RetryInfo detail and, for plain HTTP
// clients, a Retry-After header in whole seconds (rounded up).
func connectError(ctx context.Context, log *slog.Logger, procedure string, err error) error {
	if err == nil {
		return nil
	}
	c, msg := wireError(ctx, log, procedure, err)
	ce := connect.NewError(connect.Code(c), errors.New(msg))
	if ri := retryInfo(err); ri != nil {
		if d, derr := connect.NewErrorDetail(ri); derr == nil {
			ce.AddDetail(d)
		}
		secs := (abacus.RetryAfter(err) + time.Second - 1) / time.Second
		ce.Meta().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	return ce
}

// codeLabel names a code for metric labels, identically for both transports
// (Connect's snake_case names, "ok" for success).
func codeLabel(c codes.Code) string {
	if c == codes.OK {
		return "ok"
	}
	return connect.Code(c).String()
}
