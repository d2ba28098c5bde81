package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/abacus-dev/abacus/bench"
	"github.com/spf13/cobra"
)

func (a *app) benchCompareCmd(f *benchFlags) *cobra.Command {
	var (
		reps                       int
		targets                    string
		redis, memcached, postgres string
		baseline                   string
		pids                       map[string]int
	)
	cmd := &cobra.Command{
		Use:   "compare",
		Short: "Run the same load against abacus and its peers, interleaved, and compare",
		Long: `Run the same generator (callers, duration, counters and their popularity) against
several targets, --reps times, round-robin: each repetition runs every target
once, starting one target further along each time, so that the machine's
noise falls on all of them alike. Print, per target, the median throughput
over the repetitions with its min–max, the ratio to the baseline (Redis), and
the median p50 and p99 latency.

Targets (--targets, comma-separated; default all):
  redis          INCRBY / GET through go-redis (--redis)
  memcached      incr / get through gomemcache, keys created first (--memcached)
  pg-update      PostgreSQL, one row per counter: UPDATE ... SET n = n + $1 (--postgres)
  pg-events      PostgreSQL, insert-only events, SELECT SUM(delta) to read (--postgres)
  abacus-unary   one AddCount (with a token) or GetCount RPC per counter (--addr)
  abacus-client  the Go client with natural batching (--addr)
  abacus-batch   one AddCounts / GetCounts RPC of --batch-size counters per op (--addr)
A target without its address is skipped with a note. A target may carry its
own scenario and namespace as TARGET[/SCENARIO][@NAMESPACE], e.g.
abacus-unary/get@bench_best.

Throughput is in counter operations per second (an AddCounts of 100 counts
100), so batching targets compare with the others on the work done.

SERVER CPU/OP is the CPU the server spent over each measured run divided by
its ops (median over the reps; for a batch, with the CPU per counter): for
abacus, from process_cpu_seconds_total on the node's --metrics-url; for a
peer, from /proc/PID/stat with --server-pid. GEN CPU/OP is this process's own
CPU (getrusage) per op: on one machine both share the CPUs, so the sum is
what bounds the throughput.`,
		Example: `  abacus bench compare --redis 127.0.0.1:6379 --postgres postgres://postgres@127.0.0.1/postgres
  abacus bench compare --targets abacus-unary,abacus-client,abacus-batch --duration 2s --reps 1
  abacus bench compare --targets abacus-unary/add@bench_eventual,abacus-unary/get@bench_best \
      --baseline abacus-unary/get@bench_best`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(cmd, a.timeout)
			if err != nil {
				return err
			}
			if reps < 1 {
				return usagef(cmd, "--reps must be at least 1, not %d", reps)
			}
			var specs []bench.Spec
			if targets != "" {
				for _, s := range strings.Split(targets, ",") {
					sp, err := bench.ParseSpec(s)
					if err != nil {
						return &usageError{cmd: cmd, err: err}
					}
					specs = append(specs, sp)
				}
			}
			opts, err := f.options(a)
			if err != nil {
				return err
			}
			opts.Redis, opts.Memcached, opts.Postgres = redis, memcached, postgres
			for k, pid := range pids {
				if k != bench.PIDRedis && k != bench.PIDMemcached && k != bench.PIDPostgres || pid <= 0 {
					return usagef(cmd, "--server-pid %s=%d: want redis, memcached or postgres = a pid", k, pid)
				}
			}
			opts.ServerPIDs = pids
			return a.runCompare(cmd.Context(), bench.CompareConfig{
				Config: cfg, Reps: reps, Specs: specs, Options: opts, Baseline: baseline,
			}, f.noProgress)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&reps, "reps", 3, "repetitions, interleaved across the targets")
	fs.StringVar(&targets, "targets", "", "comma-separated targets, each TARGET[/SCENARIO][@NAMESPACE] (default: all)")
	fs.StringVar(&redis, "redis", "", "Redis address (host:port) for the redis target")
	fs.StringVar(&memcached, "memcached", "", "memcached address (host:port) for the memcached target")
	fs.StringVar(&postgres, "postgres", "", "PostgreSQL URL for the pg-update and pg-events targets")
	fs.StringVar(&baseline, "baseline", bench.TargetRedis, "target the ratios are to")
	fs.StringToIntVar(&pids, "server-pid", nil, "pids of the peers' servers on this machine, e.g. redis=123,memcached=456,postgres=789 (the postmaster: its backends count too), whose CPU per op is read from /proc")
	return cmd
}

func (a *app) runCompare(ctx context.Context, cc bench.CompareConfig, noProgress bool) error {
	bar := a.newProgress(noProgress)
	cc.Config.Progress = bar.update
	cc.OnRun = func(target string, rep, reps int) {
		bar.label = fmt.Sprintf("%s %d/%d", target, rep, reps)
	}
	cmp, err := bench.Compare(ctx, cc)
	if cmp != nil {
		if perr := a.printCompare(cc, cmp); perr != nil {
			return perr
		}
	}
	if err != nil {
		return err
	}
	// The report is printed either way; the exit status says whether every
	// requested target that had an address actually ran and did some work,
	// so that a smoke run in CI fails when one is broken.
	var bad []string
	for _, s := range cmp.Skipped {
		if s.Failed {
			bad = append(bad, s.Target+": "+s.Reason)
		}
	}
	for _, s := range cmp.Targets {
		for _, r := range s.Runs {
			if r.Ops == 0 {
				bad = append(bad, s.Target+": a run had no successful op")
				break
			}
		}
	}
	if len(cmp.Targets) == 0 {
		bad = append(bad, "no target ran (give their addresses: --addr, --redis, --memcached, --postgres)")
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}
