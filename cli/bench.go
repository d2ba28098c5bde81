package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/abacus-dev/abacus/bench"
	"github.com/abacus-dev/abacus/client"
	"github.com/spf13/cobra"
)

// benchFlags are the flags of "abacus bench" that "abacus bench compare"
// shares (persistent on bench).
type benchFlags struct {
	scenario   string
	readRatio  float64
	callers    int
	duration   time.Duration
	count      int64
	warmup     time.Duration
	counters   int
	dist       string
	zipfS      float64
	namespace  string
	nsType     string
	batchSize  int
	rate       string
	conns      int
	seed       uint64
	noProgress bool
	metricsURL string
}

func (f *benchFlags) register(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&f.scenario, "scenario", bench.ScenarioAdd, "add, get, mixed (--read-ratio reads) or batch (--batch-size adds per op)")
	fs.Float64Var(&f.readRatio, "read-ratio", 0.5, "share of reads in the mixed scenario, in [0, 1]")
	fs.IntVar(&f.callers, "callers", 64, "concurrent callers")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "length of the measured run (excludes --warmup)")
	fs.Int64Var(&f.count, "count", 0, "end the measured run after this many ops instead of after --duration")
	fs.DurationVar(&f.warmup, "warmup", time.Second, "unrecorded load before the measured run")
	fs.IntVar(&f.counters, "counters", 1000, "distinct counters")
	fs.StringVar(&f.dist, "dist", bench.DistUniform, "counter popularity: uniform or zipf")
	fs.Float64Var(&f.zipfS, "zipf-s", 1.1, "Zipf exponent (> 1; larger is more skewed)")
	fs.StringVar(&f.namespace, "namespace", "bench", "abacus namespace, created with --type if missing")
	fs.StringVar(&f.nsType, "type", "EVENTUAL", "counter type of a namespace bench creates: BEST_EFFORT, EVENTUAL or ACCURATE")
	fs.IntVar(&f.batchSize, "batch-size", 100, "counters per op in the batch scenario and per abacus-batch call")
	fs.StringVar(&f.rate, "rate", "0", `target ops/s, open-loop (latency includes queueing); 0 = as fast as possible; "50%" = half of the peak, measured first by a closed-loop run as long as --duration`)
	fs.IntVar(&f.conns, "conns", 0, "gRPC connections to abacus (0: 1, or the Go client's default)")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the counter choice (caller i uses seed+i)")
	fs.BoolVar(&f.noProgress, "no-progress", false, "no progress bar on stderr (also off with -o json)")
	fs.StringVar(&f.metricsURL, "metrics-url", "", `the node's Prometheus /metrics URL, scraped before and after each measured run for the node's CPU per op (process_cpu_seconds_total); default: the host of --addr with its port + 1 (abacusd's default --http-addr is its --grpc-addr's port + 1), https with the --tls flags; "none": no node CPU`)
}

// metricsOff is the --metrics-url that turns the node's CPU off.
const metricsOff = "none"

// defaultMetricsURL derives the node's /metrics URL from its gRPC address:
// abacusd serves HTTP on the next port by default (7400 and 7401). It
// returns "" when addr is not HOST:PORT (e.g. a resolver URL).
func defaultMetricsURL(addr string, tls bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p >= 65535 {
		return ""
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(p+1)), Path: "/metrics"}).String()
}

// config turns the flags into a bench.Config, or a usage error.
func (f *benchFlags) config(cmd *cobra.Command, timeout time.Duration) (bench.Config, error) {
	cfg := bench.Config{
		Scenario:  f.scenario,
		ReadRatio: f.readRatio,
		Callers:   f.callers,
		Duration:  f.duration,
		Count:     f.count,
		Warmup:    f.warmup,
		Counters:  f.counters,
		Dist:      f.dist,
		ZipfS:     f.zipfS,
		BatchSize: f.batchSize,
		Timeout:   timeout,
		Seed:      f.seed,
	}
	if f.count > 0 {
		if cmd.Flags().Changed("duration") {
			return cfg, usagef(cmd, "give --duration or --count, not both")
		}
		cfg.Duration = 0
	}
	if f.scenario == bench.ScenarioMixed && f.readRatio == 0 {
		return cfg, usagef(cmd, "--read-ratio 0 is the add scenario: use --scenario add")
	}
	var err error
	if cfg.Rate, cfg.RateFraction, err = parseRate(f.rate); err != nil {
		return cfg, usagef(cmd, "--rate: %v", err)
	}
	// Every field comes from a flag with its default already, so the raw
	// config is validated: an explicit --callers 0 is an error here, not
	// a request for the library's default.
	if err := cfg.Validate(); err != nil {
		return cfg, &usageError{cmd: cmd, err: err}
	}
	return cfg, nil
}

// parseRate reads --rate: ops/s ("20000", "0") or a share of the peak
// ("50%").
func parseRate(s string) (rate, fraction float64, err error) {
	if p, ok := strings.CutSuffix(strings.TrimSpace(s), "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || !(v > 0) {
			return 0, 0, fmt.Errorf("%q is not a positive percentage", s)
		}
		return 0, v / 100, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v < 0 {
		return 0, 0, fmt.Errorf("%q is neither ops/s (0 or more) nor a percentage such as 50%%", s)
	}
	return v, 0, nil
}

func (f *benchFlags) options(a *app) (bench.Options, error) {
	sec, err := a.securityOptions()
	if err != nil {
		return bench.Options{}, err
	}
	opts := bench.Options{
		ClientOptions: sec,
		Abacus:        a.addr,
		Namespace:     f.namespace,
		NamespaceType: f.nsType,
		Conns:         f.conns,
		Retries:       a.retries,
	}
	tlsOn := a.tlsCA != "" || a.tlsCert != "" || a.tlsKey != "" || a.tlsServerName != ""
	switch f.metricsURL {
	case metricsOff:
	case "":
		opts.MetricsURL = defaultMetricsURL(a.addr, tlsOn)
	default:
		opts.MetricsURL = f.metricsURL
	}
	if opts.MetricsURL != "" && strings.HasPrefix(opts.MetricsURL, "https:") && tlsOn {
		// The HTTP port serves the gRPC port's certificate: trust it as
		// the client does. (securityOptions has checked these flags.)
		cfg, err := client.TLSConfig(a.tlsCA, a.tlsCert, a.tlsKey, a.tlsServerName)
		if err != nil {
			return bench.Options{}, &usageError{err: err}
		}
		opts.MetricsClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	return opts, nil
}

func (a *app) benchCmd() *cobra.Command {
	var f benchFlags
	var via string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test abacus (or compare it with Redis, memcached and PostgreSQL)",
		Long: `Drive an abacusd node with --callers concurrent callers and report throughput
and latency percentiles (p50, p90, p99, p99.9, max, from an HDR histogram).

--via chooses how abacus is called: unary (one AddCount, with an idempotency
token, or GetCount RPC per counter), client (the Go client, whose natural
batching coalesces concurrent calls) or batch (one AddCounts / GetCounts RPC
of --batch-size counters per op).

Without --rate the callers run closed-loop, as fast as the node answers: that
measures peak throughput. With --rate the load is open-loop: op n is due at
n/rate seconds, and its latency counts from then, so time spent waiting for
a free caller is included (no coordinated omission); ops that no caller could
send before the end are reported as unsent. --rate 50% first measures the
peak, then runs at half of it.

"abacus bench compare" runs the same load against several systems.`,
		Example: `  abacus bench --scenario add --via client --duration 10s
  abacus bench --scenario get --namespace bench_best --type BEST_EFFORT
  abacus bench --scenario batch --via batch --batch-size 1000
  abacus bench --scenario add --via client --rate 50% -o json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(cmd, a.timeout)
			if err != nil {
				return err
			}
			var target string
			switch via {
			case "unary":
				target = bench.TargetAbacusUnary
			case "client":
				target = bench.TargetAbacusClient
			case "batch":
				target = bench.TargetAbacusBatch
			default:
				return usagef(cmd, "--via must be unary, client or batch, not %q", via)
			}
			opts, err := f.options(a)
			if err != nil {
				return err
			}
			return a.runBench(cmd.Context(), cfg, bench.Spec{Target: target}, opts, f.noProgress)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&via, "via", "unary", "how abacus is called: unary, client or batch")
	cmd.AddCommand(a.benchCompareCmd(&f), a.benchConvergeCmd(&f))
	return cmd
}

func (a *app) runBench(ctx context.Context, cfg bench.Config, spec bench.Spec, opts bench.Options, noProgress bool) error {
	t, err := bench.NewTarget(spec, opts)
	if err != nil {
		return err
	}
	defer t.Close()
	w := bench.Workload{Scenario: cfg.Scenario, Counters: cfg.Counters, Callers: cfg.Callers, Timeout: cfg.Timeout}
	setupCtx, cancel := context.WithTimeout(ctx, a.setupTimeout())
	err = t.Setup(setupCtx, w)
	cancel()
	if err != nil {
		return fmt.Errorf("%s: setup: %w", t.Name(), err)
	}
	bar := a.newProgress(noProgress)
	bar.label = t.Name()
	cfg.Progress = bar.update
	res, runErr := bench.Run(ctx, t, cfg)
	if res != nil {
		if err := a.printRun(cfg, res); err != nil {
			return err
		}
	}
	if runErr != nil {
		return runErr
	}
	if res.Ops == 0 {
		return errors.New("no op succeeded (see errors_by_code)")
	}
	return nil
}

// setupTimeout bounds a target's setup: longer than one op's --timeout,
// since creating a million memcached keys or PostgreSQL rows takes a while.
func (a *app) setupTimeout() time.Duration { return max(a.timeout, 5*time.Minute) }
