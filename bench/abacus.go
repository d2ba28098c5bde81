package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/client"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// abacusTarget drives an abacusd node through the Go client's
// abacus.CounterService, with none of the client's batching or retries, so
// that each op makes the RPCs its target names and nothing more.
//
// Unary (abacus-unary): one AddCount or GetCount RPC per counter; a batch op
// (ScenarioBatch) makes its RPCs one after the other. Batch (abacus-batch):
// one AddCounts or GetCounts RPC per op, of Config.BatchSize counters in
// every scenario.
//
// Every add carries an idempotency token, as a careful client's would: the
// client's unique token and the current time. Nothing is retried, so that
// errors show in the report.
type abacusTarget struct {
	label string
	opts  Options
	batch bool
	c     *client.Client
	svc   abacus.CounterService
	info  string
}

func newAbacusTarget(label string, batch bool, o Options) *abacusTarget {
	return &abacusTarget{label: label, opts: o, batch: batch}
}

func (t *abacusTarget) Name() string     { return t.label }
func (t *abacusTarget) Batched() bool    { return t.batch }
func (t *abacusTarget) Describe() string { return t.info }

// ServerCPU reads the node's CPU from its /metrics (Options.MetricsURL).
func (t *abacusTarget) ServerCPU() CPUSource { return t.opts.metricsCPU() }

func (t *abacusTarget) Setup(ctx context.Context, w Workload) error {
	c, err := client.New(t.opts.Abacus, append([]client.Option{
		// grpc-go multiplexes every call over one HTTP/2 connection; more
		// connections (--conns) spread the load over several.
		client.WithConns(max(t.opts.Conns, 1)),
		// One op, one RPC: no natural batches, no retries; and with no
		// retries the client needs no counter types, so it looks none up.
		client.WithBatching(false),
		client.WithRetries(0),
		client.WithBestEffortRetries(true),
		// The run bounds each op (Config.Timeout).
		client.WithAttemptTimeout(0),
	}, t.opts.ClientOptions...)...)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", t.opts.Abacus, err)
	}
	t.c, t.svc = c, c.Service()
	nameCounters(w.Counters)
	t.info, err = ensureNamespace(ctx, c.Namespaces(), t.opts.Namespace, t.opts.NamespaceType)
	return err
}

func (t *abacusTarget) Do(ctx context.Context, _ int, op Op) error {
	ns := t.opts.Namespace
	if t.batch {
		if op.Read {
			refs := make([]abacus.Ref, len(op.Counters))
			for i, c := range op.Counters {
				refs[i] = abacus.Ref{Namespace: ns, Counter: counterName(c)}
			}
			_, err := t.svc.GetBatch(ctx, refs)
			return err
		}
		adds := make([]abacus.AddRequest, len(op.Counters))
		for i, c := range op.Counters {
			adds[i] = abacus.AddRequest{Namespace: ns, Counter: counterName(c), Delta: 1}
		}
		_, err := t.svc.AddBatch(ctx, adds)
		return err
	}
	for _, c := range op.Counters {
		var err error
		if op.Read {
			_, err = t.svc.Get(ctx, abacus.Ref{Namespace: ns, Counter: counterName(c)})
		} else {
			_, err = t.svc.Add(ctx, abacus.AddRequest{Namespace: ns, Counter: counterName(c), Delta: 1})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *abacusTarget) Close() error {
	if t.c == nil {
		return nil
	}
	return t.c.Close()
}

// counterName is the abacus counter name of counter index i: from the
// table of the names the abacus targets' Setup made, so that an op costs
// the generator no allocation for it.
func counterName(i int) string {
	if t := counterNames.Load(); t != nil && i < len(*t) {
		return (*t)[i]
	}
	return "c" + strconv.Itoa(i)
}

// counterNames holds the names of counters 0 to n-1 for the largest n a
// setup has asked for, up to maxNamedCounters.
var (
	counterNames   atomic.Pointer[[]string]
	counterNamesMu sync.Mutex
)

// maxNamedCounters bounds the table: 1M names is about 24 MB.
const maxNamedCounters = 1 << 20

// nameCounters makes sure counterName of 0 to n-1 needs no allocation.
func nameCounters(n int) {
	n = min(n, maxNamedCounters)
	counterNamesMu.Lock()
	defer counterNamesMu.Unlock()
	old := counterNames.Load()
	if old != nil && len(*old) >= n {
		return
	}
	t := make([]string, n)
	for i := range t {
		t[i] = "c" + strconv.Itoa(i)
	}
	counterNames.Store(&t)
}

// ensureNamespace creates namespace name with counter type typ unless it
// exists, and describes it for the report. An existing namespace is used as
// it is, whatever its type: the description says which type it has.
func ensureNamespace(ctx context.Context, nsc abacusv1.NamespaceServiceClient, name, typ string) (string, error) {
	got, err := nsc.GetNamespace(ctx, &abacusv1.GetNamespaceRequest{Name: name})
	if status.Code(err) == codes.NotFound {
		ct, ok := abacusv1.CounterType_value[strings.ToUpper(typ)]
		if !ok || ct == 0 {
			return "", fmt.Errorf("--type must be BEST_EFFORT, EVENTUAL or ACCURATE, not %q", typ)
		}
		var created *abacusv1.CreateNamespaceResponse
		created, err = nsc.CreateNamespace(ctx, &abacusv1.CreateNamespaceRequest{Namespace: &abacusv1.Namespace{
			Name: name, CounterType: abacusv1.CounterType(ct), Description: "created by abacus bench",
		}})
		if status.Code(err) == codes.AlreadyExists {
			// Created meanwhile by another bench: use it.
			return ensureNamespace(ctx, nsc, name, typ)
		}
		if err != nil {
			return "", fmt.Errorf("create namespace %s: %w", name, err)
		}
		return fmt.Sprintf("namespace %s (%s, created)", name, created.GetNamespace().GetCounterType()), nil
	}
	if err != nil {
		return "", fmt.Errorf("get namespace %s: %w", name, err)
	}
	return fmt.Sprintf("namespace %s (%s)", name, got.GetNamespace().GetCounterType()), nil
}

// runID returns a random id, so that the counters of one convergence run
// are fresh: no earlier run wrote them.
func runID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
