package cli

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/abacus-dev/abacus"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// writeFlags are the idempotency flags shared by add and clear.
type writeFlags struct {
	token string
	at    string
}

func (w *writeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&w.token, "idempotency-token", "", "idempotency token, the event id (default: a new UUID)")
	cmd.Flags().StringVar(&w.at, "time", "", "generation time of the token, RFC 3339 (default: now)")
}

func (a *app) addCmd() *cobra.Command {
	var wf writeFlags
	var get bool
	cmd := &cobra.Command{
		Use:   "add NAMESPACE COUNTER DELTA",
		Short: "Add DELTA (which may be negative) to a counter",
		Long: `Add DELTA, a signed 64-bit integer other than 0, to a counter.

Every add carries an idempotency token: --idempotency-token and --time when given, else a
new UUID and the current time. A call that fails with UNAVAILABLE or
DEADLINE_EXCEEDED is retried with the same token and time, so it is applied
once. With --get the count after the add is printed alone on a line.`,
		Example: `  abacus add views home 1
  abacus add views home -5
  n=$(abacus add --get views home 1)
  abacus add views home 1 --idempotency-token evt-42 --time 2024-10-05T14:48:00Z`,
		Args: usageArgs(cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, args []string) error {
			delta, err := strconv.ParseInt(args[2], 10, 64)
			if err != nil {
				return usagef(cmd, "DELTA %q is not a 64-bit integer", args[2])
			}
			tok, err := a.writeToken(cmd, wf)
			if err != nil {
				return err
			}
			svc, err := a.counters()
			if err != nil {
				return err
			}
			req := abacus.AddRequest{Namespace: args[0], Counter: args[1], Delta: delta, Token: tok}
			if get {
				n, tok, err := svc.AddAndGet(cmd.Context(), req)
				if err != nil {
					return err
				}
				return a.print(&abacusv1.AddAndGetCountResponse{Count: n, IdempotencyToken: tokenProto(tok)}, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, n)
					return err
				})
			}
			tok, err = svc.Add(cmd.Context(), req)
			if err != nil {
				return err
			}
			resp := &abacusv1.AddCountResponse{IdempotencyToken: tokenProto(tok)}
			return a.print(resp, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "added %d to %s/%s %s\n", delta, req.Namespace, req.Counter, tokenText(resp.IdempotencyToken))
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
			svc, err := a.counters()
			if err != nil {
				return err
			}
			ns, names := args[0], args[1:]
			if len(names) == 1 {
				n, err := svc.Get(cmd.Context(), abacus.Ref{Namespace: ns, Counter: names[0]})
				if err != nil {
					return err
				}
				return a.print(&abacusv1.GetCountResponse{Count: n}, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, n)
					return err
				})
			}
			refs := make([]abacus.Ref, len(names))
			for i, name := range names {
				refs[i] = abacus.Ref{Namespace: ns, Counter: name}
			}
			counts, err := svc.GetBatch(cmd.Context(), refs)
			if err != nil {
				return err
			}
			resp := &abacusv1.GetCountsResponse{Counts: make([]*abacusv1.GetCountResponse, len(counts))}
			for i, n := range counts {
				resp.Counts[i] = &abacusv1.GetCountResponse{Count: n}
			}
			return a.print(resp, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				for i, n := range counts {
					fmt.Fprintf(tw, "%s\t%d\n", names[i], n)
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
		Long: `Reset a counter to 0. Like add, a clear carries an idempotency token (--idempotency-token
and --time, or a new UUID and the current time) and is retried with it after
UNAVAILABLE or DEADLINE_EXCEEDED.`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := a.writeToken(cmd, wf)
			if err != nil {
				return err
			}
			svc, err := a.counters()
			if err != nil {
				return err
			}
			ref := abacus.Ref{Namespace: args[0], Counter: args[1]}
			tok, err = svc.Clear(cmd.Context(), ref, tok)
			if err != nil {
				return err
			}
			resp := &abacusv1.ClearCountResponse{IdempotencyToken: tokenProto(tok)}
			return a.print(resp, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "cleared %s/%s %s\n", ref.Namespace, ref.Counter, tokenText(resp.IdempotencyToken))
				return err
			})
		},
	}
	wf.register(cmd)
	return cmd
}

// tokenText describes the token a write was stored under.
func tokenText(tok *abacusv1.IdempotencyToken) string {
	return fmt.Sprintf("(token %s, generation_time %s)", tok.GetToken(), formatTimestamp(tok.GetGenerationTime()))
}

// tokenProto is a token as -o json prints it: the idempotency_token of the
// RPC's response, which echoes the token the write was sent with.
func tokenProto(tok abacus.Token) *abacusv1.IdempotencyToken {
	p := &abacusv1.IdempotencyToken{Token: tok.ID}
	if !tok.Time.IsZero() {
		p.GenerationTime = timestamppb.New(tok.Time)
	}
	return p
}
