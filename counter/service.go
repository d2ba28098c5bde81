// Package counter is the counter service: the three counter types,
// idempotency tokens and the accept window, over the store interfaces of
// package abacus. Its Service implements abacus.CounterService.
package counter

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"time"

	"github.com/abacus-dev/abacus"
)

// Backends gives the stores of a namespace, chosen by the storage types in its
// configuration. Its methods never return nil: a store the node lacks is
// represented by one that fails with Unavailable.
type Backends interface {
	EventStore(ns *abacus.Namespace) abacus.EventStore
	RollupStore(ns *abacus.Namespace) abacus.RollupStore
	Cache(ns *abacus.Namespace) abacus.Cache
	RollupCache(ns *abacus.Namespace) abacus.RollupCache
	// AllRollupStores returns each distinct rollup store once, for recovery.
	AllRollupStores() []abacus.RollupStore
}

// Config wires a Service to its stores. Namespaces and Backends are required.
type Config struct {
	Namespaces abacus.NamespaceStore
	Backends   Backends
	// Complete fills defaults into a namespace and validates it, reporting every
	// problem at once (controlplane.Complete in the daemon).
	Complete func(*abacus.Namespace) error
	// CheckUpdate completes an update, keeping old values for the fields it
	// leaves zero, and refuses changes to immutable namespace settings
	// (controlplane.CheckUpdate in the daemon).
	CheckUpdate func(old, updated *abacus.Namespace) error
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// RetentionFailed, if set, is called with the namespace and the error
	// each time a namespace's retention fails (the daemon counts them in
	// abacus_retention_failures_total).
	RetentionFailed func(namespace string, err error)
}

var _ abacus.CounterService = (*Service)(nil)

// Service implements the counter and namespace operations of abacus. It is safe
// for concurrent use.
type Service struct {
	cfg  Config
	reg  *registry
	now  func() time.Time
	log  *slog.Logger
	sig  func(ns *abacus.Namespace, counter string, stale bool)
	drop func(nsID uint64)
}

// New returns a Service. Call Load before serving so that stored namespaces are
// known, and SetPipeline to connect the rollup pipeline.
func New(cfg Config) *Service {
	s := &Service{cfg: cfg, reg: newRegistry(), now: cfg.Now, log: cfg.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.cfg.Complete == nil {
		s.cfg.Complete = func(*abacus.Namespace) error { return nil }
	}
	if s.cfg.CheckUpdate == nil {
		s.cfg.CheckUpdate = func(_, _ *abacus.Namespace) error { return nil }
	}
	s.sig = func(*abacus.Namespace, string, bool) {}
	s.drop = func(uint64) {}
	return s
}

// SetPipeline connects the rollup pipeline: signal is called, without
// blocking, after every durable write and every read of an EVENTUAL or
// ACCURATE counter, with stale true when the count this node serves may miss
// a write (after a write, or a read that found no cached count) and false
// when it has seen none (a read served from the rollup cache, Recover);
// forget is called when a namespace is deleted. The pipeline is created after
// the Service because its work function is Service.Rollup. Call it before
// serving.
func (s *Service) SetPipeline(signal func(ns *abacus.Namespace, counter string, stale bool), forget func(nsID uint64)) {
	s.sig, s.drop = signal, forget
}

// cacheKey names a counter in the caches. The namespace ID, never reused,
// keeps a re-created namespace from seeing a deleted one's counts.
func cacheKey(ns *abacus.Namespace, counter string) string {
	return strconv.FormatUint(ns.ID, 36) + ":" + counter
}

// namespace resolves a namespace name on the hot path.
func (s *Service) namespace(name string) (*abacus.Namespace, error) {
	ns, ok := s.reg.get(name)
	if !ok {
		if err := abacus.CheckNamespaceName(name); err != nil {
			return nil, err
		}
		return nil, abacus.Errorf(abacus.NotFound, "namespace %q not found", name)
	}
	return ns, nil
}

// newToken returns a server-assigned token. It is random, so a write that
// carried no token is not retry-safe: a retry is a new write.
func (s *Service) newToken(now time.Time) abacus.Token {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return abacus.Token{ID: "abacus-" + hex.EncodeToString(b[:]), Time: now}
}

// checkWindow refuses an event time outside the namespace's accept window
// [TS-3]: older events belong to the immutable window that rollups aggregate.
func (s *Service) checkWindow(ns *abacus.Namespace, t, now time.Time) error {
	from, to := ns.AcceptWindow(now)
	if t.Before(from) || !t.Before(to) {
		return abacus.Errorf(abacus.FailedPrecondition,
			"generation_time %s is outside the accept window of namespace %q: it must be no older than accept_limit (%s) and at most %s in the future, i.e. in [%s, %s) at server time %s",
			t.UTC().Format(time.RFC3339Nano), ns.Name, ns.AcceptLimit, abacus.FutureLimit,
			from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// count converts a folded Sum to the int64 the API returns, refusing to wrap.
func count(ns *abacus.Namespace, counter string, sum abacus.Sum) (int64, error) {
	n, ok := sum.Int64()
	if !ok {
		return 0, abacus.Errorf(abacus.OutOfRange, "the count of %q in namespace %q does not fit in int64", counter, ns.Name)
	}
	return n, nil
}
