package controlplane

import (
	"slices"
	"strconv"
	"strings"

	"github.com/abacus-dev/abacus"
)

// Supported lists, for each store role of a namespace, the storage types a
// binary can serve. The first type of a list is the role's default. A nil or
// empty list means this build's list for that role (see [DefaultSupported]).
//
// A build with more backends passes a wider list to its [Validator], e.g.
//
//	Supported{Events: []string{"POSTGRES", abacus.StorageEmbedded}}
//
// makes PostgreSQL the default event store and still accepts EMBEDDED. The
// list is a value rather than a registry that backends add themselves to, so
// what a binary accepts is decided in one place, by the code that wires the
// backends, and tests can use any list without touching global state.
type Supported struct {
	// Cache: the store of BEST_EFFORT counts and cached rollups (CACHE,
	// storage.cache).
	Cache []string
	// Rollup: the store of rollup checkpoints (COUNTER_ROLLUP,
	// storage.counter_rollup).
	Rollup []string
	// Events: the time-series event store (EVENT_STORAGE, storage.event_storage).
	Events []string
}

// DefaultSupported returns the storage types of this build: the in-process
// MEMORY cache, and the EMBEDDED store for rollups and events. CASSANDRA and
// EVCACHE, which the article's examples name, have no backend here.
func DefaultSupported() Supported {
	return Supported{
		Cache:  []string{abacus.StorageMemory},
		Rollup: []string{abacus.StorageEmbedded},
		Events: []string{abacus.StorageEmbedded},
	}
}

// withDefaults returns s with each empty role list replaced by this build's.
func (s Supported) withDefaults() Supported {
	d := DefaultSupported()
	if len(s.Cache) == 0 {
		s.Cache = d.Cache
	}
	if len(s.Rollup) == 0 {
		s.Rollup = d.Rollup
	}
	if len(s.Events) == 0 {
		s.Events = d.Events
	}
	return s
}

// role describes one of a namespace's three stores under the names both file
// formats use for it.
type role struct {
	id    string // the article's persistence_configuration id
	field string // the native format's key under storage
	of    func(*abacus.Storage) *abacus.PhysicalStorage
	types func(Supported) []string
	// durableOnly: only EVENTUAL and ACCURATE namespaces use the store, so a
	// BEST_EFFORT namespace may name any type there.
	durableOnly bool
}

var roles = [...]role{
	{"CACHE", "cache", func(s *abacus.Storage) *abacus.PhysicalStorage { return &s.Cache },
		func(s Supported) []string { return s.Cache }, false},
	{"COUNTER_ROLLUP", "counter_rollup", func(s *abacus.Storage) *abacus.PhysicalStorage { return &s.Rollup },
		func(s Supported) []string { return s.Rollup }, true},
	{"EVENT_STORAGE", "event_storage", func(s *abacus.Storage) *abacus.PhysicalStorage { return &s.Events },
		func(s Supported) []string { return s.Events }, true},
}

// roleByID returns the role with the article id, or nil.
func roleByID(id string) *role {
	for i := range roles {
		if roles[i].id == id {
			return &roles[i]
		}
	}
	return nil
}

// roleByField returns the role with the native field name, or nil.
func roleByField(field string) *role {
	for i := range roles {
		if roles[i].field == field {
			return &roles[i]
		}
	}
	return nil
}

// checkStorage reports a storage type the build cannot serve for role r.
func checkStorage(r *role, typ string, sup Supported) *problem {
	types := r.types(sup)
	if slices.Contains(types, typ) {
		return nil
	}
	return &problem{
		field: "storage." + r.field + ".type",
		msg: r.id + " storage type " + strconv.Quote(typ) +
			" is not supported by this node; supported: " + strings.Join(types, ", "),
	}
}
