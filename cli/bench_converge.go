package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/abacus-dev/abacus/bench"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

func (a *app) benchConvergeCmd(f *benchFlags) *cobra.Command {
	var (
		adds    int
		maxWait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "converge",
		Short: "Measure how soon after the last write the counts of many counters are exact",
		Long: `Write --adds increments of 1 to each of --counters fresh counters (their names
carry a random prefix, so they start at 0) with AddCounts batches of
--batch-size, from --callers concurrent callers; then read every counter with
GetCounts, sweep after sweep over the ones not yet exact, until all are exact
or --max-wait has passed since the last acknowledged write. After each sweep
the check rests as long as the sweep took, between 100ms and 1s, so that its
reads leave the node time for its rollups.

The report gives the time from the last acknowledged write to the read that
found the last counter exact — an upper bound of the convergence time, since
a counter may be exact before it is read — and compares it with the target,
the namespace's accept limit + 1s. Reads of EVENTUAL counters also ask for
their rollup, as every GetCount does. Every add carries its own idempotency
token, and a call that fails with UNAVAILABLE or DEADLINE_EXCEEDED is
retried with the same tokens, so no count can exceed --adds; one that does
is reported as overcounted.

Defaults differ from "abacus bench": --counters 1000000, --batch-size 1000,
--callers 16, --namespace bench_converge (created as --type, EVENTUAL).`,
		Example: `  abacus bench converge
  abacus bench converge --counters 100000 --adds 3 -o json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			sec, err := a.securityOptions()
			if err != nil {
				return err
			}
			cfg := bench.ConvergeConfig{
				ClientOptions: sec,
				Addr:          a.addr, Namespace: "bench_converge", Type: f.nsType, Counters: 1_000_000,
				Adds: adds, BatchSize: 1000, Callers: 16, MaxWait: maxWait, Timeout: max(a.timeout, 30*time.Second),
			}
			fl := cmd.Flags()
			if fl.Changed("namespace") {
				cfg.Namespace = f.namespace
			}
			if fl.Changed("counters") {
				cfg.Counters = f.counters
			}
			if fl.Changed("batch-size") {
				cfg.BatchSize = f.batchSize
			}
			if fl.Changed("callers") {
				cfg.Callers = f.callers
			}
			if adds < 1 {
				return usagef(cmd, "--adds must be at least 1, not %d", adds)
			}
			return a.runConverge(cmd.Context(), cfg, f.noProgress)
		},
	}
	cmd.Flags().IntVar(&adds, "adds", 1, "increments of 1 per counter, each with its own token")
	cmd.Flags().DurationVar(&maxWait, "max-wait", 0, "give up this long after the last write (0: accept limit + 1m)")
	return cmd
}

func (a *app) runConverge(ctx context.Context, cfg bench.ConvergeConfig, noProgress bool) error {
	on := !noProgress && a.output != "json"
	var bar *progressbar.ProgressBar
	phase := ""
	if on {
		cfg.Progress = func(p bench.ConvergeProgress) {
			if bar == nil || phase != p.Phase {
				if bar != nil {
					_ = bar.Finish()
				}
				phase = p.Phase
				bar = progressbar.NewOptions64(max(p.Total, 1), progressbar.OptionSetWriter(a.stderr),
					progressbar.OptionSetWidth(30), progressbar.OptionSetPredictTime(false), progressbar.OptionClearOnFinish())
			}
			what := "adds"
			if p.Phase == "check" {
				what = "exact"
			}
			bar.Describe(fmt.Sprintf("converge %-5s %9d %s %6.1fs", p.Phase, p.Done, what, p.Elapsed.Seconds()))
			_ = bar.Set64(p.Done)
		}
	}
	res, err := bench.Converge(ctx, cfg)
	if bar != nil {
		_ = bar.Finish()
	}
	if res == nil {
		return err
	}
	if a.output == "json" {
		if werr := writeJSON(a.stdout, struct {
			Schema string                `json:"schema"`
			Env    bench.Env             `json:"env"`
			Result *bench.ConvergeResult `json:"result"`
		}{bench.SchemaConverge, bench.CurrentEnv(), res}); werr != nil {
			return werr
		}
	} else {
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "target:\t%s\n", res.TargetInfo)
		fmt.Fprintf(tw, "writes:\t%s adds to %s counters in %.2fs (%s adds/s)\n",
			count(res.Adds), count(int64(res.Counters)), res.WriteSec, thousands(res.WriteRate))
		fmt.Fprintf(tw, "reads:\t%s in %d sweeps; %s counters exact at the first sweep\n",
			count(res.Reads), res.Sweeps, count(res.ExactAtFirstSweep))
		if res.Inexact == 0 {
			verdict := "met"
			if !res.Met {
				verdict = "not met"
			}
			fmt.Fprintf(tw, "exact after:\t%.2fs from the last write (target: accept limit %gs + 1s = %gs, %s)\n",
				res.ExactAfterSec, res.AcceptLimitSec, res.TargetSec, verdict)
		} else {
			fmt.Fprintf(tw, "exact after:\tnever within --max-wait: %s counters still inexact\n", count(res.Inexact))
		}
		var parts []string
		for _, f := range []float64{0.5, 0.9, 0.99, 0.999} {
			if at, ok := res.ExactFraction(f); ok {
				parts = append(parts, fmt.Sprintf("%g%% by %.2fs", f*100, at))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(tw, "exact share:\t%s (at the end of a sweep, after the last write)\n", strings.Join(parts, ", "))
		}
		if res.Overcounted > 0 {
			fmt.Fprintf(tw, "overcounted:\t%s counters read above --adds\n", count(res.Overcounted))
		}
		if ferr := tw.Flush(); ferr != nil {
			return ferr
		}
	}
	if err != nil {
		return err
	}
	if res.Inexact > 0 || res.Overcounted > 0 {
		return fmt.Errorf("%d counters inexact, %d overcounted", res.Inexact, res.Overcounted)
	}
	return nil
}
