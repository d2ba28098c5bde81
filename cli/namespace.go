package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
)

func (a *app) nsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ns",
		Aliases: []string{"namespace", "namespaces"},
		Short:   "List, show, create, update and delete namespaces",
		Long: `Manage namespaces, the configuration shared by a set of counters.

With -o json, "ns get", "ns create" and "ns update" print the abacus.v1.Namespace
itself, in the shape that "ns create -f" and "ns update -f" read back:

  abacus ns get views -o json | jq '.ttl = "3600s"' | abacus ns update -f -`,
		Args:                       noSubcommand,
		RunE:                       showHelp,
		SuggestionsMinimumDistance: 2,
	}
	cmd.AddCommand(a.nsListCmd(), a.nsGetCmd(), a.nsCreateCmd(), a.nsUpdateCmd(), a.nsDeleteCmd())
	return cmd
}

func (a *app) nsListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List every namespace, ordered by name",
		Args:    usageArgs(cobra.ExactArgs(0)),
		RunE: func(cmd *cobra.Command, _ []string) error {
			nsc, err := a.namespaces()
			if err != nil {
				return err
			}
			resp, err := nsc.ListNamespaces(cmd.Context(), &abacusv1.ListNamespacesRequest{})
			if err != nil {
				return err
			}
			return a.print(resp, func(w io.Writer) error {
				return writeNamespaceTable(w, resp.GetNamespaces())
			})
		},
	}
}

func (a *app) nsGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show every setting of a namespace, defaults filled in",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			nsc, err := a.namespaces()
			if err != nil {
				return err
			}
			resp, err := nsc.GetNamespace(cmd.Context(), &abacusv1.GetNamespaceRequest{Name: args[0]})
			if err != nil {
				return err
			}
			return a.printNamespace(resp.GetNamespace())
		},
	}
}

func (a *app) nsDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a namespace and, with it, its counters' events and checkpoints",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			nsc, err := a.namespaces()
			if err != nil {
				return err
			}
			resp, err := nsc.DeleteNamespace(cmd.Context(), &abacusv1.DeleteNamespaceRequest{Name: args[0]})
			if err != nil {
				return err
			}
			return a.print(resp, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "deleted namespace %s\n", args[0])
				return err
			})
		},
	}
}

// nsSettings are the flags of "ns create" that describe a namespace without
// a file.
type nsSettings struct {
	counterType string
	cardinality string
	acceptLimit time.Duration
	ttl         time.Duration
	coalesce    time.Duration
	description string
	rateLimit   rateLimitFlags
}

// rateLimitFlags are the --rate-limit-* flags of "ns create" and "ns update".
type rateLimitFlags struct {
	rps, ips float64
	burst    int32
}

var rateLimitFlagNames = []string{"rate-limit-rps", "rate-limit-ips", "rate-limit-burst"}

func (r *rateLimitFlags) add(f *pflag.FlagSet) {
	f.Float64Var(&r.rps, "rate-limit-rps", 0, "rate limit: requests per second this namespace may take on each node (0: none)")
	f.Float64Var(&r.ips, "rate-limit-ips", 0, "rate limit: increments (adds, batch items) per second on each node (0: none)")
	f.Int32Var(&r.burst, "rate-limit-burst", 0, "rate limit: requests and increments that may pass at once above the rates (0: one second's worth)")
}

// apply sets the --rate-limit-* flags given on the command line into rl,
// creating it if needed; the ones not given keep rl's values.
func (r *rateLimitFlags) apply(cmd *cobra.Command, rl **abacusv1.RateLimit) {
	if countSet(cmd, rateLimitFlagNames...) == 0 {
		return
	}
	if *rl == nil {
		*rl = &abacusv1.RateLimit{}
	}
	set := cmd.Flags().Changed
	if set("rate-limit-rps") {
		(*rl).RequestsPerSecond = r.rps
	}
	if set("rate-limit-ips") {
		(*rl).IncrementsPerSecond = r.ips
	}
	if set("rate-limit-burst") {
		(*rl).Burst = r.burst
	}
}

func (a *app) nsCreateCmd() *cobra.Command {
	var s nsSettings
	var file string
	cmd := &cobra.Command{
		Use:   "create {NAME --type TYPE [flags] | -f FILE}",
		Short: "Create a namespace from flags or from a JSON file",
		Long: `Create a namespace, either from flags or from FILE ("-" for stdin), which holds
one abacus.v1.Namespace in protobuf JSON, e.g.

  {"name": "views", "counter_type": "EVENTUAL", "counter_cardinality": "HIGH",
   "accept_limit": "5s", "ttl": "86400s", "queue_config": {"coalesce_ms": 1000}}

Settings left out take the server's defaults for the cardinality. The
namespace is printed as the server stored it.`,
		Example: `  abacus ns create views --type EVENTUAL --cardinality HIGH --accept-limit 5s
  abacus ns create views -f views.json`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ns *abacusv1.Namespace
			var err error
			if file != "" {
				if len(args) > 0 || countSet(cmd, settingsFlags...) > 0 {
					return usagef(cmd, "-f takes the whole namespace from the file; give no NAME or settings flags with it")
				}
				ns, err = a.readNamespace(file)
			} else {
				if len(args) == 0 {
					return usagef(cmd, "give a NAME and --type, or -f FILE")
				}
				ns, err = s.namespace(cmd, args[0])
			}
			if err != nil {
				return &usageError{cmd: cmd, err: err}
			}
			nsc, err := a.namespaces()
			if err != nil {
				return err
			}
			resp, err := nsc.CreateNamespace(cmd.Context(), &abacusv1.CreateNamespaceRequest{Namespace: ns})
			if err != nil {
				return err
			}
			return a.printNamespace(resp.GetNamespace())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", `read the namespace from FILE, JSON of abacus.v1.Namespace ("-" for stdin)`)
	f.StringVar(&s.counterType, "type", "", "counter type: BEST_EFFORT, EVENTUAL or ACCURATE (required without -f)")
	f.StringVar(&s.cardinality, "cardinality", "", "expected number of counters, which chooses defaults: LOW or HIGH")
	f.DurationVar(&s.acceptLimit, "accept-limit", 0, "events older than this are refused and may be rolled up (e.g. 5s)")
	f.DurationVar(&s.ttl, "ttl", 0, "TTL of best-effort counts and cached rollups (e.g. 24h)")
	f.DurationVar(&s.coalesce, "coalesce", 0, "window over which rollup signals of one counter are coalesced (e.g. 1s)")
	f.StringVar(&s.description, "description", "", "free-text description")
	s.rateLimit.add(f)
	return cmd
}

// settingsFlags are the flags of "ns create" that -f excludes.
var settingsFlags = append([]string{"type", "cardinality", "accept-limit", "ttl", "coalesce", "description"}, rateLimitFlagNames...)

// countSet counts the named flags that were given on the command line.
func countSet(cmd *cobra.Command, names ...string) int {
	n := 0
	for _, name := range names {
		if cmd.Flags().Changed(name) {
			n++
		}
	}
	return n
}

// namespace builds the namespace the flags describe. Only flags that were
// given are set, so that the server's defaults apply to the rest.
func (s *nsSettings) namespace(cmd *cobra.Command, name string) (*abacusv1.Namespace, error) {
	set := cmd.Flags().Changed
	if !set("type") {
		return nil, fmt.Errorf("--type is required: BEST_EFFORT, EVENTUAL or ACCURATE")
	}
	ns := &abacusv1.Namespace{Name: name, Description: s.description}
	v, ok := abacusv1.CounterType_value[enumName(s.counterType)]
	if !ok || v == 0 {
		return nil, fmt.Errorf("--type must be BEST_EFFORT, EVENTUAL or ACCURATE, not %q", s.counterType)
	}
	ns.CounterType = abacusv1.CounterType(v)
	if set("cardinality") {
		v, ok := abacusv1.Cardinality_value[enumName(s.cardinality)]
		if !ok || v == 0 {
			return nil, fmt.Errorf("--cardinality must be LOW or HIGH, not %q", s.cardinality)
		}
		ns.CounterCardinality = abacusv1.Cardinality(v)
	}
	for _, d := range []struct {
		flag string
		val  time.Duration
		dst  **durationpb.Duration
	}{
		{"accept-limit", s.acceptLimit, &ns.AcceptLimit},
		{"ttl", s.ttl, &ns.Ttl},
	} {
		if !set(d.flag) {
			continue
		}
		if d.val <= 0 {
			return nil, fmt.Errorf("--%s must be positive, not %v", d.flag, d.val)
		}
		*d.dst = durationpb.New(d.val)
	}
	if set("coalesce") {
		if s.coalesce <= 0 || s.coalesce%time.Millisecond != 0 {
			return nil, fmt.Errorf("--coalesce must be a positive whole number of milliseconds, not %v", s.coalesce)
		}
		ns.QueueConfig = &abacusv1.QueueConfig{CoalesceMs: s.coalesce.Milliseconds()}
	}
	s.rateLimit.apply(cmd, &ns.RateLimit)
	return ns, nil
}

// enumName accepts enum values in any case and with dashes ("best-effort").
func enumName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
}

func (a *app) nsUpdateCmd() *cobra.Command {
	var file string
	var rl rateLimitFlags
	cmd := &cobra.Command{
		Use:   "update {-f FILE | NAME --rate-limit-rps N [--rate-limit-ips M] [--rate-limit-burst B]}",
		Short: "Replace the mutable settings of a namespace from a JSON file, or its rate limit from flags",
		Long: `Replace the mutable settings of the namespace named in FILE ("-" for stdin),
which holds one abacus.v1.Namespace in protobuf JSON, as "ns get -o json"
prints it. The server changes counter_cardinality, ttl, accept_limit (which
may only shrink), queue_config, rollup_batch_count, retention and description,
and refuses changes to counter_type, time_partition and storage. A new
counter_cardinality does not re-derive the settings it chose defaults for:
set those explicitly.

With NAME and --rate-limit-* flags instead of a file, only the namespace's
rate limit changes: the flags given replace those parts of the current
limit, and all three at 0 remove it. Rate limits are enforced by each node on
its own: N nodes allow N times the rates.`,
		Example: `  abacus ns update -f views.json
  abacus ns get views -o json | jq '.description = "page views"' | abacus ns update -f -
  abacus ns update views --rate-limit-rps 1000 --rate-limit-ips 50000`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			flags := countSet(cmd, rateLimitFlagNames...)
			var ns *abacusv1.Namespace
			var err error
			switch {
			case file != "" && (len(args) > 0 || flags > 0):
				return usagef(cmd, "-f takes the whole namespace from the file; give no NAME or --rate-limit-* flags with it")
			case file != "":
				if ns, err = a.readNamespace(file); err != nil {
					return &usageError{cmd: cmd, err: err}
				}
			case len(args) == 0 || flags == 0:
				return usagef(cmd, "give -f FILE, or a NAME and --rate-limit-* flags")
			}
			nsc, err := a.namespaces()
			if err != nil {
				return err
			}
			if ns == nil {
				// Only the rate limit: start from the stored one so that
				// the flags not given keep their values.
				cur, err := nsc.GetNamespace(cmd.Context(), &abacusv1.GetNamespaceRequest{Name: args[0]})
				if err != nil {
					return err
				}
				ns = &abacusv1.Namespace{Name: args[0], RateLimit: cur.GetNamespace().GetRateLimit()}
				rl.apply(cmd, &ns.RateLimit)
			}
			resp, err := nsc.UpdateNamespace(cmd.Context(), &abacusv1.UpdateNamespaceRequest{Namespace: ns})
			if err != nil {
				return err
			}
			return a.printNamespace(resp.GetNamespace())
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", `read the namespace from FILE, JSON of abacus.v1.Namespace ("-" for stdin)`)
	rl.add(cmd.Flags())
	return cmd
}

// readNamespace reads one abacus.v1.Namespace in protobuf JSON from path, or
// from stdin when path is "-". Unknown fields are errors, so that a typo does
// not silently leave a setting at its default.
func (a *app) readNamespace(path string) (*abacusv1.Namespace, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(a.stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	ns := &abacusv1.Namespace{}
	if err := protojson.Unmarshal(b, ns); err != nil {
		return nil, fmt.Errorf("%s is not a JSON abacus.v1.Namespace: %w", path, err)
	}
	if ns.GetName() == "" {
		return nil, fmt.Errorf("%s: the namespace has no name", path)
	}
	// create_time and update_time are output only; dropping them lets the
	// output of "ns get -o json" go back in as it is.
	ns.CreateTime, ns.UpdateTime = nil, nil
	return ns, nil
}

// printNamespace prints one namespace: its settings as text, or the
// abacus.v1.Namespace itself as JSON, which -f reads back.
func (a *app) printNamespace(ns *abacusv1.Namespace) error {
	return a.print(ns, func(w io.Writer) error { return writeNamespace(w, ns) })
}
