// Package api serves the abacus.v1 API over gRPC (grpc-go) and over HTTP
// (connect-go: Connect/JSON, gRPC and gRPC-Web), as thin adapters over a
// [Service].
//
// Each transport only translates: wire messages to the service's types
// (package abacus; convert.go),
// domain errors to wire codes (errors.go, one table for both transports), and
// records request metrics (metrics.go). Both transports call the same
// proto-level operations (ops.go), so they cannot drift apart. Validation of
// names, deltas and tokens belongs to the Service; this package rejects only
// what cannot be expressed in those types (a malformed timestamp, a batch
// too large to accept).
package api

import (
	"context"

	"github.com/abacus-dev/abacus"
)

// Service is the domain service the transports call; package counter
// implements it. Every error it returns is classified with abacus.ErrorCode
// and shown to clients with abacus.ErrorMessage, except Internal errors, which
// are logged and replaced by a generic message.
type Service interface {
	abacus.CounterService
	abacus.AuditService
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
// A full batch of abacus.MaxBatch adds with long names fits well within it.
const MaxMessageBytes = 4 << 20
