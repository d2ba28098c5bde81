package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/abacus-dev/abacus/client"
)

// Names of the targets NewTarget builds.
const (
	// TargetRedis: INCRBY / GET through go-redis (batches: one pipeline / MGET).
	TargetRedis = "redis"
	// TargetMemcached: incr / get through gomemcache, keys created first
	// (batches: one incr per counter, memcached has no multi-incr; GetMulti).
	TargetMemcached = "memcached"
	// TargetPGUpdate: PostgreSQL, one row per counter,
	// UPDATE ... SET n = n + $1 WHERE id = $2 / SELECT n.
	TargetPGUpdate = "pg-update"
	// TargetPGEvents: PostgreSQL, an insert-only events table,
	// INSERT / SELECT SUM(delta).
	TargetPGEvents = "pg-events"
	// TargetAbacusUnary: abacus, one AddCount (with an idempotency token) or
	// GetCount RPC per counter.
	TargetAbacusUnary = "abacus-unary"
	// TargetAbacusClient: abacus through the Go client (package client),
	// whose natural batching coalesces concurrent calls.
	TargetAbacusClient = "abacus-client"
	// TargetAbacusBatch: abacus, one AddCounts / GetCounts RPC per op of
	// Config.BatchSize counters.
	TargetAbacusBatch = "abacus-batch"
)

// TargetNames lists every target, in the order Compare runs them by default.
var TargetNames = []string{
	TargetRedis, TargetMemcached, TargetPGUpdate, TargetPGEvents,
	TargetAbacusUnary, TargetAbacusClient, TargetAbacusBatch,
}

// Op is one operation of the generator: an add of 1 to each of Counters,
// or a read of each of them.
type Op struct {
	// Read is true for a read, false for an add.
	Read bool
	// Counters are counter indexes in [0, Config.Counters): one for a
	// single op, a batch otherwise. An index may repeat within a batch.
	// The slice is reused for the next op: a Target must not keep it.
	Counters []int
}

// Workload is what a target is set up for.
type Workload struct {
	// Scenario is the run's scenario (a target may prepare differently for
	// reads and writes, e.g. create keys that incr needs).
	Scenario string
	// Counters is the number of distinct counters.
	Counters int
	// Callers is the number of concurrent callers; targets size their
	// connection pools from it so that no caller waits for a connection.
	Callers int
	// Timeout bounds each op.
	Timeout time.Duration
}

// Target is one system under test. Do is called concurrently by Callers
// goroutines; caller is the calling goroutine's index in [0, Callers), which
// a target may use to pick a connection without contention.
type Target interface {
	// Name is the target's label in reports.
	Name() string
	// Setup connects and creates what the workload needs (keys, tables,
	// rows, a namespace). It is called once before any run; a target is
	// then run any number of times.
	Setup(ctx context.Context, w Workload) error
	// Do performs one op. An error is counted by its code (see ErrorCode).
	Do(ctx context.Context, caller int, op Op) error
	// Close releases connections.
	Close() error
}

// Batcher is implemented by targets whose every call carries a batch
// (abacus-batch): the generator then gives each of their ops
// Config.BatchSize counters in every scenario, not only in ScenarioBatch.
type Batcher interface {
	Batched() bool
}

// Describer is implemented by targets with something to say about their
// setup (the namespace and its type), shown in the report.
type Describer interface {
	Describe() string
}

// measureStarter is implemented by targets that keep statistics of their
// own (the Go client's batch sizes): StartMeasure is called just before the
// measured phase, so that Describe covers that phase alone.
type measureStarter interface {
	StartMeasure()
}

func batched(t Target) bool {
	b, ok := t.(Batcher)
	return ok && b.Batched()
}

// Options holds what targets need to connect. A target whose address is
// empty cannot be built (NewTarget returns a *SkipError).
type Options struct {
	// Abacus is the gRPC address of an abacusd node.
	Abacus string
	// Redis is a Redis address (host:port).
	Redis string
	// Memcached is a memcached address (host:port).
	Memcached string
	// Postgres is a PostgreSQL connection URL.
	Postgres string
	// Namespace is the abacus namespace; created if missing, with
	// NamespaceType. Default "bench".
	Namespace string
	// NamespaceType is BEST_EFFORT, EVENTUAL (default) or ACCURATE.
	NamespaceType string
	// Conns is the number of gRPC connections of the abacus targets (for the
	// client, passed as client.WithConns); 0 = 1 for the unary and batch
	// targets and the client's default for the client.
	Conns int
	// Retries is passed to the Go client (client.WithRetries); the unary
	// and batch targets never retry, so that errors show.
	Retries int
	// KeyPrefix prefixes the Redis and memcached keys; default "bench:".
	KeyPrefix string
	// ClientOptions are added to every abacus target's client options: TLS
	// and an access token (client.WithTLS, client.WithToken).
	ClientOptions []client.Option
	// MetricsURL is the Prometheus /metrics URL of the abacusd node at
	// Abacus (on its HTTP port), from which the abacus targets read the
	// node's process_cpu_seconds_total before and after each measured
	// run; empty: no node CPU in the results.
	MetricsURL string
	// MetricsClient scrapes MetricsURL (e.g. with the node's TLS); nil:
	// a plain client with a 5s timeout.
	MetricsClient *http.Client
	// ServerPIDs maps a peer's name (redis, memcached, postgres) to the pid
	// of its server process, whose CPU (with its children's, for
	// PostgreSQL's backends) the peer targets read from /proc; missing:
	// no server CPU for that peer.
	ServerPIDs map[string]int
}

// Keys of Options.ServerPIDs.
const (
	PIDRedis     = "redis"
	PIDMemcached = "memcached"
	PIDPostgres  = "postgres"
)

// metricsCPU is the CPU source of the abacus targets, nil without a URL.
func (o Options) metricsCPU() CPUSource {
	if o.MetricsURL == "" {
		return nil
	}
	return &MetricsCPU{URL: o.MetricsURL, Client: o.MetricsClient}
}

// procCPU is the CPU source of the peer whose pid is ServerPIDs[key].
func (o Options) procCPU(key string) CPUSource {
	if pid, ok := o.ServerPIDs[key]; ok && pid > 0 {
		return &ProcCPU{PID: pid}
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = "bench"
	}
	if o.NamespaceType == "" {
		o.NamespaceType = "EVENTUAL"
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = "bench:"
	}
	return o
}

// SkipError says a target was not built because an address is missing.
type SkipError struct {
	Target string
	// Reason names the missing flag, e.g. "no --redis address".
	Reason string
}

func (e *SkipError) Error() string { return e.Target + ": skipped: " + e.Reason }

// Spec names a target and optionally overrides the scenario and the abacus
// namespace for it alone, written TARGET[/SCENARIO][@NAMESPACE]: for
// example "abacus-unary/get@bench_best" reads from namespace bench_best
// while the other targets of a comparison run the common scenario. This is
// what lets one interleaved run compare AddCount on one namespace with
// GetCount on another.
type Spec struct {
	Target    string
	Scenario  string
	Namespace string
}

// ParseSpec parses TARGET[/SCENARIO][@NAMESPACE].
func ParseSpec(s string) (Spec, error) {
	var sp Spec
	rest, ns, hasNS := strings.Cut(strings.TrimSpace(s), "@")
	if hasNS {
		if ns == "" {
			return Spec{}, fmt.Errorf("target %q: empty namespace after @", s)
		}
		sp.Namespace = ns
	}
	name, sc, hasSc := strings.Cut(rest, "/")
	if hasSc && !slices.Contains(Scenarios, sc) {
		return Spec{}, fmt.Errorf("target %q: scenario must be one of %v, not %q", s, Scenarios, sc)
	}
	sp.Target, sp.Scenario = name, sc
	if !slices.Contains(TargetNames, name) {
		return Spec{}, fmt.Errorf("unknown target %q; targets are %s", name, strings.Join(TargetNames, ", "))
	}
	if hasNS && !strings.HasPrefix(name, "abacus-") {
		return Spec{}, fmt.Errorf("target %q: only abacus targets take a namespace", s)
	}
	return sp, nil
}

// String returns the spec as ParseSpec reads it; it is the target's label.
func (s Spec) String() string {
	out := s.Target
	if s.Scenario != "" {
		out += "/" + s.Scenario
	}
	if s.Namespace != "" {
		out += "@" + s.Namespace
	}
	return out
}

// NewTarget builds the target of spec. It returns a *SkipError when the
// target's address is missing from opts.
func NewTarget(spec Spec, opts Options) (Target, error) {
	opts = opts.withDefaults()
	if spec.Namespace != "" {
		opts.Namespace = spec.Namespace
	}
	label := spec.String()
	need := func(addr, flag string) error {
		if addr == "" {
			return &SkipError{Target: label, Reason: "no " + flag + " address"}
		}
		return nil
	}
	switch spec.Target {
	case TargetRedis:
		if err := need(opts.Redis, "--redis"); err != nil {
			return nil, err
		}
		return newRedisTarget(label, opts), nil
	case TargetMemcached:
		if err := need(opts.Memcached, "--memcached"); err != nil {
			return nil, err
		}
		return newMemcachedTarget(label, opts), nil
	case TargetPGUpdate, TargetPGEvents:
		if err := need(opts.Postgres, "--postgres"); err != nil {
			return nil, err
		}
		return newPGTarget(label, spec.Target == TargetPGEvents, opts), nil
	case TargetAbacusUnary, TargetAbacusBatch:
		if err := need(opts.Abacus, "--addr"); err != nil {
			return nil, err
		}
		return newAbacusTarget(label, spec.Target == TargetAbacusBatch, opts), nil
	case TargetAbacusClient:
		if err := need(opts.Abacus, "--addr"); err != nil {
			return nil, err
		}
		return newClientTarget(label, opts), nil
	}
	return nil, errors.New("unknown target " + spec.Target)
}
