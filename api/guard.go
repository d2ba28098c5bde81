package api

import (
	"context"
	"log/slog"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/auth"
)

// Authenticator turns the value of a request's Authorization header into
// the principal whose rights the request has (*auth.Keeper in a node).
type Authenticator interface {
	Authenticate(header string) (*auth.Principal, error)
}

// caller is who sent a request, as found by authentication: a principal, or
// the reason there is none.
type caller struct {
	p   *auth.Principal
	err error
}

type callerKey struct{}

// withCaller authenticates a request's Authorization header value, if
// access control is on, and keeps the outcome in the context for allow:
// refusing there, where the method and namespace are known, lets the
// message name them.
func (o *ops) withCaller(ctx context.Context, header string) context.Context {
	if o.auth == nil {
		return ctx
	}
	p, err := o.auth.Authenticate(header)
	return context.WithValue(ctx, callerKey{}, caller{p: p, err: err})
}

func callerOf(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	if c.p == nil && c.err == nil {
		c.err = auth.ErrMissing
	}
	return c
}

// allow refuses a call of method on namespace ns unless the caller has
// every right in need there: Unauthenticated without a valid token,
// PermissionDenied without the rights. The messages name the method and
// the namespace, never the token.
func (o *ops) allow(ctx context.Context, method string, need auth.Right, ns string) error {
	if o.auth == nil {
		return nil
	}
	c := callerOf(ctx)
	if c.err != nil {
		return abacus.Errorf(abacus.Unauthenticated, "%s on namespace %q: %v", method, ns, c.err)
	}
	if !c.p.Can(ns, need) {
		return abacus.Errorf(abacus.PermissionDenied, "%s on namespace %q: token %q lacks the %s right there (it has %s)",
			method, ns, c.p.Name, need, c.p.Rights(ns))
	}
	return nil
}

// allowAny refuses a call of method on namespace ns unless the caller has
// some right there: GetNamespace, which clients that only read or write a
// namespace call too, to learn its counter type (whether a write is safe to
// retry).
func (o *ops) allowAny(ctx context.Context, method, ns string) error {
	if o.auth == nil {
		return nil
	}
	c := callerOf(ctx)
	if c.err != nil {
		return abacus.Errorf(abacus.Unauthenticated, "%s on namespace %q: %v", method, ns, c.err)
	}
	if c.p.Rights(ns) == 0 {
		return abacus.Errorf(abacus.PermissionDenied, "%s on namespace %q: token %q has no right there", method, ns, c.p.Name)
	}
	return nil
}

// allowEach is allow for every distinct namespace of a batch, in order.
func (o *ops) allowEach(ctx context.Context, method string, need auth.Right, n int, nsOf func(i int) string) error {
	if o.auth == nil {
		return nil
	}
	prev := ""
	for i := range n {
		ns := nsOf(i)
		if i > 0 && ns == prev {
			continue
		}
		prev = ns
		if err := o.allow(ctx, method, need, ns); err != nil {
			return err
		}
	}
	return nil
}

// visible reports whether the caller may see namespace ns in
// ListNamespaces: with any right on it.
func (o *ops) visible(ctx context.Context, ns string) bool {
	if o.auth == nil {
		return true
	}
	c := callerOf(ctx)
	return c.err == nil && c.p.Rights(ns) != 0
}

// audit writes the audit trail's line for a change (a namespace's
// configuration, a ClearCount): who, what, where, and the outcome.
func (o *ops) audit(ctx context.Context, method, ns string, err error) {
	who := "-" // access control off
	if o.auth != nil {
		if c := callerOf(ctx); c.p != nil {
			who = c.p.Name
		} else {
			who = "(unauthenticated)"
		}
	}
	result := "ok"
	if err != nil {
		result = abacus.ErrorCode(err).String()
	}
	o.log.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.String("token", who), slog.String("method", method),
		slog.String("namespace", ns), slog.String("result", result))
}
