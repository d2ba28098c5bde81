package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// abacusTarget drives an abacusd node over gRPC with the generated stubs.
//
// Unary (abacus-unary): one AddCount or GetCount RPC per counter; a batch op
// (ScenarioBatch) makes its RPCs one after the other. Batch (abacus-batch):
// one AddCounts or GetCounts RPC per op, of Config.BatchSize counters in
// every scenario.
//
// Every add carries an idempotency token, as a careful client's would: a
// unique token and the current time. Nothing is retried, so that errors
// show in the report.
type abacusTarget struct {
	label  string
	opts   Options
	batch  bool
	conns  []*grpc.ClientConn
	stubs  []abacusv1.CounterServiceClient
	tokens tokenSource
	info   string
}

func newAbacusTarget(label string, batch bool, o Options) *abacusTarget {
	return &abacusTarget{label: label, opts: o, batch: batch}
}

func (t *abacusTarget) Name() string     { return t.label }
func (t *abacusTarget) Batched() bool    { return t.batch }
func (t *abacusTarget) Describe() string { return t.info }

func (t *abacusTarget) Setup(ctx context.Context, w Workload) error {
	// grpc-go multiplexes every call over one HTTP/2 connection; more
	// connections (--conns) spread the load over several.
	for range max(t.opts.Conns, 1) {
		conn, err := grpc.NewClient(t.opts.Abacus, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("--addr %q: %w", t.opts.Abacus, err)
		}
		t.conns = append(t.conns, conn)
		t.stubs = append(t.stubs, abacusv1.NewCounterServiceClient(conn))
	}
	var err error
	t.info, err = ensureNamespace(ctx, t.conns[0], t.opts.Namespace, t.opts.NamespaceType)
	if err != nil {
		return err
	}
	t.tokens, err = newTokenSource()
	return err
}

func (t *abacusTarget) Do(ctx context.Context, caller int, op Op) error {
	stub := t.stubs[caller%len(t.stubs)]
	ns := t.opts.Namespace
	if t.batch {
		if op.Read {
			req := &abacusv1.GetCountsRequest{Counters: make([]*abacusv1.GetCountRequest, len(op.Counters))}
			for i, c := range op.Counters {
				req.Counters[i] = &abacusv1.GetCountRequest{Namespace: ns, CounterName: counterName(c)}
			}
			_, err := stub.GetCounts(ctx, req)
			return err
		}
		req := &abacusv1.AddCountsRequest{Adds: make([]*abacusv1.AddCountRequest, len(op.Counters))}
		now := timestamppb.Now()
		for i, c := range op.Counters {
			req.Adds[i] = &abacusv1.AddCountRequest{Namespace: ns, CounterName: counterName(c), Delta: 1,
				IdempotencyToken: &abacusv1.IdempotencyToken{Token: t.tokens.next(), GenerationTime: now}}
		}
		_, err := stub.AddCounts(ctx, req)
		return err
	}
	for _, c := range op.Counters {
		var err error
		if op.Read {
			_, err = stub.GetCount(ctx, &abacusv1.GetCountRequest{Namespace: ns, CounterName: counterName(c)})
		} else {
			_, err = stub.AddCount(ctx, &abacusv1.AddCountRequest{Namespace: ns, CounterName: counterName(c), Delta: 1,
				IdempotencyToken: &abacusv1.IdempotencyToken{Token: t.tokens.next(), GenerationTime: timestamppb.Now()}})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *abacusTarget) Close() error {
	for _, c := range t.conns {
		c.Close()
	}
	return nil
}

// counterName is the abacus counter name of counter index i.
func counterName(i int) string { return "c" + strconv.Itoa(i) }

// ensureNamespace creates namespace name with counter type typ unless it
// exists, and describes it for the report. An existing namespace is used as
// it is, whatever its type: the description says which type it has.
func ensureNamespace(ctx context.Context, conn *grpc.ClientConn, name, typ string) (string, error) {
	nsc := abacusv1.NewNamespaceServiceClient(conn)
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
			return ensureNamespace(ctx, conn, name, typ)
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

// tokenSource makes unique idempotency tokens cheaply: a random prefix per
// run and a sequence number, instead of a UUID (and a read of the system's
// random source) per write.
type tokenSource struct {
	prefix string
	seq    *atomic.Uint64
}

func newTokenSource() (tokenSource, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return tokenSource{}, err
	}
	return tokenSource{prefix: "bench-" + hex.EncodeToString(b[:]) + "-", seq: new(atomic.Uint64)}, nil
}

func (s tokenSource) next() string {
	return s.prefix + strconv.FormatUint(s.seq.Add(1), 36)
}
