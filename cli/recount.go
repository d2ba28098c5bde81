package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// recountSummary is what a recount found over all the counters it checked.
type recountSummary struct {
	Checked    int `json:"counters_checked"`
	Mismatches int `json:"mismatches"`
	Repaired   int `json:"repaired"`
}

func (a *app) recountCmd() *cobra.Command {
	var (
		all, repair, noProgress bool
		prefix                  string
	)
	cmd := &cobra.Command{
		Use:   "recount NAMESPACE (COUNTER... | --all) [--repair]",
		Short: "Recount counters from their events and compare with their checkpoints",
		Long: `Recount each COUNTER from its events up to its checkpoint time, and compare
with the checkpoint the last rollup wrote. With --all, walk every counter of
the namespace (those whose names start with --prefix, if given), with a
progress bar on stderr when it is a terminal, and end with a summary line:
counters checked, mismatches, repaired.

Each counter's line shows its checkpoint count, the recounted count, the
number of events read, and "match", "MISMATCH" or, with --repair (which
needs the admin right), "repaired": the checkpoint was rewritten to the
recounted count, without moving its time. Events that retention deleted are
not recounted: their count is the one retention kept, so they never make a
mismatch.

With -o json, each counter is printed as its RecountResponse with a leading
"counter_name", one per line, and --all adds a last line
{"counters_checked":N,"mismatches":M,"repaired":R}.

Exit status 1 (with "abacus: data_loss: ...") when a mismatch was left
unrepaired.`,
		Example: `  abacus recount views home about
  abacus recount views --all
  abacus recount views --all --prefix home/ --repair`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, names := args[0], args[1:]
			switch {
			case all && len(names) > 0:
				return usagef(cmd, "give COUNTER names or --all, not both")
			case !all && len(names) == 0:
				return usagef(cmd, "give one or more COUNTER names, or --all for every counter of %s", ns)
			case !all && prefix != "":
				return usagef(cmd, "--prefix goes with --all")
			}
			r := &recounter{a: a, ns: ns, repair: repair, bar: &auditBar{},
				tab: newPagedTable(a.stdout, "COUNTER", "CHECKPOINT_COUNT", "RECOUNTED", "EVENTS_SCANNED", "RESULT")}
			ctx := cmd.Context()
			if !all {
				for _, name := range names {
					if err := r.recount(ctx, name); err != nil {
						return err
					}
				}
				if err := r.flush(); err != nil {
					return err
				}
				return r.verdict()
			}
			r.bar = a.newBar(noProgress, false)
			err := a.walkCounters(ctx, &abacusv1.ListCountersRequest{Namespace: ns, Prefix: prefix}, func(page *abacusv1.ListCountersResponse) (bool, error) {
				for _, c := range page.Counters {
					if err := r.recount(ctx, c.GetCounterName()); err != nil {
						return false, err
					}
				}
				// Rows a page at a time, so that a large namespace shows
				// its first results at once.
				r.bar.clear()
				return true, r.flush()
			})
			r.bar.done()
			if err != nil {
				return err
			}
			if err := r.flush(); err != nil {
				return err
			}
			if err := r.printSummary(); err != nil {
				return err
			}
			return r.verdict()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "recount every counter of the namespace")
	cmd.Flags().StringVar(&prefix, "prefix", "", "with --all, only the counters whose names start with this")
	cmd.Flags().BoolVar(&repair, "repair", false, "rewrite a checkpoint that does not match its events (needs the admin right)")
	cmd.Flags().BoolVar(&noProgress, "no-progress", false, "no progress bar on stderr with --all")
	return cmd
}

// recounter recounts the counters of one namespace, one at a time, and
// keeps the tally.
type recounter struct {
	a      *app
	ns     string
	repair bool
	tab    *pagedTable // text output
	bar    *auditBar
	sum    recountSummary
}

func (r *recounter) recount(ctx context.Context, counter string) error {
	req := &abacusv1.RecountRequest{Namespace: r.ns, CounterName: counter, Repair: r.repair}
	res, err := read(ctx, r.a, func(ctx context.Context, c abacusv1.CounterServiceClient) (*abacusv1.RecountResponse, error) {
		return c.Recount(ctx, req)
	})
	if err != nil {
		return err
	}
	r.sum.Checked++
	if !res.GetMatch() {
		r.sum.Mismatches++
	}
	if res.GetRepaired() {
		r.sum.Repaired++
	}
	r.bar.update(fmt.Sprintf("recount %s: %d counters, %d mismatches, %d repaired", r.ns, r.sum.Checked, r.sum.Mismatches, r.sum.Repaired), 0)
	if r.a.output == "json" {
		r.bar.clear()
		return r.a.printWithCounter(counter, res)
	}
	r.tab.add(counter, fmt.Sprint(res.GetCheckpointCount()), fmt.Sprint(res.GetRecounted()), fmt.Sprint(res.GetEventsScanned()), recountResult(res))
	return nil
}

// flush writes the table rows so far (text output only).
func (r *recounter) flush() error {
	if r.a.output == "json" {
		return nil
	}
	return r.tab.flush()
}

// recountResult is the verdict column of a recount.
func recountResult(res *abacusv1.RecountResponse) string {
	switch {
	case res.GetRepaired():
		return "repaired"
	case res.GetMatch():
		return "match"
	default:
		return "MISMATCH"
	}
}

func (r *recounter) printSummary() error {
	if r.a.output == "json" {
		b, err := json.Marshal(r.sum)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(r.a.stdout, "%s\n", b)
		return err
	}
	return writeSummary(r.a.stdout, r.sum)
}

func writeSummary(w io.Writer, s recountSummary) error {
	_, err := fmt.Fprintf(w, "counters checked: %d, mismatches: %d, repaired: %d\n", s.Checked, s.Mismatches, s.Repaired)
	return err
}

// verdict is the error that makes the exit status 1 when a mismatch was
// left unrepaired. A checkpoint that disagrees with its events is corrupt
// data, hence data_loss.
func (r *recounter) verdict() error {
	left := r.sum.Mismatches - r.sum.Repaired
	if left == 0 {
		return nil
	}
	what := "counters do not match their events"
	if left == 1 {
		what = "counter does not match its events"
	}
	hint := "; rerun with --repair to rewrite their checkpoints"
	if r.repair {
		hint = "; they were not repaired"
	}
	return status.Errorf(codes.DataLoss, "%d %s%s", left, what, hint)
}
