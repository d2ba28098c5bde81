package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"strconv"
	"testing"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/internal/testservers"
	"github.com/abacus-dev/abacus/node"
)

// startNode starts an in-process abacusd with its embedded store and
// returns its gRPC address.
func startNode(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{
		DataDir:  t.TempDir(),
		GRPCAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n.GRPCAddr()
}

// runTarget sets up and runs one target for ops ops of the scenario, and
// checks that every op succeeded.
func runTarget(t *testing.T, spec Spec, opts Options, cfg Config) *Result {
	t.Helper()
	ctx := context.Background()
	tg, err := NewTarget(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	cfg = cfg.WithDefaults()
	if err := tg.Setup(ctx, Workload{Scenario: cfg.Scenario, Counters: cfg.Counters, Callers: cfg.Callers, Timeout: cfg.Timeout}); err != nil {
		t.Fatalf("%s: setup: %v", spec, err)
	}
	res, err := Run(ctx, tg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Ops != cfg.Count {
		t.Fatalf("%s %s: ops %d, errors %v (%v); want %d and none", spec, cfg.Scenario, res.Ops, res.ErrorsByCode, res.ErrorSamples, cfg.Count)
	}
	return res
}

// TestAbacusTargets runs every abacus target in every scenario against an
// in-process node, on an ACCURATE namespace so that the sum of the counts
// read back is exactly the increments the runs reported.
func TestAbacusTargets(t *testing.T) {
	addr := startNode(t)
	const counters = 50
	opts := Options{Abacus: addr, Namespace: "bench_test", NamespaceType: "ACCURATE", Retries: 0}
	var increments int64
	for _, target := range []string{TargetAbacusUnary, TargetAbacusClient, TargetAbacusBatch} {
		for _, sc := range Scenarios {
			t.Run(target+"/"+sc, func(t *testing.T) {
				res := runTarget(t, Spec{Target: target}, opts,
					Config{Scenario: sc, Callers: 4, Count: 40, Counters: counters, BatchSize: 5, Dist: DistZipf})
				increments += res.Increments
				if res.TargetInfo == "" {
					t.Error("no target info (namespace)")
				}
			})
		}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := &abacusv1.GetCountsRequest{}
	for i := range counters {
		req.Counters = append(req.Counters, &abacusv1.GetCountRequest{Namespace: "bench_test", CounterName: counterName(i)})
	}
	resp, err := abacusv1.NewCounterServiceClient(conn).GetCounts(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, c := range resp.GetCounts() {
		sum += c.GetCount()
	}
	if sum != increments {
		t.Errorf("counts sum to %d, the runs reported %d increments", sum, increments)
	}
}

func TestAbacusNamespaceType(t *testing.T) {
	addr := startNode(t)
	tg, err := NewTarget(Spec{Target: TargetAbacusUnary, Namespace: "fresh"}, Options{Abacus: addr, NamespaceType: "best_effort"})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if err := tg.Setup(context.Background(), Workload{Counters: 1, Callers: 1}); err != nil {
		t.Fatal(err)
	}
	if got, want := tg.(Describer).Describe(), "namespace fresh (BEST_EFFORT, created)"; got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
	bad, _ := NewTarget(Spec{Target: TargetAbacusUnary, Namespace: "other"}, Options{Abacus: addr, NamespaceType: "EXACT"})
	defer bad.Close()
	if err := bad.Setup(context.Background(), Workload{Counters: 1, Callers: 1}); err == nil {
		t.Error("an unknown --type was accepted")
	}
}

func uniquePrefix(t *testing.T) string {
	var b [4]byte
	rand.Read(b[:])
	return "benchtest-" + hex.EncodeToString(b[:]) + ":"
}

// The peers' tests need the servers scripts/test.sh starts; they are
// skipped without them (and fail without them in CI).

func TestRedisTarget(t *testing.T) {
	addr := testservers.Env(t, testservers.RedisEnv)
	opts := Options{Redis: addr, KeyPrefix: uniquePrefix(t)}
	var incs int64
	for _, sc := range Scenarios {
		incs += runTarget(t, Spec{Target: TargetRedis}, opts, Config{Scenario: sc, Callers: 4, Count: 50, Counters: 20, BatchSize: 3}).Increments
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	var sum int64
	for i := range 20 {
		n, err := c.Get(context.Background(), opts.KeyPrefix+"c"+strconv.Itoa(i)).Int64()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		sum += n
	}
	if sum != incs {
		t.Errorf("redis counts sum to %d, want %d", sum, incs)
	}
}

func TestMemcachedTarget(t *testing.T) {
	addr := testservers.Env(t, testservers.MemcachedEnv)
	opts := Options{Memcached: addr, KeyPrefix: uniquePrefix(t)}
	var incs int64
	for _, sc := range Scenarios {
		incs += runTarget(t, Spec{Target: TargetMemcached}, opts, Config{Scenario: sc, Callers: 4, Count: 50, Counters: 20, BatchSize: 3}).Increments
	}
	c := memcache.New(addr)
	var keys []string
	for i := range 20 {
		keys = append(keys, opts.KeyPrefix+"c"+strconv.Itoa(i))
	}
	items, err := c.GetMulti(keys)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, it := range items {
		n, _ := strconv.ParseInt(string(it.Value), 10, 64)
		sum += n
	}
	if sum != incs {
		t.Errorf("memcached counts sum to %d, want %d", sum, incs)
	}
}

func TestPostgresTargets(t *testing.T) {
	url := testservers.NewDatabase(t, testservers.Env(t, testservers.PostgresEnv))
	opts := Options{Postgres: url}
	for _, target := range []string{TargetPGUpdate, TargetPGEvents} {
		var incs int64
		for _, sc := range Scenarios {
			incs += runTarget(t, Spec{Target: target}, opts, Config{Scenario: sc, Callers: 4, Count: 50, Counters: 20, BatchSize: 3}).Increments
		}
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		q := `SELECT coalesce(sum(n), 0) FROM ` + pgCountersTable
		if target == TargetPGEvents {
			q = `SELECT coalesce(sum(delta), 0) FROM ` + pgEventsTable
		}
		var sum int64
		if err := conn.QueryRow(context.Background(), q).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		conn.Close(context.Background())
		if sum != incs {
			t.Errorf("%s: counts sum to %d, want %d", target, sum, incs)
		}
	}
}

// counterName gives the same name from the table as without it.
func TestCounterNameTable(t *testing.T) {
	nameCounters(10)
	nameCounters(5) // a smaller setup keeps the larger table
	for _, i := range []int{0, 9, 10, 12345} {
		if got, want := counterName(i), "c"+strconv.Itoa(i); got != want {
			t.Errorf("counterName(%d) = %q, want %q", i, got, want)
		}
	}
	if n := len(*counterNames.Load()); n < 10 {
		t.Errorf("table of %d names after nameCounters(10)", n)
	}
	if a := testing.AllocsPerRun(100, func() { _ = counterName(7) }); a != 0 {
		t.Errorf("counterName allocates %v times", a)
	}
}
