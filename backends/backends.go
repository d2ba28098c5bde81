// Package backends routes each namespace to the stores its configuration
// names (EMBEDDED, POSTGRES, MEMORY, REDIS, MEMCACHED), among those the node
// was started with.
package backends

import (
	"context"
	"time"

	"github.com/abacus-dev/abacus"
)

// Router implements abacus.Backends over the stores of one node, keyed by
// storage type. A namespace naming a type the node has no store for gets a
// store whose every call fails with Unavailable and says which flag is
// missing, so one misconfigured node degrades only that namespace.
type Router struct {
	// Events, Rollups, Caches and RollupCaches map a storage type (e.g.
	// abacus.StorageEmbedded) to the store serving it.
	Events       map[string]abacus.EventStore
	Rollups      map[string]abacus.RollupStore
	Caches       map[string]abacus.Cache
	RollupCaches map[string]abacus.RollupCache
}

// EventStore returns the event store of ns.
func (r *Router) EventStore(ns *abacus.Namespace) abacus.EventStore {
	if s, ok := r.Events[ns.Storage.Events.Type]; ok {
		return s
	}
	return missing(ns.Storage.Events.Type)
}

// RollupStore returns the rollup store of ns.
func (r *Router) RollupStore(ns *abacus.Namespace) abacus.RollupStore {
	if s, ok := r.Rollups[ns.Storage.Rollup.Type]; ok {
		return s
	}
	return missing(ns.Storage.Rollup.Type)
}

// Cache returns the cache of ns's BEST_EFFORT counts.
func (r *Router) Cache(ns *abacus.Namespace) abacus.Cache {
	if s, ok := r.Caches[ns.Storage.Cache.Type]; ok {
		return s
	}
	return missing(ns.Storage.Cache.Type)
}

// RollupCache returns the cache of ns's rollup checkpoints.
func (r *Router) RollupCache(ns *abacus.Namespace) abacus.RollupCache {
	if s, ok := r.RollupCaches[ns.Storage.Cache.Type]; ok {
		return s
	}
	return missing(ns.Storage.Cache.Type)
}

// AllRollupStores returns each distinct rollup store once.
func (r *Router) AllRollupStores() []abacus.RollupStore {
	var out []abacus.RollupStore
	seen := map[abacus.RollupStore]bool{}
	for _, s := range r.Rollups {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// flags names the abacusd flag that provides each shared store type.
var flags = map[string]string{
	abacus.StoragePostgres:  "--postgres",
	abacus.StorageRedis:     "--redis",
	abacus.StorageMemcached: "--memcached",
}

// missing is every store of a type the node was not started with.
type missing string

func (m missing) err() error {
	if f, ok := flags[string(m)]; ok {
		return abacus.Errorf(abacus.Unavailable, "this node was started without %s, so it cannot serve %s storage; use a node that has it", f, string(m))
	}
	return abacus.Errorf(abacus.Unavailable, "this node has no %q storage", string(m))
}

func (m missing) ListCounters(context.Context, *abacus.Namespace, string, string, int) ([]abacus.CounterState, error) {
	return nil, m.err()
}
func (m missing) RepairCheckpoint(context.Context, *abacus.Namespace, string, abacus.Checkpoint, abacus.Checkpoint) (abacus.Checkpoint, bool, error) {
	return abacus.Checkpoint{}, false, m.err()
}
func (m missing) RetainedBase(context.Context, *abacus.Namespace, string) (abacus.Checkpoint, error) {
	return abacus.Checkpoint{}, m.err()
}
func (m missing) SetRetainedBase(context.Context, *abacus.Namespace, string, abacus.Checkpoint) error {
	return m.err()
}
func (m missing) Append(context.Context, []abacus.Write) error { return m.err() }
func (m missing) Scan(context.Context, *abacus.Namespace, string, abacus.Range, func(abacus.Event) error) error {
	return m.err()
}
func (m missing) Counters(context.Context, *abacus.Namespace, time.Time, time.Time, func(string) error) error {
	return m.err()
}
func (m missing) DeleteSlices(context.Context, *abacus.Namespace, time.Time) (int, error) {
	return 0, m.err()
}
func (m missing) DropNamespace(context.Context, *abacus.Namespace) error { return m.err() }
func (m missing) RollupState(context.Context, *abacus.Namespace, string) (abacus.RollupState, error) {
	return abacus.RollupState{}, m.err()
}
func (m missing) Fence(context.Context, *abacus.Namespace, string, time.Time) error {
	return m.err()
}
func (m missing) AdvanceCheckpoint(context.Context, *abacus.Namespace, string, abacus.Checkpoint, abacus.Checkpoint) (abacus.Checkpoint, error) {
	return abacus.Checkpoint{}, m.err()
}
func (m missing) BehindCounters(context.Context, func(uint64, string) error) error { return m.err() }
func (m missing) Add(context.Context, string, int64, time.Duration) (int64, error) {
	return 0, m.err()
}
func (m missing) Get(context.Context, string) (int64, error) { return 0, m.err() }
func (m missing) Delete(context.Context, string) error       { return m.err() }
func (m missing) GetCheckpoint(context.Context, string) (abacus.Checkpoint, bool, error) {
	return abacus.Checkpoint{}, false, m.err()
}
func (m missing) PutCheckpoint(context.Context, string, abacus.Checkpoint, time.Duration) error {
	return m.err()
}
