package embedded

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"slices"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/cockroachdb/pebble/v2"
)

// nsSeqKey holds the last namespace ID handed out. IDs key a namespace's data,
// so one is never handed out twice, even after its namespace is deleted.
var nsSeqKey = metaKey("namespace_seq")

// CreateNamespace implements abacus.NamespaceStore. Namespace writes hold one
// mutex: they are rare, and the name check and the ID sequence need it.
func (s *Store) CreateNamespace(ctx context.Context, ns *abacus.Namespace) (*abacus.Namespace, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	if err := checkNamespace(ns); err != nil {
		return nil, err
	}
	s.nsMu.Lock()
	defer s.nsMu.Unlock()
	key := namespaceKey(ns.Name)
	if _, found, err := s.get(key, "namespace store"); err != nil || found {
		if found {
			err = abacus.Errorf(abacus.AlreadyExists, "namespace %q already exists", ns.Name)
		}
		return nil, err
	}
	v, _, err := s.get(nsSeqKey, "namespace store")
	if err != nil {
		return nil, err
	}
	var last uint64
	if len(v) == 8 {
		last = binary.BigEndian.Uint64(v)
	} else if v != nil {
		return nil, corrupt("namespace ID sequence", nsSeqKey)
	}
	out := *ns
	out.ID = last + 1
	out.Created = time.Now().UTC()
	out.Updated = out.Created
	data, err := json.Marshal(&out)
	if err != nil {
		return nil, abacus.Errorf(abacus.Internal, "encode namespace %q: %w", ns.Name, err)
	}
	b := s.db.NewBatch()
	_ = b.Set(nsSeqKey, appendUint64(nil, out.ID), nil)
	_ = b.Set(key, data, nil)
	if err := s.commit(b, pebble.Sync, "namespace store"); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetNamespace implements abacus.NamespaceStore.
func (s *Store) GetNamespace(ctx context.Context, name string) (*abacus.Namespace, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	return s.namespace(name)
}

func (s *Store) namespace(name string) (*abacus.Namespace, error) {
	key := namespaceKey(name)
	v, found, err := s.get(key, "namespace store")
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, abacus.Errorf(abacus.NotFound, "namespace %q not found", name)
	}
	return decodeNamespace(key, v)
}

func decodeNamespace(key, v []byte) (*abacus.Namespace, error) {
	ns := new(abacus.Namespace)
	if err := json.Unmarshal(v, ns); err != nil {
		return nil, corrupt("namespace", key)
	}
	return ns, nil
}

// ListNamespaces implements abacus.NamespaceStore. Keys are ordered by name.
func (s *Store) ListNamespaces(ctx context.Context) (list []*abacus.Namespace, err error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	it, err := s.iter([]byte{prefixNamespace}, []byte{prefixNamespace + 1})
	if err != nil {
		return nil, err
	}
	defer closeIter(it, &err)
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, unavailable(err, "namespace store")
		}
		ns, err := decodeNamespace(it.Key(), v)
		if err != nil {
			return nil, err
		}
		list = append(list, ns)
	}
	if err := it.Error(); err != nil {
		return nil, unavailable(err, "namespace store")
	}
	return list, nil
}

// UpdateNamespace implements abacus.NamespaceStore. It refuses to change a
// namespace's TimePartition, which is part of its events' keys: events written
// under the old partition could no longer be found.
func (s *Store) UpdateNamespace(ctx context.Context, ns *abacus.Namespace) (*abacus.Namespace, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	if err := checkNamespace(ns); err != nil {
		return nil, err
	}
	s.nsMu.Lock()
	defer s.nsMu.Unlock()
	old, err := s.namespace(ns.Name)
	if err != nil {
		return nil, err
	}
	if old.Partition != (abacus.TimePartition{}) && ns.Partition != old.Partition {
		return nil, abacus.Errorf(abacus.FailedPrecondition,
			"namespace %q: the time partition cannot change after creation (its events are keyed by it); create a new namespace instead",
			ns.Name)
	}
	out := *ns
	out.ID = old.ID
	out.Created = old.Created
	out.Updated = time.Now().UTC()
	data, err := json.Marshal(&out)
	if err != nil {
		return nil, abacus.Errorf(abacus.Internal, "encode namespace %q: %w", ns.Name, err)
	}
	b := s.db.NewBatch()
	_ = b.Set(namespaceKey(ns.Name), data, nil)
	if err := s.commit(b, pebble.Sync, "namespace store"); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteNamespace implements abacus.NamespaceStore. The namespace's events,
// last writes, checkpoints and retained bases, which this store holds, go in the same
// atomic batch: deleted in a second step, as EventStore.DropNamespace does, a
// crash in between left them unreachable for good. (The service still calls
// DropNamespace next, which removes what writes in flight added meanwhile.)
func (s *Store) DeleteNamespace(ctx context.Context, name string) (*abacus.Namespace, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.end()
	s.nsMu.Lock()
	defer s.nsMu.Unlock()
	old, err := s.namespace(name)
	if err != nil {
		return nil, err
	}
	if err := s.flushForDeletion(ctx); err != nil {
		return nil, err
	}
	b := s.db.NewBatch()
	_ = b.Delete(namespaceKey(name), nil)
	deleteNamespaceData(b, old.ID)
	if err := s.commit(b, pebble.Sync, "namespace store"); err != nil {
		return nil, err
	}
	s.slices.drop(old.ID)
	return old, nil
}

// deleteNamespaceData adds to b one range deletion per key space that holds a
// namespace's data.
func deleteNamespaceData(b *pebble.Batch, nsID uint64) {
	for _, p := range namespaceDataPrefixes {
		start := spaceKey(p, nsID)
		_ = b.DeleteRange(start, prefixEnd(start), nil)
	}
}

// dropOrphans deletes, at Open, the data of namespace IDs that no namespace
// has: left by a crash between the two steps of a namespace deletion before
// DeleteNamespace did both at once, or by an append that committed after
// its namespace was deleted. Namespace IDs are never reused, so such data can
// never be read again. It costs one seek per namespace ID per key space.
func (s *Store) dropOrphans() (err error) {
	live := map[uint64]bool{}
	list, err := s.ListNamespaces(context.Background())
	if err != nil {
		return err
	}
	for _, ns := range list {
		live[ns.ID] = true
	}
	orphans := map[uint64]bool{}
	for _, p := range namespaceDataPrefixes {
		if err := s.eachNamespaceID(p, func(id uint64) {
			if !live[id] {
				orphans[id] = true
			}
		}); err != nil {
			return err
		}
	}
	if len(orphans) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	ids := make([]uint64, 0, len(orphans))
	for id := range orphans {
		deleteNamespaceData(b, id)
		ids = append(ids, id)
	}
	if err := s.commit(b, pebble.Sync, "embedded store: drop data of deleted namespaces"); err != nil {
		return err
	}
	slices.Sort(ids)
	s.log.Info("dropped the data of deleted namespaces", "namespace_ids", ids)
	return nil
}

// eachNamespaceID calls fn with every namespace ID that has a key in the key
// space of prefix, seeking from one ID to the next.
func (s *Store) eachNamespaceID(prefix byte, fn func(id uint64)) (err error) {
	it, err := s.iter([]byte{prefix}, []byte{prefix + 1})
	if err != nil {
		return err
	}
	defer closeIter(it, &err)
	for valid := it.First(); valid; {
		key := it.Key()
		if len(key) < 9 {
			return corrupt("key", key)
		}
		id := binary.BigEndian.Uint64(key[1:9])
		fn(id)
		next := prefixEnd(spaceKey(prefix, id))
		if next == nil || next[0] != prefix {
			break
		}
		valid = it.SeekGE(next)
	}
	if err := it.Error(); err != nil {
		return unavailable(err, "embedded store")
	}
	return nil
}

func checkNamespace(ns *abacus.Namespace) error {
	if ns == nil || ns.Name == "" {
		return abacus.Errorf(abacus.InvalidArgument, "namespace name is required")
	}
	return nil
}
