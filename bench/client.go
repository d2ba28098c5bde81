package bench

import (
	"context"
	"fmt"
	"sync"

	"github.com/abacus-dev/abacus/client"
)

// clientTarget drives abacus through the Go client with natural batching:
// concurrent AddCount (or GetCount) calls of the callers are coalesced into
// AddCounts (GetCounts) RPCs while one is in flight. A batch op uses the
// client's AddCounts / GetCounts. The client sets the idempotency tokens and
// retries (Options.Retries) as an application using it would.
type clientTarget struct {
	label string
	opts  Options
	c     *client.Client
	info  string

	mu    sync.Mutex
	since client.Stats // the client's counters when the measured phase began
}

func newClientTarget(label string, o Options) *clientTarget {
	return &clientTarget{label: label, opts: o}
}

func (t *clientTarget) Name() string { return t.label }

// ServerCPU reads the node's CPU from its /metrics (Options.MetricsURL).
func (t *clientTarget) ServerCPU() CPUSource { return t.opts.metricsCPU() }

func (t *clientTarget) Setup(ctx context.Context, w Workload) error {
	opts := []client.Option{client.WithBatching(true), client.WithRetries(t.opts.Retries)}
	if t.opts.Conns > 0 {
		opts = append(opts, client.WithConns(t.opts.Conns))
	}
	c, err := client.New(t.opts.Abacus, append(opts, t.opts.ClientOptions...)...)
	if err != nil {
		return err
	}
	t.c = c
	nameCounters(w.Counters)
	t.info, err = ensureNamespace(ctx, c.Namespaces(), t.opts.Namespace, t.opts.NamespaceType)
	return err
}

func (t *clientTarget) Do(ctx context.Context, _ int, op Op) error {
	ns := t.opts.Namespace
	if len(op.Counters) == 1 {
		if op.Read {
			_, err := t.c.GetCount(ctx, ns, counterName(op.Counters[0]))
			return err
		}
		return t.c.AddCount(ctx, ns, counterName(op.Counters[0]), 1)
	}
	if op.Read {
		refs := make([]client.Ref, len(op.Counters))
		for i, c := range op.Counters {
			refs[i] = client.Ref{Namespace: ns, Counter: counterName(c)}
		}
		_, err := t.c.GetCounts(ctx, refs)
		return err
	}
	adds := make([]client.Add, len(op.Counters))
	for i, c := range op.Counters {
		adds[i] = client.Add{Namespace: ns, Counter: counterName(c), Delta: 1}
	}
	return t.c.AddCounts(ctx, adds)
}

// StartMeasure notes the client's counters as the measured phase begins, so
// that Describe reports the natural batch sizes of that phase alone.
func (t *clientTarget) StartMeasure() {
	t.mu.Lock()
	t.since = t.c.Stats()
	t.mu.Unlock()
}

// Describe adds the average natural batch sizes (items per RPC) to the
// namespace description: they show how much the batching coalesced.
func (t *clientTarget) Describe() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.c.Stats()
	d := t.info
	if n := s.AddRPCs - t.since.AddRPCs; n > 0 {
		d += fmt.Sprintf(", %.1f adds/RPC", float64(s.AddItems-t.since.AddItems)/float64(n))
	}
	if n := s.GetRPCs - t.since.GetRPCs; n > 0 {
		d += fmt.Sprintf(", %.1f gets/RPC", float64(s.GetItems-t.since.GetItems)/float64(n))
	}
	if r := s.Retries - t.since.Retries; r > 0 {
		d += fmt.Sprintf(", %d retries", r)
	}
	return d
}

func (t *clientTarget) Close() error {
	if t.c == nil {
		return nil
	}
	return t.c.Close()
}
