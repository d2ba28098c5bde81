// Package api serves the abacus.v1 API over gRPC (grpc-go) and over HTTP
// (connect-go: Connect/JSON, gRPC and gRPC-Web), as thin adapters over a
// [Service].
//
// Each transport only translates: wire messages to counter types (convert.go),
// domain errors to wire codes (errors.go, one table for both transports), and
// records request metrics (metrics.go). Both transports call the same
// proto-level operations (ops.go), so they cannot drift apart. Validation of
// names, deltas and tokens belongs to the Service; this package rejects only
// what cannot be expressed in counter types (a malformed timestamp, a batch
// too large to accept).
package api

import (
	"context"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/counter"
)

// Service is the domain service the transports call; package counter
// implements it. Every error it returns is classified with abacus.ErrorCode
// and shown to clients with abacus.ErrorMessage, except Internal errors, which
// are logged and replaced by a generic message.
type Service interface {
	// Add adds r.Delta to a counter and returns the token the write was stored
	// under (server-assigned when r.Token is zero).
	Add(ctx context.Context, r counter.AddRequest) (counter.Token, error)
	// AddAndGet adds like Add and also returns a count.
	AddAndGet(ctx context.Context, r counter.AddRequest) (int64, counter.Token, error)
	// Get returns a counter's count, 0 for a counter never written.
	Get(ctx context.Context, r counter.Ref) (int64, error)
	// Clear resets a counter to zero and returns the token it was stored under.
	Clear(ctx context.Context, r counter.Ref, tok counter.Token) (counter.Token, error)
	// AddBatch applies every add or none, and returns one token per add, in order.
	AddBatch(ctx context.Context, rs []counter.AddRequest) ([]counter.Token, error)
	// GetBatch returns one count per counter, in order.
	GetBatch(ctx context.Context, rs []counter.Ref) ([]int64, error)
	// CreateNamespace fills defaults, validates and stores ns, and returns it as stored.
	CreateNamespace(ctx context.Context, ns *abacus.Namespace) (*abacus.Namespace, error)
	// GetNamespace returns the namespace named name; NotFound if there is none.
	GetNamespace(ctx context.Context, name string) (*abacus.Namespace, error)
	// ListNamespaces returns every namespace, ordered by name.
	ListNamespaces(ctx context.Context) ([]*abacus.Namespace, error)
	// UpdateNamespace changes the mutable settings of ns.Name and returns the result.
	UpdateNamespace(ctx context.Context, ns *abacus.Namespace) (*abacus.Namespace, error)
	// DeleteNamespace deletes the namespace named name; NotFound if there is none.
	DeleteNamespace(ctx context.Context, name string) error
}

// MaxMessageBytes is the largest request message either transport accepts.
// A full batch of counter.MaxBatch adds with long names fits well within it.
const MaxMessageBytes = 4 << 20
