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
	// Hints says, for storage types the node does not serve but could, what
	// would make it serve them ("abacusd --memcached ADDR"); refusals quote
	// it. Nil means no hints.
	Hints map[string]string
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
	// scope is the article's scope of the entry: the abstraction layer that
	// reads it.
	scope string
}

var roles = [...]role{
	{"CACHE", "cache", func(s *abacus.Storage) *abacus.PhysicalStorage { return &s.Cache },
		func(s Supported) []string { return s.Cache }, false, "dal=counter"},
	{"COUNTER_ROLLUP", "counter_rollup", func(s *abacus.Storage) *abacus.PhysicalStorage { return &s.Rollup },
		func(s Supported) []string { return s.Rollup }, true, "dal=counter"},
	{"EVENT_STORAGE", "event_storage", func(s *abacus.Storage) *abacus.PhysicalStorage { return &s.Events },
		func(s Supported) []string { return s.Events }, true, "dal=ts"},
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

// knownTypes are the storage types some abacus build can serve; the others
// (CASSANDRA, which the article names, or a typo) have no backend at all.
var knownTypes = []string{abacus.StorageMemory, abacus.StorageEmbedded, abacus.StoragePostgres,
	abacus.StorageRedis, abacus.StorageMemcached, abacus.StorageEVCache}

// storageProblem reports, as one problem, every store of ns whose type the
// node cannot serve: each such type with the roles that name it, what would
// make the node serve it, and the types the node serves for those roles. A
// namespace pasted from the article names CASSANDRA twice, and one message
// that says so reads better than one per store. The problem's field is the
// store's when only one store is refused, so that a file's path points at
// it, and "storage" otherwise. BEST_EFFORT namespaces use only the cache, so
// their other stores are not checked.
func storageProblem(ns *abacus.Namespace, sup Supported) *problem {
	var types []string              // refused types, in role order
	byType := map[string][]string{} // refused type -> roles naming it
	var refused []*role
	for i := range roles {
		r := &roles[i]
		if r.durableOnly && ns.Type == abacus.BestEffort {
			continue
		}
		typ := r.of(&ns.Storage).Type
		if slices.Contains(r.types(sup), typ) {
			continue
		}
		if _, seen := byType[typ]; !seen {
			types = append(types, typ)
		}
		byType[typ] = append(byType[typ], r.id)
		refused = append(refused, r)
	}
	if len(refused) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("this node cannot serve")
	for i, typ := range types {
		switch {
		case i == 0:
		case i == len(types)-1:
			b.WriteString(" or")
		default:
			b.WriteString(",")
		}
		b.WriteString(" " + strconv.Quote(typ) + " (" + strings.Join(byType[typ], ", ") + ")")
	}
	var why []string
	for _, typ := range types {
		hint, ok := sup.Hints[typ]
		switch up := strings.ToUpper(typ); {
		case ok:
			why = append(why, typ+" needs "+hint)
		case up != typ && slices.Contains(knownTypes, up):
			why = append(why, "types are upper case: did you mean "+strconv.Quote(up)+"?")
		case !slices.Contains(knownTypes, typ):
			why = append(why, "abacus has no "+strconv.Quote(typ)+" backend")
		}
	}
	if len(why) > 0 {
		b.WriteString(": " + strings.Join(why, "; "))
	}
	b.WriteString("; it serves ")
	for i, r := range refused {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(r.id + ": " + strings.Join(r.types(sup), ", "))
	}
	field := "storage"
	if len(refused) == 1 {
		field = "storage." + refused[0].field + ".type"
	}
	return &problem{field: field, msg: b.String()}
}
