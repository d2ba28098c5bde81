// Command abacusd is the abacus counting service node. By default it serves
// gRPC on 127.0.0.1:7400 and HTTP (Connect JSON, gRPC-Web, /metrics, /healthz,
// /readyz, the dashboard under /ui/) on 127.0.0.1:7401, storing everything in an embedded Pebble store
// under ./abacus-data. With --postgres (and optionally --redis or --memcached)
// several nodes share the same namespaces and counters. SIGTERM or SIGINT shut
// it down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/abacus-dev/abacus/memlimit"
	"github.com/abacus-dev/abacus/node"
)

// defaultGCPercent replaces Go's default GOGC of 100 unless GOGC is set. A
// node's live heap is small next to what it allocates per request, so at
// 100 it collects many times a second and the collector's share of the CPUs
// stretches request tails; docs/benchmarks.md ("Write path, fsync and GC")
// has the side-by-side figures. The heap may grow to 5x its live size, up to
// a soft memory limit that follows the live heap (see package memlimit)
// unless GOMEMLIMIT is set; set GOGC or GOMEMLIMIT to manage memory instead.
const defaultGCPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
		if os.Getenv("GOMEMLIMIT") == "" {
			go memlimit.Run(context.Background(), memlimit.Default)
		}
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("abacusd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg       node.Config
		logLevel  string
		logFormat string
		withUI    bool
	)
	fs.StringVar(&cfg.DataDir, "data-dir", "./abacus-data", "directory of the embedded store")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:7400", "gRPC listen address")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:7401", "HTTP listen address (Connect JSON, gRPC-Web, /metrics, /healthz, /readyz)")
	fs.StringVar(&cfg.NamespacesFile, "namespaces", "", "YAML or JSON file of namespaces to create or update at start")
	fs.StringVar(&cfg.Postgres, "postgres", "", "PostgreSQL URL: store events, checkpoints and namespaces there, shared by every node naming it")
	fs.Func("redis", "Redis address(es), comma-separated, for BEST_EFFORT counts and cached rollups", func(v string) error {
		cfg.Redis = splitAddrs(v)
		return nil
	})
	fs.BoolVar(&cfg.RedisCluster, "redis-cluster", false, "the --redis addresses are Redis Cluster nodes")
	fs.Func("memcached", "memcached address(es), comma-separated, for BEST_EFFORT counts and cached rollups", func(v string) error {
		cfg.Memcached = splitAddrs(v)
		return nil
	})
	fs.DurationVar(&cfg.NamespaceRefresh, "namespace-refresh", 2*time.Second, "with --postgres, how often namespaces are reloaded so ones created on other nodes are served")
	fs.DurationVar(&cfg.RetentionInterval, "retention-interval", time.Minute, "how often event retention runs")
	fs.DurationVar(&cfg.ShutdownDelay, "shutdown-delay", 0, "on SIGTERM, how long to keep serving while reporting not ready before closing the listeners")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 30*time.Second, "how long shutdown may spend draining rollup queues")
	fs.IntVar(&cfg.RollupConcurrency, "rollup-concurrency", 0, "most rollups running at once on the node (0: 8 × GOMAXPROCS with the embedded store, 256 with --postgres)")
	fs.Func("rollup-pause", "after each rollup batch a queue pauses this many times the batch's duration, 0 for none (back-pressure; lower converges sooner, higher leaves more CPU to requests) (default 1)", func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("want a number ≥ 0, not %q", v)
		}
		cfg.RollupPause = f
		if f == 0 {
			cfg.RollupPause = -1
		}
		return nil
	})
	fs.Func("wal-sync-interval", "embedded store: least time between two WAL fsyncs, so that one fsync serves every durable write arriving meanwhile (only a busy store waits); 0 for none (default 200µs)", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration ≥ 0, not %q", v)
		}
		cfg.WALSyncInterval = d
		if d == 0 {
			cfg.WALSyncInterval = -1
		}
		return nil
	})
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve net/http/pprof under /debug/pprof/ on the HTTP port (with --auth-tokens: for tokens with admin on \"*\")")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) both listeners serve TLS with; reloaded when the file changes or on SIGHUP")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&cfg.TLSClientCA, "tls-client-ca", "", "PEM bundle of CAs whose client certificates are required on both listeners (mutual TLS)")
	fs.StringVar(&cfg.AuthTokens, "auth-tokens", "", "YAML or JSON file of access tokens (SHA-256 hashes and grants): every API call then needs Authorization: Bearer <token>; reloaded when the file changes or on SIGHUP")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "allow listening beyond loopback without --auth-tokens")
	fs.IntVar(&cfg.MaxRequestBytes, "max-request-bytes", node.DefaultMaxRequestBytes, "largest request message or body accepted, in bytes")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "time an HTTP client may take to send a request's headers")
	fs.IntVar(&cfg.MaxConnections, "max-connections", node.DefaultMaxConnections, "most open connections per listener (-1: no cap)")
	fs.DurationVar(&cfg.DefaultTimeout, "default-timeout", 30*time.Second, "deadline of a call whose client sets none (-1s: none)")
	fs.BoolVar(&withUI, "ui", true, "serve the operator's dashboard under /ui/ on the HTTP port and keep its in-memory history (15 min at 1 s, also read by `abacus top`); --ui=false turns both off")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg.NoUI = !withUI
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "abacusd:", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "abacusd: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		fmt.Fprintf(stderr, "abacusd: --log-level: %v\n", err)
		return 2
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch logFormat {
	case "text":
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, hopts))
	case "json":
		cfg.Logger = slog.New(slog.NewJSONHandler(stderr, hopts))
	default:
		fmt.Fprintf(stderr, "abacusd: --log-format must be text or json, got %q\n", logFormat)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "abacusd: %v\n", err)
		return 1
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for waiting := true; waiting; {
		select {
		case <-hup:
			// Failures are logged, and the old files stay in force.
			_ = n.Reload()
		case <-ctx.Done():
			waiting = false
		}
	}
	stop()
	cfg.Logger.Info("shutting down")
	if err := n.Shutdown(context.Background()); err != nil {
		cfg.Logger.Error("shutdown", "err", err)
		return 1
	}
	cfg.Logger.Info("stopped")
	return 0
}

// splitAddrs splits a comma-separated address list, dropping empty items.
func splitAddrs(v string) []string {
	var out []string
	for _, a := range strings.Split(v, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
