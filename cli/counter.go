package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/spf13/cobra"
)

// writeFlags are the idempotency flags shared by add and clear.
type writeFlags struct {
	token string
	at    string
}

func (w *writeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&w.token, "token", "", "idempotency token (default: a new UUID)")
	cmd.Flags().StringVar(&w.at, "time", "", "generation time of the token, RFC 3339 (default: now)")
}

func (a *app) addCmd() *cobra.Command {
	var wf writeFlags
	var get bool
	cmd := &cobra.Command{
		Use:   "add NAMESPACE COUNTER DELTA",
		Short: "Add DELTA (which may be negative) to a counter",
		Long: `Add DELTA, a signed 64-bit integer other than 0, to a counter.

Every add carries an idempotency token: --token and --time when given, else a
new UUID and the current time. A call that fails with UNAVAILABLE or
DEADLINE_EXCEEDED is retried with the same token and time, so it is applied
once. With --get the count after the add is printed alone on a line.`,
		Example: `  abacus add views home 1
  abacus add views home -5
  n=$(abacus add --get views home 1)
  abacus add views home 1 --token evt-42 --time 2024-10-05T14:48:00Z`,
		Args: usageArgs(cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, args []string) error {
			delta, err := strconv.ParseInt(args[2], 10, 64)
			if err != nil {
				return usagef(cmd, "DELTA %q is not a 64-bit integer", args[2])
			}
			tok, err := a.idempotencyToken(wf.token, wf.at)
			if err != nil {
				return &usageError{cmd: cmd, err: err}
			}
			client, err := a.counters()
			if err != nil {
				return err
			}
			req := &abacusv1.AddCountRequest{Namespace: args[0], CounterName: args[1], Delta: delta, IdempotencyToken: tok}
			if get {
				var resp *abacusv1.AddAndGetCountResponse
				err := a.retry(cmd.Context(), func(ctx context.Context) (err error) {
					resp, err = client.AddAndGetCount(ctx, req)
					return err
				})
				if err != nil {
					return ambiguousWrite(err, tok)
				}
				return a.print(resp, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, resp.GetCount())
					return err
				})
			}
			var resp *abacusv1.AddCountResponse
			err = a.retry(cmd.Context(), func(ctx context.Context) (err error) {
				resp, err = client.AddCount(ctx, req)
				return err
			})
			if err != nil {
				return ambiguousWrite(err, tok)
			}
			return a.print(resp, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "added %d to %s/%s %s\n", delta, req.Namespace, req.CounterName, tokenText(resp.GetIdempotencyToken(), tok))
				return err
			})
		},
	}
	wf.register(cmd)
	cmd.Flags().BoolVar(&get, "get", false, "print the count after the add (AddAndGetCount)")
	return cmd
}

func (a *app) getCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAMESPACE COUNTER [COUNTER...]",
		Short: "Print the count of one or more counters",
		Long: `Print the count of a counter alone on a line, so that $(abacus get ns c) is
the number. With several counters, print one "COUNTER COUNT" line each, in
the order given, read in one call.`,
		Example: `  abacus get views home
  abacus get views home about contact
  abacus get views home -o json`,
		Args: usageArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := a.counters()
			if err != nil {
				return err
			}
			ns, names := args[0], args[1:]
			if len(names) == 1 {
				var resp *abacusv1.GetCountResponse
				err := a.retry(cmd.Context(), func(ctx context.Context) (err error) {
					resp, err = client.GetCount(ctx, &abacusv1.GetCountRequest{Namespace: ns, CounterName: names[0]})
					return err
				})
				if err != nil {
					return err
				}
				return a.print(resp, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, resp.GetCount())
					return err
				})
			}
			req := &abacusv1.GetCountsRequest{}
			for _, name := range names {
				req.Counters = append(req.Counters, &abacusv1.GetCountRequest{Namespace: ns, CounterName: name})
			}
			var resp *abacusv1.GetCountsResponse
			err = a.retry(cmd.Context(), func(ctx context.Context) (err error) {
				resp, err = client.GetCounts(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			if len(resp.GetCounts()) != len(names) {
				return fmt.Errorf("server answered %d counts for %d counters", len(resp.GetCounts()), len(names))
			}
			return a.print(resp, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				for i, c := range resp.GetCounts() {
					fmt.Fprintf(tw, "%s\t%d\n", names[i], c.GetCount())
				}
				return tw.Flush()
			})
		},
	}
}

func (a *app) clearCmd() *cobra.Command {
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "clear NAMESPACE COUNTER",
		Short: "Reset a counter to 0",
		Long: `Reset a counter to 0. Like add, a clear carries an idempotency token (--token
and --time, or a new UUID and the current time) and is retried with it after
UNAVAILABLE or DEADLINE_EXCEEDED.`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := a.idempotencyToken(wf.token, wf.at)
			if err != nil {
				return &usageError{cmd: cmd, err: err}
			}
			client, err := a.counters()
			if err != nil {
				return err
			}
			req := &abacusv1.ClearCountRequest{Namespace: args[0], CounterName: args[1], IdempotencyToken: tok}
			var resp *abacusv1.ClearCountResponse
			err = a.retry(cmd.Context(), func(ctx context.Context) (err error) {
				resp, err = client.ClearCount(ctx, req)
				return err
			})
			if err != nil {
				return ambiguousWrite(err, tok)
			}
			return a.print(resp, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "cleared %s/%s %s\n", req.Namespace, req.CounterName, tokenText(resp.GetIdempotencyToken(), tok))
				return err
			})
		},
	}
	wf.register(cmd)
	return cmd
}

// tokenText describes the token a write was stored under: the server's echo
// when it sent one, else the token the CLI sent.
func tokenText(stored, sent *abacusv1.IdempotencyToken) string {
	if stored.GetToken() == "" {
		stored = sent
	}
	return fmt.Sprintf("(token %s, generation_time %s)", stored.GetToken(), formatTimestamp(stored.GetGenerationTime()))
}
