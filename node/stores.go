package node

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/backends"
	"github.com/abacus-dev/abacus/cache/memcached"
	"github.com/abacus-dev/abacus/cache/memory"
	"github.com/abacus-dev/abacus/cache/redis"
	"github.com/abacus-dev/abacus/controlplane"
	"github.com/abacus-dev/abacus/embedded"
	"github.com/abacus-dev/abacus/postgres"
)

// stores are the stores a node was configured with.
type stores struct {
	router     *backends.Router
	namespaces abacus.NamespaceStore
	embedded   *embedded.Store // nil with --postgres
	closers    []io.Closer
}

// supported returns the storage types a node with cfg serves; the first of
// each list is the default for namespaces that name none. With PostgreSQL,
// events and rollups live there (the embedded store is node-local, so it
// cannot serve a namespace that several nodes share); a shared cache, when
// configured, is the default cache, so BEST_EFFORT counts agree across nodes.
func supported(cfg Config) controlplane.Supported {
	s := controlplane.Supported{Hints: map[string]string{}}
	if cfg.Postgres != "" {
		s.Rollup = []string{abacus.StoragePostgres}
		s.Events = []string{abacus.StoragePostgres}
		s.Hints[abacus.StorageEmbedded] = "abacusd without --postgres (the embedded store is one node's)"
	} else {
		s.Rollup = []string{abacus.StorageEmbedded}
		s.Events = []string{abacus.StorageEmbedded}
		s.Hints[abacus.StoragePostgres] = "abacusd --postgres URL"
	}
	if len(cfg.Redis) > 0 {
		s.Cache = append(s.Cache, abacus.StorageRedis)
	} else {
		s.Hints[abacus.StorageRedis] = "abacusd --redis ADDR"
	}
	if len(cfg.Memcached) > 0 {
		s.Cache = append(s.Cache, abacus.StorageMemcached)
	} else {
		s.Hints[abacus.StorageMemcached] = "abacusd --memcached ADDR"
		s.Hints[abacus.StorageEVCache] = "abacusd --memcached ADDR (EVCACHE is served by memcached)"
	}
	s.Cache = append(s.Cache, abacus.StorageMemory)
	return s
}

// openStores opens every store cfg names. On error it closes what it opened.
func openStores(ctx context.Context, cfg Config) (st *stores, err error) {
	st = &stores{router: &backends.Router{
		Events:       map[string]abacus.EventStore{},
		Rollups:      map[string]abacus.RollupStore{},
		Caches:       map[string]abacus.Cache{},
		RollupCaches: map[string]abacus.RollupCache{},
	}}
	// The error returns set st to nil: close what was opened through a
	// copy of the pointer.
	opened := st
	defer func() {
		if err != nil {
			_ = opened.close()
		}
	}()
	r := st.router
	mem := memory.New(memory.Options{})
	r.Caches[abacus.StorageMemory], r.RollupCaches[abacus.StorageMemory] = mem, mem

	if cfg.Postgres != "" {
		pg, err := postgres.Open(ctx, cfg.Postgres, postgres.Options{Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL: %w", err)
		}
		st.closers = append(st.closers, closerFunc(func() error { pg.Close(); return nil }))
		r.Events[abacus.StoragePostgres], r.Rollups[abacus.StoragePostgres] = pg, pg
		st.namespaces = pg
	} else {
		emb, err := embedded.Open(cfg.DataDir, embedded.Options{Logger: cfg.Logger, WALSyncInterval: cfg.WALSyncInterval})
		if err != nil {
			return nil, fmt.Errorf("open store in %s: %w", cfg.DataDir, err)
		}
		st.closers = append(st.closers, emb)
		st.embedded = emb
		r.Events[abacus.StorageEmbedded], r.Rollups[abacus.StorageEmbedded] = emb, emb
		st.namespaces = emb
	}
	if len(cfg.Redis) > 0 {
		rc, err := redis.Dial(cfg.Redis, cfg.RedisCluster, redis.Options{})
		if err != nil {
			return nil, fmt.Errorf("connect to Redis: %w", err)
		}
		st.closers = append(st.closers, rc)
		r.Caches[abacus.StorageRedis], r.RollupCaches[abacus.StorageRedis] = rc, rc
	}
	if len(cfg.Memcached) > 0 {
		mc, err := memcached.New(cfg.Memcached, memcached.Options{})
		if err != nil {
			return nil, fmt.Errorf("connect to memcached: %w", err)
		}
		st.closers = append(st.closers, mc)
		r.Caches[abacus.StorageMemcached], r.RollupCaches[abacus.StorageMemcached] = mc, mc
	}
	return st, nil
}

// healthy reports whether the node's own store can serve: an embedded store
// whose WAL failed refuses every call until the process restarts. Shared
// stores are not consulted: their outages are reported per request as
// Unavailable, and a node that cannot reach them is still the right place to
// answer from caches.
func (st *stores) healthy() bool {
	return st.embedded == nil || st.embedded.Err() == nil
}

func (st *stores) close() error {
	var errs []error
	for i := len(st.closers) - 1; i >= 0; i-- {
		errs = append(errs, st.closers[i].Close())
	}
	st.closers = nil
	return errors.Join(errs...)
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
