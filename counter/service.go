// Package counter is the counter service: the three counter types,
// idempotency tokens and the accept window, over the store interfaces of
// package abacus. Its Service implements abacus.CounterService. It writes
// and reads through abacus.Backends and tells the rollup pipeline, through a
// Signaler, which durable counters were touched; package rollup does the
// rollups. ACCURATE reads add rollup.Fold of the events after a checkpoint.
package counter

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/rollup"
)

// Signaler is what the Service tells the rollup pipeline
// (rollup.Pipeline implements it). Its calls never block on a rollup.
type Signaler interface {
	// Signal asks for a rollup of a counter whose count, as this node
	// serves it, may miss a write: after a durable write, or a read that
	// found no cached count.
	Signal(k rollup.Key) bool
	// SignalAll is Signal for the counters of one batch write.
	SignalAll(ks []rollup.Key)
	// Touch asks for a rollup of a counter the node has seen no new write
	// of: a read served from the rollup cache, or recovery after a restart.
	Touch(k rollup.Key) bool
	// RemoveNamespace forgets the signals of a deleted namespace.
	RemoveNamespace(nsID uint64)
}

// Config wires a Service to its stores. Namespaces and Backends are
// required.
type Config struct {
	Namespaces abacus.NamespaceStore
	Backends   abacus.Backends
	// Signaler receives the rollup signals of writes and reads of EVENTUAL
	// and ACCURATE counters, and the deletions of namespaces. Default nil:
	// signals go nowhere, and EVENTUAL counts move only when something else
	// rolls the counters up (tests that drive rollups themselves).
	Signaler Signaler
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
	// RateLimited, if set, is called each time a namespace's rate limit
	// refuses a call, with the kind of limit ("requests" or "increments").
	RateLimited func(namespace, kind string)
	// RetentionFailed, if set, is called with the namespace and the error
	// each time a namespace's retention fails (the daemon counts them in
	// abacus_retention_failures_total).
	RetentionFailed func(namespace string, err error)
}

var _ abacus.CounterService = (*Service)(nil)

// Service implements the counter and namespace operations of abacus. It is safe
// for concurrent use.
type Service struct {
	cfg    Config
	reg    *registry
	now    func() time.Time
	log    *slog.Logger
	limits limiters
	// roll rolls up, before retention deletes their events, counters whose
	// checkpoints do not cover them yet.
	roll *rollup.Roller
	// safe spares the overflow check its checkpoint read (see overflowMemo).
	safe overflowMemo
}

// New returns a Service. Call Load before serving so that stored namespaces are
// known.
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
	if s.cfg.Signaler == nil {
		s.cfg.Signaler = noSignals{}
	}
	s.roll = &rollup.Roller{Stores: cfg.Backends, Now: s.now}
	return s
}

// noSignals is the Signaler of a Service with no pipeline.
type noSignals struct{}

func (noSignals) Signal(rollup.Key) bool { return false }
func (noSignals) SignalAll([]rollup.Key) {}
func (noSignals) Touch(rollup.Key) bool  { return false }
func (noSignals) RemoveNamespace(uint64) {}

// signal tells the pipeline of a touch of an EVENTUAL or ACCURATE counter:
// stale says whether the count this node serves may miss a write (see
// Signaler).
func (s *Service) signal(ns *abacus.Namespace, counter string, stale bool) {
	k := rollup.Key{NS: ns, Counter: counter}
	if stale {
		s.cfg.Signaler.Signal(k)
	} else {
		s.cfg.Signaler.Touch(k)
	}
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
