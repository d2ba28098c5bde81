package counter

import (
	"context"
	"reflect"
	"sort"
	"time"

	"github.com/abacus-dev/abacus"
)

// Load reads every stored namespace into the node's registry, replacing what it
// had. Call it at start, and periodically when several nodes share a store.
func (s *Service) Load(ctx context.Context) error {
	all, err := s.cfg.Namespaces.ListNamespaces(ctx)
	if err != nil {
		return err
	}
	keep := make(map[string]bool, len(all))
	for _, ns := range all {
		keep[ns.Name] = true
		cur, ok := s.reg.get(ns.Name)
		if ok && cur.ID != ns.ID {
			// Deleted and created again elsewhere: the old ID's queued
			// rollups are void.
			s.cfg.Signaler.RemoveNamespace(cur.ID)
		}
		if !ok || !reflect.DeepEqual(cur, ns) {
			s.reg.put(ns)
		}
	}
	for _, ns := range s.reg.all() {
		if !keep[ns.Name] {
			s.reg.remove(ns.Name)
			s.cfg.Signaler.RemoveNamespace(ns.ID)
		}
	}
	return nil
}

// Apply creates or updates the given namespaces (from a namespaces file): a
// namespace that does not exist is created; one that differs is updated,
// subject to the same rules as UpdateNamespace.
func (s *Service) Apply(ctx context.Context, nss []*abacus.Namespace) error {
	for _, ns := range nss {
		if err := s.apply(ctx, ns); err != nil {
			return err
		}
	}
	return nil
}

// apply creates or updates one namespace. Nodes sharing a store that start
// together with one file race to create it: the losers find it created
// (AlreadyExists) and go on as if they had found it before.
func (s *Service) apply(ctx context.Context, ns *abacus.Namespace) error {
	for attempt := 0; ; attempt++ {
		old, err := s.cfg.Namespaces.GetNamespace(ctx, ns.Name)
		switch {
		case abacus.ErrorCode(err) == abacus.NotFound:
			_, err := s.CreateNamespace(ctx, ns)
			if abacus.ErrorCode(err) == abacus.AlreadyExists && attempt < 3 {
				continue
			}
			return err
		case err != nil:
			return err
		case sameConfig(old, ns):
			s.reg.put(old)
			return nil
		default:
			_, err := s.UpdateNamespace(ctx, ns)
			return err
		}
	}
}

// sameConfig compares configurations, ignoring the store-assigned fields.
func sameConfig(a, b *abacus.Namespace) bool {
	x, y := *a, *b
	x.ID, y.ID = 0, 0
	x.Created, y.Created = time.Time{}, time.Time{}
	x.Updated, y.Updated = time.Time{}, time.Time{}
	return reflect.DeepEqual(x, y)
}

// CreateNamespace fills defaults, validates and stores a new namespace.
func (s *Service) CreateNamespace(ctx context.Context, ns *abacus.Namespace) (*abacus.Namespace, error) {
	if ns == nil {
		return nil, abacus.Errorf(abacus.InvalidArgument, "namespace is required")
	}
	c := *ns
	if err := s.cfg.Complete(&c); err != nil {
		return nil, err
	}
	created, err := s.cfg.Namespaces.CreateNamespace(ctx, &c)
	if err != nil {
		return nil, err
	}
	s.reg.put(created)
	return created, nil
}

// GetNamespace returns a namespace with every default filled in.
func (s *Service) GetNamespace(ctx context.Context, name string) (*abacus.Namespace, error) {
	if err := abacus.CheckNamespaceName(name); err != nil {
		return nil, err
	}
	return s.cfg.Namespaces.GetNamespace(ctx, name)
}

// ListNamespaces returns every namespace, ordered by name.
func (s *Service) ListNamespaces(ctx context.Context) ([]*abacus.Namespace, error) {
	all, err := s.cfg.Namespaces.ListNamespaces(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all, nil
}

// UpdateNamespace replaces a namespace's mutable settings; changes to immutable
// ones (counter type, partitioning, storage, a larger accept limit) are refused.
func (s *Service) UpdateNamespace(ctx context.Context, ns *abacus.Namespace) (*abacus.Namespace, error) {
	if ns == nil {
		return nil, abacus.Errorf(abacus.InvalidArgument, "namespace is required")
	}
	if err := abacus.CheckNamespaceName(ns.Name); err != nil {
		return nil, err
	}
	old, err := s.cfg.Namespaces.GetNamespace(ctx, ns.Name)
	if err != nil {
		return nil, err
	}
	// CheckUpdate keeps old values for the fields the update leaves unset,
	// then fills defaults and validates: completing first would reset them.
	c := *ns
	if err := s.cfg.CheckUpdate(old, &c); err != nil {
		return nil, err
	}
	updated, err := s.cfg.Namespaces.UpdateNamespace(ctx, &c)
	if err != nil {
		return nil, err
	}
	s.reg.put(updated)
	return updated, nil
}

// DeleteNamespace deletes a namespace and drops its events and checkpoints.
// Its BEST_EFFORT counts expire with their TTL; they can never be seen again
// because cache keys carry the namespace's never-reused ID.
func (s *Service) DeleteNamespace(ctx context.Context, name string) error {
	if err := abacus.CheckNamespaceName(name); err != nil {
		return err
	}
	old, err := s.cfg.Namespaces.DeleteNamespace(ctx, name)
	if err != nil {
		return err
	}
	s.reg.remove(name)
	s.cfg.Signaler.RemoveNamespace(old.ID)
	if old.Type.Durable() {
		if err := s.cfg.Backends.EventStore(old).DropNamespace(ctx, old); err != nil {
			s.log.Warn("dropping a deleted namespace's data failed; it is unreachable but takes space", "namespace", name, "err", err)
		}
	}
	return nil
}
