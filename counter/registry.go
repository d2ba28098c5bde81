package counter

import (
	"sync"
	"sync/atomic"

	"github.com/abacus-dev/abacus"
)

// registry is the node's view of the namespaces, read on every request. Reads
// are lock-free (an immutable snapshot behind an atomic pointer); the rare
// writes copy the snapshot under a mutex.
type registry struct {
	mu   sync.Mutex
	snap atomic.Pointer[snapshot]
}

type snapshot struct {
	byName map[string]*abacus.Namespace
	byID   map[uint64]*abacus.Namespace
}

func newRegistry() *registry {
	r := &registry{}
	r.snap.Store(&snapshot{byName: map[string]*abacus.Namespace{}, byID: map[uint64]*abacus.Namespace{}})
	return r
}

func (r *registry) get(name string) (*abacus.Namespace, bool) {
	ns, ok := r.snap.Load().byName[name]
	return ns, ok
}

func (r *registry) byID(id uint64) (*abacus.Namespace, bool) {
	ns, ok := r.snap.Load().byID[id]
	return ns, ok
}

func (r *registry) all() []*abacus.Namespace {
	s := r.snap.Load()
	out := make([]*abacus.Namespace, 0, len(s.byName))
	for _, ns := range s.byName {
		out = append(out, ns)
	}
	return out
}

// put installs ns, replacing any namespace of the same name.
func (r *registry) put(ns *abacus.Namespace) {
	r.update(func(s *snapshot) {
		if old, ok := s.byName[ns.Name]; ok {
			delete(s.byID, old.ID)
		}
		s.byName[ns.Name] = ns
		s.byID[ns.ID] = ns
	})
}

func (r *registry) remove(name string) {
	r.update(func(s *snapshot) {
		if old, ok := s.byName[name]; ok {
			delete(s.byID, old.ID)
			delete(s.byName, name)
		}
	})
}

func (r *registry) update(f func(*snapshot)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snap.Load()
	s := &snapshot{
		byName: make(map[string]*abacus.Namespace, len(old.byName)+1),
		byID:   make(map[uint64]*abacus.Namespace, len(old.byID)+1),
	}
	for k, v := range old.byName {
		s.byName[k] = v
	}
	for k, v := range old.byID {
		s.byID[k] = v
	}
	f(s)
	r.snap.Store(s)
}
