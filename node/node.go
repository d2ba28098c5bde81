// Package node assembles one abacusd node: the embedded store, the caches, the
// counter service, the rollup pipeline, retention, and the gRPC and HTTP
// servers. cmd/abacusd is a thin main over it, and end-to-end tests start nodes
// through it on random ports.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/api"
	"github.com/abacus-dev/abacus/auth"
	"github.com/abacus-dev/abacus/certs"
	"github.com/abacus-dev/abacus/controlplane"
	"github.com/abacus-dev/abacus/counter"
	"github.com/abacus-dev/abacus/rollup"
)

// Config configures a node. The zero value of every field takes the default
// in its comment (set in one place, withDefaults); Validate reports every
// problem at once, and Start refuses a Config that has any.
type Config struct {
	// DataDir is the embedded store's directory (created if missing); unused
	// with Postgres.
	DataDir string
	// GRPCAddr is the gRPC listen address; "127.0.0.1:0" picks a free port,
	// and so does the default, "". An address beyond loopback needs
	// AuthTokens or Insecure.
	GRPCAddr string
	// HTTPAddr is the HTTP (Connect, gRPC-Web, /metrics, /healthz, /readyz)
	// address, as GRPCAddr.
	HTTPAddr string
	// NamespacesFile, if set, is a YAML or JSON file of namespaces created or
	// updated at start.
	NamespacesFile string
	// Postgres, if set, is a PostgreSQL connection URL: events, checkpoints and
	// namespaces then live there, shared with every node that names it.
	Postgres string
	// Redis lists Redis addresses (one server, or Redis Cluster nodes with
	// RedisCluster) for BEST_EFFORT counts and cached rollups.
	Redis        []string
	RedisCluster bool
	// Memcached lists memcached addresses for the same uses as Redis.
	Memcached []string
	// NamespaceRefresh is how often namespaces are reloaded from a shared
	// store, so one created on another node is served here; default 2s.
	NamespaceRefresh time.Duration
	// RetentionInterval is how often retention runs; default 1m.
	RetentionInterval time.Duration
	// DrainTimeout bounds the graceful drain at shutdown; default 30s.
	DrainTimeout time.Duration
	// ShutdownDelay is how long a stopping node keeps serving while it already
	// reports not ready (readyz 503, gRPC health NOT_SERVING), so that load
	// balancers stop sending it requests before its listeners close; default 0.
	ShutdownDelay time.Duration
	// RollupConcurrency bounds the rollups running at once on the node,
	// across every namespace; default 0: 8 × GOMAXPROCS with only the
	// embedded store (its rollups use the node's CPU, and more of them at
	// once only take it from requests), 256 with PostgreSQL (its rollups
	// wait on the network and the server).
	RollupConcurrency int
	// RollupPause is the back-pressure after a rollup batch, as a multiple
	// of the batch's duration: a queue waits that long before its next
	// batch; 0 means the default, 1 (queues roll up at most half of the
	// time), and a negative value no pause. Lower favours convergence,
	// higher the latency of requests.
	RollupPause float64
	// WALSyncInterval is the embedded store's least time between WAL
	// fsyncs (embedded.Options.WALSyncInterval): 0 means its default,
	// negative none.
	WALSyncInterval time.Duration
	// Pprof serves net/http/pprof under /debug/pprof/ on the HTTP port, for
	// profiling (off by default: profiles expose internals). With AuthTokens
	// it needs a token with the admin right on "*".
	Pprof bool
	// TLSCert and TLSKey, if set, are the PEM certificate and key both
	// listeners serve TLS (1.2 at least) with; reloaded when they change.
	TLSCert, TLSKey string
	// TLSClientCA, if set, makes client certificates signed by one of its
	// CAs required on both listeners (mutual TLS).
	TLSClientCA string
	// AuthTokens, if set, is the access tokens file (see package auth): every
	// API call then needs a bearer token with the rights its method needs;
	// reloaded when it changes.
	AuthTokens string
	// Insecure lets a node listen beyond loopback without AuthTokens.
	Insecure bool
	// MaxRequestBytes bounds a request message or body; default 4 MiB.
	MaxRequestBytes int
	// ReadHeaderTimeout bounds the time an HTTP client may take to send a
	// request's headers; default 10s.
	ReadHeaderTimeout time.Duration
	// MaxConnections caps the open connections per listener; default 10000,
	// negative for no cap.
	MaxConnections int
	// DefaultTimeout is the deadline of a call whose client sets none;
	// default 30s, negative for none.
	DefaultTimeout time.Duration
	// WatchInterval is how often the TLS and tokens files are checked for
	// changes; default 2s.
	WatchInterval time.Duration
	// NoUI turns off the operator's dashboard under /ui/ and the
	// in-memory history behind it and `abacus top` (15 minutes of figures
	// at 1 s, under 5 MB, sampled once a second); it is on by default.
	NoUI bool
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Node is a running abacusd node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	stores   *stores
	svc      *counter.Service
	pipeline *rollup.Pipeline
	grpc     *grpc.Server
	health   *health.Server
	http     *http.Server
	grpcLn   net.Listener
	httpLn   net.Listener
	ready    atomic.Bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
	certs    *certs.Reloader // nil without TLS
	tokens   *auth.Keeper    // nil without access tokens
	view     *operatorView   // nil with NoUI
}

// Start opens the stores, applies the namespaces file, recovers rollups that a
// crash interrupted, and starts serving. The node is ready (readyz 200, gRPC
// health SERVING) when Start returns.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	validator := controlplane.Validator{Supported: supported(cfg)}
	var fileNS []*abacus.Namespace
	if cfg.NamespacesFile != "" {
		var err error
		if fileNS, err = validator.ParseFileAt(cfg.NamespacesFile); err != nil {
			return nil, err
		}
	}
	n := &Node{cfg: cfg, log: cfg.Logger}
	st, err := openStores(ctx, cfg)
	if err != nil {
		return nil, err
	}
	n.stores = st
	if err := n.start(ctx, fileNS, validator); err != nil {
		n.closeAll()
		return nil, err
	}
	return n, nil
}

func (n *Node) start(ctx context.Context, fileNS []*abacus.Namespace, validator controlplane.Validator) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The abacus metrics are also registered on the dashboard's registry,
	// which its history gathers every second without the Go and process
	// collectors (half of a sample's cost, for figures it does not show).
	n.view = n.newOperatorView(reg)
	regs := n.view.registerer(reg)
	if n.stores.embedded != nil {
		regs.MustRegister(n.stores.embedded)
	}
	retentionFailures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "abacus_retention_failures_total",
		Help: "Retention passes that failed for a namespace (its slices are retried on the next pass).",
	}, []string{"namespace"})
	rateLimited := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "abacus_rate_limited_total",
		Help: "Calls refused by a namespace's rate limit on this node, by the kind of limit that refused them (requests or increments).",
	}, []string{"namespace", "limit"})
	regs.MustRegister(retentionFailures, rateLimited)
	// The pipeline rolls counters up over the stores; the service signals it.
	roller := &rollup.Roller{Stores: n.stores.router}
	var err error
	n.pipeline, err = rollup.New(roller.Rollup, rollup.Options{
		Logger: n.log, Registerer: regs,
		Batch: roller.Batch,
		// A node-wide bound: validation allows namespaces whose queues times
		// batch size would otherwise start millions of rollups at once.
		MaxConcurrency: n.cfg.RollupConcurrency,
		// Batches read, scan and write per batch with the embedded store:
		// a backlog goes faster in larger ones.
		BatchGrowth: 16,
		PauseRatio:  max(n.cfg.RollupPause, 0),
		MaxPause:    n.rollupMaxPause(),
	})
	if err != nil {
		return err
	}
	n.svc = counter.New(counter.Config{
		Namespaces:  n.stores.namespaces,
		Backends:    n.stores.router,
		Signaler:    n.pipeline,
		Complete:    validator.Complete,
		CheckUpdate: validator.CheckUpdate,
		Logger:      n.log,
		RateLimited: func(ns, kind string) {
			rateLimited.WithLabelValues(ns, kind).Inc()
		},
		RetentionFailed: func(ns string, _ error) {
			retentionFailures.WithLabelValues(ns).Inc()
		},
	})

	if err := n.svc.Load(ctx); err != nil {
		return fmt.Errorf("load namespaces: %w", err)
	}
	if err := n.svc.Apply(ctx, fileNS); err != nil {
		return fmt.Errorf("apply namespaces file %s: %w", n.cfg.NamespacesFile, err)
	}
	if k, err := n.svc.Recover(ctx); err != nil {
		return fmt.Errorf("recover pending rollups: %w", err)
	} else if k > 0 {
		n.log.Info("queued rollups of counters written before the last stop", "counters", k)
	}

	if err := n.loadSecurity(); err != nil {
		return err
	}
	metrics, err := api.NewMetrics(regs)
	if err != nil {
		return err
	}
	grpcOpts := []grpc.ServerOption{
		// Long-lived workers keep their grown stacks: a goroutine per RPC
		// spent ~10% of the CPU growing stacks through the storage path.
		grpc.NumStreamWorkers(uint32(64 * runtime.GOMAXPROCS(0))),
		// A connection that never finishes its handshake, or sits idle,
		// must not hold one of the listener's MaxConnections for good: the
		// HTTP port has its ReadHeaderTimeout and IdleTimeout for the same.
		grpc.ConnectionTimeout(n.cfg.ReadHeaderTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: grpcMaxIdle}),
	}
	if n.certs != nil {
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(n.certs.ServerConfig("h2"))))
	}
	view := n.view
	apiSvc := view.service(n.svc)
	n.grpc, n.health = api.NewGRPCServer(apiSvc, api.GRPCOptions{Metrics: metrics, Logger: n.log,
		Auth: n.authenticator(), MaxMessageBytes: n.cfg.MaxRequestBytes, DefaultTimeout: n.defaultTimeout(),
		ServerOptions: grpcOpts})
	httpHandler := api.NewHTTPHandler(apiSvc, api.HTTPOptions{
		Metrics:         metrics,
		Gatherer:        reg,
		Ready:           func() bool { return n.ready.Load() && n.stores.healthy() },
		Logger:          n.log,
		Auth:            n.authenticator(),
		MaxMessageBytes: n.cfg.MaxRequestBytes,
		DefaultTimeout:  n.defaultTimeout(),
	})
	if n.cfg.Pprof {
		// The mutex and block profiles are empty unless sampled; a fraction
		// of events keeps the cost small while a profile is useful.
		runtime.SetMutexProfileFraction(100)
		runtime.SetBlockProfileRate(int(100 * time.Microsecond))
		mux := http.NewServeMux()
		mux.Handle("/", httpHandler)
		mux.Handle("/debug/pprof/", n.adminOnly(pprof.Index))
		mux.Handle("/debug/pprof/cmdline", n.adminOnly(pprof.Cmdline))
		mux.Handle("/debug/pprof/profile", n.adminOnly(pprof.Profile))
		mux.Handle("/debug/pprof/symbol", n.adminOnly(pprof.Symbol))
		mux.Handle("/debug/pprof/trace", n.adminOnly(pprof.Trace))
		httpHandler = mux
	}
	httpHandler = view.handler(n, httpHandler)
	n.grpcLn, err = n.listen(n.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("grpc listen: %w", err)
	}
	n.httpLn, err = n.listen(n.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	n.http = &http.Server{
		Handler:           httpHandler,
		Protocols:         api.HTTPProtocols(),
		ReadHeaderTimeout: n.cfg.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}

	httpLn := n.httpLn
	if n.certs != nil {
		httpLn = tls.NewListener(httpLn, n.certs.ServerConfig("h2", "http/1.1"))
	}
	bg, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.watchSecurity(bg)
	n.wg.Go(func() { view.run(bg) })
	n.wg.Add(5)
	go func() {
		defer n.wg.Done()
		if err := n.grpc.Serve(n.grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			n.log.Error("grpc server stopped", "err", err)
		}
	}()
	go func() {
		defer n.wg.Done()
		if err := n.http.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "err", err)
		}
	}()
	go func() {
		defer n.wg.Done()
		n.svc.RunRetention(bg, n.cfg.RetentionInterval)
	}()
	go func() {
		defer n.wg.Done()
		n.refreshNamespaces(bg)
	}()
	go func() {
		defer n.wg.Done()
		n.healRollups(bg)
	}()
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	n.ready.Store(true)
	n.log.Info("abacusd serving", "grpc", n.grpcLn.Addr().String(), "http", n.httpLn.Addr().String(),
		"tls", n.certs != nil, "mtls", n.cfg.TLSClientCA != "", "auth", n.tokens != nil,
		"data_dir", n.cfg.DataDir, "postgres", n.cfg.Postgres != "", "redis", n.cfg.Redis, "memcached", n.cfg.Memcached)
	return nil
}

// GRPCAddr returns the address the gRPC server listens on.
func (n *Node) GRPCAddr() string { return n.grpcLn.Addr().String() }

// HTTPAddr returns the address the HTTP server listens on.
func (n *Node) HTTPAddr() string { return n.httpLn.Addr().String() }

// Service returns the node's counter service (for in-process tests).
func (n *Node) Service() *counter.Service { return n.svc }

// Shutdown stops the node gracefully: it reports not ready, stops accepting
// requests and waits for those in flight, drains the rollup queues (bounded by
// DrainTimeout and ctx), stops retention and closes the store.
func (n *Node) Shutdown(ctx context.Context) error {
	n.stopOnce.Do(func() { n.stopErr = n.shutdown(ctx) })
	return n.stopErr
}

func (n *Node) shutdown(ctx context.Context) error {
	n.ready.Store(false)
	n.health.Shutdown()
	if n.cfg.ShutdownDelay > 0 {
		select {
		case <-time.After(n.cfg.ShutdownDelay):
		case <-ctx.Done():
		}
	}
	stopped := make(chan struct{})
	go func() { n.grpc.GracefulStop(); close(stopped) }()
	hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
	defer hcancel()
	_ = n.http.Shutdown(hctx)
	select {
	case <-stopped:
	case <-hctx.Done():
		n.grpc.Stop()
	}
	dctx, dcancel := context.WithTimeout(ctx, n.cfg.DrainTimeout)
	defer dcancel()
	drainErr := n.pipeline.Drain(dctx)
	if drainErr != nil {
		n.log.Warn("rollup drain incomplete; pending counters are rolled up after restart", "err", drainErr)
	}
	n.cancel()
	n.wg.Wait()
	return n.stores.close()
}

// refreshNamespaces reloads namespaces from a shared store, so that one
// created, updated or deleted through another node takes effect here within
// NamespaceRefresh. The embedded store has a single writer, this node, and
// needs no reload.
func (n *Node) refreshNamespaces(ctx context.Context) {
	if n.stores.embedded != nil {
		return
	}
	t := time.NewTicker(n.cfg.NamespaceRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := n.svc.Load(ctx); err != nil && ctx.Err() == nil {
				n.log.Warn("reloading namespaces failed; serving the last known ones", "err", err)
			}
		}
	}
}

// closeAll releases what a failed Start opened.
func (n *Node) closeAll() {
	if n.grpcLn != nil {
		n.grpcLn.Close()
	}
	if n.httpLn != nil {
		n.httpLn.Close()
	}
	if n.pipeline != nil {
		_ = n.pipeline.Drain(context.Background())
	}
	if n.stores != nil {
		n.stores.close()
	}
}

// grpcMaxIdle is how long a gRPC connection with no call in flight stays
// open; clients reconnect transparently.
const grpcMaxIdle = 5 * time.Minute

// healInterval is how often healRollups looks for lost rollup signals.
const healInterval = 30 * time.Second

// healRollups re-queues every counter whose writes are newer than its
// checkpoint whenever the pipeline has dropped signals or evicted parked
// counters since it last looked: without a signal such a counter's
// checkpoint would wait for its next write or read (its count, cached by the
// rollup that parked it, is right meanwhile). One pass reads every counter's
// rollup state, so it runs only after a loss, at most every healInterval.
func (n *Node) healRollups(ctx context.Context) {
	t := time.NewTicker(healInterval)
	defer t.Stop()
	seen := uint64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lost := n.pipeline.Lost()
		if lost == seen {
			continue
		}
		// Losses from here on, the pass's own included, call for another
		// pass: one that happens while the pass reads the store may be of a
		// counter the pass has already gone by.
		k, err := n.svc.Recover(ctx)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("re-queueing rollups lost to full queues failed; will retry", "err", err)
			}
			continue
		}
		seen = lost
		n.log.Info("re-queued rollups lost to full queues", "counters", k, "lost_signals", lost)
	}
}

// rollupMaxPause turns a negative Config.RollupPause into no pause.
func (n *Node) rollupMaxPause() time.Duration {
	if n.cfg.RollupPause < 0 {
		return -1
	}
	return 0
}
