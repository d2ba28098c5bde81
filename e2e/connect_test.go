package e2e

import (
	"context"
	"errors"

	"connectrpc.com/connect"
	"google.golang.org/grpc"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/gen/abacus/v1/abacusv1connect"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// connectCounter adapts the Connect client to the grpc-go client interface so
// one test body runs over both transports.
type connectCounter struct {
	abacusv1.CounterServiceClient // nil: the audit methods are called directly
	c                             abacusv1connect.CounterServiceClient
}

func unwrap[T any](r *connect.Response[T], err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return r.Msg, nil
}

func (c connectCounter) AddCount(ctx context.Context, in *abacusv1.AddCountRequest, _ ...grpc.CallOption) (*abacusv1.AddCountResponse, error) {
	return unwrap(c.c.AddCount(ctx, connect.NewRequest(in)))
}
func (c connectCounter) AddAndGetCount(ctx context.Context, in *abacusv1.AddCountRequest, _ ...grpc.CallOption) (*abacusv1.AddAndGetCountResponse, error) {
	return unwrap(c.c.AddAndGetCount(ctx, connect.NewRequest(in)))
}
func (c connectCounter) GetCount(ctx context.Context, in *abacusv1.GetCountRequest, _ ...grpc.CallOption) (*abacusv1.GetCountResponse, error) {
	return unwrap(c.c.GetCount(ctx, connect.NewRequest(in)))
}
func (c connectCounter) ClearCount(ctx context.Context, in *abacusv1.ClearCountRequest, _ ...grpc.CallOption) (*abacusv1.ClearCountResponse, error) {
	return unwrap(c.c.ClearCount(ctx, connect.NewRequest(in)))
}
func (c connectCounter) AddCounts(ctx context.Context, in *abacusv1.AddCountsRequest, _ ...grpc.CallOption) (*abacusv1.AddCountsResponse, error) {
	return unwrap(c.c.AddCounts(ctx, connect.NewRequest(in)))
}
func (c connectCounter) GetCounts(ctx context.Context, in *abacusv1.GetCountsRequest, _ ...grpc.CallOption) (*abacusv1.GetCountsResponse, error) {
	return unwrap(c.c.GetCounts(ctx, connect.NewRequest(in)))
}

type connectNamespace struct {
	c abacusv1connect.NamespaceServiceClient
}

func (c connectNamespace) CreateNamespace(ctx context.Context, in *abacusv1.CreateNamespaceRequest, _ ...grpc.CallOption) (*abacusv1.CreateNamespaceResponse, error) {
	return unwrap(c.c.CreateNamespace(ctx, connect.NewRequest(in)))
}
func (c connectNamespace) GetNamespace(ctx context.Context, in *abacusv1.GetNamespaceRequest, _ ...grpc.CallOption) (*abacusv1.GetNamespaceResponse, error) {
	return unwrap(c.c.GetNamespace(ctx, connect.NewRequest(in)))
}
func (c connectNamespace) ListNamespaces(ctx context.Context, in *abacusv1.ListNamespacesRequest, _ ...grpc.CallOption) (*abacusv1.ListNamespacesResponse, error) {
	return unwrap(c.c.ListNamespaces(ctx, connect.NewRequest(in)))
}
func (c connectNamespace) UpdateNamespace(ctx context.Context, in *abacusv1.UpdateNamespaceRequest, _ ...grpc.CallOption) (*abacusv1.UpdateNamespaceResponse, error) {
	return unwrap(c.c.UpdateNamespace(ctx, connect.NewRequest(in)))
}
func (c connectNamespace) DeleteNamespace(ctx context.Context, in *abacusv1.DeleteNamespaceRequest, _ ...grpc.CallOption) (*abacusv1.DeleteNamespaceResponse, error) {
	return unwrap(c.c.DeleteNamespace(ctx, connect.NewRequest(in)))
}
