package client

import (
	"context"

	"google.golang.org/grpc"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// Namespaces returns a NamespaceService client over the client's
// connections, so that a program needs one Client for both services. Reads
// (GetNamespace, ListNamespaces) are retried and hedged as GetCount is.
// Creates, updates and deletes are sent once, each bounded by
// WithAttemptTimeout: sent again after a lost answer, they could turn a
// success into ALREADY_EXISTS or NOT_FOUND. Errors are the generated
// client's gRPC status errors.
func (c *Client) Namespaces() abacusv1.NamespaceServiceClient { return namespaces{c} }

// namespaces is the NamespaceService client of a Client.
type namespaces struct{ c *Client }

var _ abacusv1.NamespaceServiceClient = namespaces{}

// never is the again of a call that must not be sent twice.
func never() (bool, <-chan struct{}) { return false, nil }

// once makes one attempt of a call that may not be repeated.
func once[T any](c *Client, ctx context.Context, fn attempt[T]) (T, error) {
	if c.closed.Load() {
		var zero T
		return zero, ErrClosed
	}
	return hedged(c, ctx, never, fn)
}

// read makes a call that may be repeated, with the client's retries.
func read[T any](c *Client, ctx context.Context, fn attempt[T]) (T, error) {
	if c.closed.Load() {
		var zero T
		return zero, ErrClosed
	}
	res, _, err := invoke(c, ctx, nil, fn)
	return res, err
}

// GetNamespace returns a namespace; it is retried.
func (n namespaces) GetNamespace(ctx context.Context, in *abacusv1.GetNamespaceRequest, opts ...grpc.CallOption) (*abacusv1.GetNamespaceResponse, error) {
	return read(n.c, ctx, func(ctx context.Context, cn *conn) (*abacusv1.GetNamespaceResponse, error) {
		return cn.ns.GetNamespace(ctx, in, opts...)
	})
}

// ListNamespaces lists the namespaces; it is retried.
func (n namespaces) ListNamespaces(ctx context.Context, in *abacusv1.ListNamespacesRequest, opts ...grpc.CallOption) (*abacusv1.ListNamespacesResponse, error) {
	return read(n.c, ctx, func(ctx context.Context, cn *conn) (*abacusv1.ListNamespacesResponse, error) {
		return cn.ns.ListNamespaces(ctx, in, opts...)
	})
}

// CreateNamespace creates a namespace; it is sent once.
func (n namespaces) CreateNamespace(ctx context.Context, in *abacusv1.CreateNamespaceRequest, opts ...grpc.CallOption) (*abacusv1.CreateNamespaceResponse, error) {
	return once(n.c, ctx, func(ctx context.Context, cn *conn) (*abacusv1.CreateNamespaceResponse, error) {
		return cn.ns.CreateNamespace(ctx, in, opts...)
	})
}

// UpdateNamespace updates a namespace; it is sent once.
func (n namespaces) UpdateNamespace(ctx context.Context, in *abacusv1.UpdateNamespaceRequest, opts ...grpc.CallOption) (*abacusv1.UpdateNamespaceResponse, error) {
	return once(n.c, ctx, func(ctx context.Context, cn *conn) (*abacusv1.UpdateNamespaceResponse, error) {
		return cn.ns.UpdateNamespace(ctx, in, opts...)
	})
}

// DeleteNamespace deletes a namespace; it is sent once.
func (n namespaces) DeleteNamespace(ctx context.Context, in *abacusv1.DeleteNamespaceRequest, opts ...grpc.CallOption) (*abacusv1.DeleteNamespaceResponse, error) {
	return once(n.c, ctx, func(ctx context.Context, cn *conn) (*abacusv1.DeleteNamespaceResponse, error) {
		return cn.ns.DeleteNamespace(ctx, in, opts...)
	})
}
