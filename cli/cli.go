// Package cli implements abacus, the command-line client of the abacus counting
// service. It talks gRPC to one abacusd node through the Go client (package
// client), so that its retries, idempotency tokens and rules for writes of
// unknown outcome are the client's.
//
// The whole program lives here rather than in cmd/abacus so that tests can run
// it in-process: Run takes the arguments and the output streams and returns
// the exit status instead of touching the process's globals.
//
// Exit status: 0 on success, 1 when the server (or the connection to it)
// reported an error, 2 when the command line or an input file is wrong and
// nothing was sent. Errors go to stderr as
//
//	abacus: <grpc code in snake case>: <message>
//
// so scripts can tell a not_found from an unavailable without parsing prose.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/abacus-dev/abacus/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit statuses returned by Run.
const (
	// ExitOK means the command succeeded.
	ExitOK = 0
	// ExitServer means the server, or the connection to it, reported an error.
	// For an add or clear the write may or may not have been applied; rerun
	// it with the token and time printed in the error to be sure.
	ExitServer = 1
	// ExitUsage means the command line or an input file was wrong; nothing
	// was sent to the server.
	ExitUsage = 2
)

// defaultAddr is abacusd's default gRPC listen address.
const defaultAddr = "127.0.0.1:7400"

// addrEnv overrides defaultAddr, so that a shell session can point every
// command at one node without repeating --addr.
const addrEnv = "ABACUS_ADDR"

// tokenEnv gives the access token when --token is not set: a token in an
// environment variable stays out of the shell history and of ps.
const tokenEnv = "ABACUS_TOKEN"

// Run runs the abacus command line args (without the program name), writing
// results to stdout and diagnostics to stderr, and returns the exit status
// (ExitOK, ExitServer or ExitUsage). Cancelling ctx aborts the RPC in flight.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return newApp(stdout, stderr).run(ctx, args)
}

// app is one invocation of the CLI: its environment, its parsed global flags
// and its connection. Tests build one with newApp and replace the
// environment hooks (stdin, lookupEnv, backoff) before calling run.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
	// backoff is the pause before the first retry; it doubles up to maxBackoff.
	backoff time.Duration
	// isTerminal reports whether a writer is a terminal: progress bars are
	// drawn on stderr only when it is one.
	isTerminal func(io.Writer) bool

	// Global flags.
	addr    string
	output  string
	timeout time.Duration
	retries int
	// Access and TLS flags.
	token                                 string
	tlsCA, tlsCert, tlsKey, tlsServerName string

	// cl is the client of --addr, made on first use (see client).
	cl *client.Client
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{
		stdin:      os.Stdin,
		stdout:     stdout,
		stderr:     stderr,
		lookupEnv:  os.LookupEnv,
		backoff:    100 * time.Millisecond,
		isTerminal: isTerminal,
	}
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCmd()
	root.SetArgs(normalizeArgs(root, args))
	err := root.ExecuteContext(ctx)
	if a.cl != nil {
		a.cl.Close()
	}
	if err == nil {
		return ExitOK
	}
	return a.report(err)
}

// rootCmd builds the command tree.
func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "abacus",
		Short: "Command-line client of the abacus counting service",
		Long: `abacus adds to, reads and clears counters, and manages namespaces, on an
abacusd node over gRPC.

Exit status: 0 on success, 1 on a server or connection error, 2 on a usage
error. Errors are printed as "abacus: <code>: <message>".`,
		Args:                       noSubcommand,
		RunE:                       showHelp,
		PersistentPreRunE:          a.checkGlobals,
		SuggestionsMinimumDistance: 2,
		// Errors and usage are printed once, by report, in one format.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{cmd: cmd, err: err}
	})

	addr := defaultAddr
	if v, ok := a.lookupEnv(addrEnv); ok && v != "" {
		addr = v
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.addr, "addr", addr, "gRPC address of an abacusd node (default from $"+addrEnv+" when set)")
	pf.StringVarP(&a.output, "output", "o", "text", "output format: text or json (protojson, one document per call)")
	pf.DurationVar(&a.timeout, "timeout", 10*time.Second, "deadline of each RPC attempt")
	pf.IntVar(&a.retries, "retries", 3, "retries of an idempotent call after UNAVAILABLE or DEADLINE_EXCEEDED (0 disables)")
	// The default stays empty (help prints defaults): $ABACUS_TOKEN is read
	// when the flag is not given (securityOptions).
	pf.StringVar(&a.token, "token", "", "access token, sent as Authorization: Bearer (default from $"+tokenEnv+")")
	pf.StringVar(&a.tlsCA, "tls-ca", "", "speak TLS, trusting the CAs of this PEM bundle (default with --tls-cert or --tls-server-name: the system's)")
	pf.StringVar(&a.tlsCert, "tls-cert", "", "PEM client certificate, for a node with --tls-client-ca (needs --tls-key)")
	pf.StringVar(&a.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	pf.StringVar(&a.tlsServerName, "tls-server-name", "", "name the server's certificate must carry (default: the host of --addr)")

	root.AddCommand(a.addCmd(), a.getCmd(), a.clearCmd(), a.nsCmd(), a.versionCmd(), a.benchCmd(), a.tokenCmd(),
		a.eventsCmd(), a.exportCmd(), a.recountCmd(), a.countersCmd(), a.topCmd())
	return root
}

func (a *app) checkGlobals(cmd *cobra.Command, _ []string) error {
	switch a.output {
	case "text", "json":
	default:
		return usagef(cmd, "--output must be text or json, not %q", a.output)
	}
	if a.timeout <= 0 {
		return usagef(cmd, "--timeout must be positive, not %v", a.timeout)
	}
	if a.retries < 0 {
		return usagef(cmd, "--retries must be 0 or more, not %d", a.retries)
	}
	return nil
}

// noSubcommand is the Args of a command that only groups subcommands. Setting
// it (rather than leaving Args nil) makes cobra hand an unknown subcommand to
// us, so that it is reported as a usage error with exit status 2.
func noSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return &usageError{cmd: cmd, err: errors.New(msg)}
}

func showHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// usageArgs wraps a cobra argument check so that its failure is a usage error.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &usageError{cmd: cmd, err: err}
		}
		return nil
	}
}

// usageError is a mistake on the command line or in an input file, found
// before anything was sent.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{cmd: cmd, err: fmt.Errorf(format, args...)}
}

// report prints err to stderr and returns the exit status it deserves.
func (a *app) report(err error) int {
	if ue, ok := errors.AsType[*usageError](err); ok {
		fmt.Fprintf(a.stderr, "abacus: %s: %v\n", codeName(codes.InvalidArgument), ue.err)
		switch {
		case ue.cmd == nil:
		case ue.cmd.HasAvailableSubCommands():
			fmt.Fprintf(a.stderr, "usage: %s COMMAND (see %s --help)\n", ue.cmd.CommandPath(), ue.cmd.CommandPath())
		default:
			fmt.Fprintf(a.stderr, "usage: %s\n", ue.cmd.UseLine())
		}
		return ExitUsage
	}
	// A write that failed after its retries may still have been applied;
	// printing its idempotency key lets the user rerun it safely.
	var rerun string
	if amb, ok := errors.AsType[*client.AmbiguousError](err); ok {
		rerun = fmt.Sprintf(" (outcome unknown; rerun with --idempotency-token %s --time %s to apply it at most once)", amb.Token, formatTime(amb.Time))
		err = amb.Err
	}
	var code codes.Code
	msg := err.Error()
	if s, ok := status.FromError(err); ok {
		code, msg = s.Code(), s.Message()
	} else if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		code = status.FromContextError(err).Code()
	} else {
		code = codes.Unknown
	}
	fmt.Fprintf(a.stderr, "abacus: %s: %s%s\n", codeName(code), msg, rerun)
	return ExitServer
}

// codeName spells a gRPC code the way the canonical error model does in
// lower case (google.rpc.Code), e.g. not_found, deadline_exceeded.
func codeName(c codes.Code) string {
	switch c {
	case codes.OK:
		return "ok"
	case codes.Canceled:
		return "canceled"
	case codes.Unknown:
		return "unknown"
	case codes.InvalidArgument:
		return "invalid_argument"
	case codes.DeadlineExceeded:
		return "deadline_exceeded"
	case codes.NotFound:
		return "not_found"
	case codes.AlreadyExists:
		return "already_exists"
	case codes.PermissionDenied:
		return "permission_denied"
	case codes.ResourceExhausted:
		return "resource_exhausted"
	case codes.FailedPrecondition:
		return "failed_precondition"
	case codes.Aborted:
		return "aborted"
	case codes.OutOfRange:
		return "out_of_range"
	case codes.Unimplemented:
		return "unimplemented"
	case codes.Internal:
		return "internal"
	case codes.Unavailable:
		return "unavailable"
	case codes.DataLoss:
		return "data_loss"
	case codes.Unauthenticated:
		return "unauthenticated"
	default:
		return fmt.Sprintf("code_%d", uint32(c))
	}
}

// normalizeArgs lets negative numbers stand as positional arguments, as in
// "abacus add ns c -5". pflag would read "-5" as the short flag '5' and fail;
// cobra offers no switch for this. When some argument is a negative number,
// the arguments are rewritten as: the subcommand path, then every flag (with
// its value), then "--", then the positional arguments in their original
// order, which pflag parses as intended. Arguments without a negative number
// are passed through untouched, so cobra's own behaviour is unchanged.
func normalizeArgs(root *cobra.Command, args []string) []string {
	end := slices.Index(args, "--")
	if end < 0 {
		end = len(args)
	}
	if !slices.ContainsFunc(args[:end], isNegativeNumber) {
		return args
	}
	cmd, _, err := root.Find(args)
	if err != nil {
		return args
	}
	depth := len(strings.Fields(cmd.CommandPath())) - 1
	cmd.InheritedFlags() // merges the parents' persistent flags into cmd.Flags()
	flags := cmd.Flags()

	var path, opts, pos []string
	for i := 0; i < len(args); i++ {
		s := args[i]
		switch {
		case s == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case isNegativeNumber(s):
			pos = append(pos, s)
		case s == "-" || !strings.HasPrefix(s, "-"):
			// The first words name the subcommand, as they did for Find.
			if len(path) < depth {
				path = append(path, s)
			} else {
				pos = append(pos, s)
			}
		default:
			opts = append(opts, s)
			if takesValue(flags, s) && i+1 < len(args) {
				i++
				opts = append(opts, args[i])
			}
		}
	}
	out := append(path, opts...)
	out = append(out, "--")
	return append(out, pos...)
}

// isNegativeNumber reports whether s looks like "-5". No abacus flag has a
// digit as its shorthand, so such an argument is never a flag.
func isNegativeNumber(s string) bool {
	if len(s) < 2 || s[0] != '-' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// takesValue reports whether the flag argument s consumes the next argument
// as its value, as pflag would: "--token" and "-o" do, "--token=x", "-ojson",
// "--get" and unknown flags do not.
func takesValue(flags *pflag.FlagSet, s string) bool {
	if name, ok := strings.CutPrefix(s, "--"); ok {
		if strings.Contains(name, "=") {
			return false
		}
		f := flags.Lookup(name)
		return f != nil && f.NoOptDefVal == ""
	}
	short := s[1:]
	for i := range len(short) {
		f := flags.ShorthandLookup(short[i : i+1])
		if f == nil {
			return false
		}
		if f.NoOptDefVal == "" {
			// A value-taking shorthand eats the rest of the cluster, if any.
			return i == len(short)-1
		}
	}
	return false
}
