package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// result is what one run of the CLI produced.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the CLI in-process against addr with the given stdin. The
// environment is empty, so that an ABACUS_ADDR of the developer's shell
// cannot leak in, and retries back off for 1ms only.
func runCLI(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.stdin = strings.NewReader(stdin)
	a.lookupEnv = func(string) (string, bool) { return "", false }
	a.backoff = time.Millisecond
	if addr != "" {
		args = append([]string{"--addr", addr}, args...)
	}
	code := a.run(context.Background(), args)
	return result{code, out.String(), errb.String()}
}

const (
	viewsText = `name:                              views
description:                       page views
counter_type:                      EVENTUAL
counter_cardinality:               LOW
ttl:                               24h
accept_limit:                      5s
time_partition.buckets_per_id:     4
time_partition.seconds_per_bucket: 600
time_partition.seconds_per_slice:  86400
queue_config.num_queues:           8
queue_config.coalesce_ms:          1000
queue_config.capacity_bytes:       1048576
rollup_batch_count:                32
retention.close_after:             48h
retention.delete_after:            720h
storage.cache:                     MEMORY
storage.counter_rollup:            EMBEDDED
storage.event_storage:             EMBEDDED cluster=local dataset=views
rate_limit:                        -
create_time:                       2024-10-05T14:48:00Z
update_time:                       -
`
	viewsJSON = `{"name":"views","counter_type":"EVENTUAL","counter_cardinality":"LOW",
		"ttl":"86400s","accept_limit":"5s",
		"time_partition":{"buckets_per_id":4,"seconds_per_bucket":"600","seconds_per_slice":"86400"},
		"queue_config":{"num_queues":8,"coalesce_ms":"1000","capacity_bytes":"1048576"},
		"rollup_batch_count":32,
		"retention":{"close_after":"172800s","delete_after":"2592000s"},
		"storage":{"cache":{"type":"MEMORY","cluster":"","dataset":""},
			"counter_rollup":{"type":"EMBEDDED","cluster":"","dataset":""},
			"event_storage":{"type":"EMBEDDED","cluster":"local","dataset":"views"}},
		"description":"page views","create_time":"2024-10-05T14:48:00Z","update_time":null,"rate_limit":null}`
	clicksJSON = `{"name":"clicks","counter_type":"BEST_EFFORT","counter_cardinality":"HIGH",
		"ttl":"5400s","accept_limit":"60s","time_partition":null,"queue_config":null,
		"rollup_batch_count":0,"retention":null,"storage":null,"description":"",
		"create_time":"2024-10-05T14:48:00Z","update_time":null,"rate_limit":null}`
	pagesText = `name:                              pages
description:                       web pages
counter_type:                      ACCURATE
counter_cardinality:               HIGH
ttl:                               1h30m
accept_limit:                      5s
time_partition.buckets_per_id:     0
time_partition.seconds_per_bucket: 0
time_partition.seconds_per_slice:  0
queue_config.num_queues:           0
queue_config.coalesce_ms:          1000
queue_config.capacity_bytes:       0
rollup_batch_count:                0
retention.close_after:             -
retention.delete_after:            -
storage.cache:                     -
storage.counter_rollup:            -
storage.event_storage:             -
rate_limit:                        -
create_time:                       2024-10-05T14:48:00Z
update_time:                       -
`
	pagesJSON = `{"name":"pages","counter_type":"ACCURATE","counter_cardinality":"HIGH",
		"ttl":"5400s","accept_limit":"5s","time_partition":null,
		"queue_config":{"num_queues":0,"coalesce_ms":"1000","capacity_bytes":"0"},
		"rollup_batch_count":0,"retention":null,"storage":null,"description":"web pages",
		"create_time":"2024-10-05T14:48:00Z","update_time":null,"rate_limit":null}`
	pagesFile = `{"name": "pages", "counter_type": "ACCURATE", "counter_cardinality": "HIGH",
		"ttl": "5400s", "accept_limit": "5s", "queue_config": {"coalesce_ms": 1000},
		"description": "web pages"}`
	// viewsUpdate is "ns get views -o json" with a new description and ttl.
	viewsUpdate = `{"name":"views","counter_type":"EVENTUAL","counter_cardinality":"LOW",
		"ttl":"3600s","accept_limit":"5s","description":"all page views",
		"create_time":"2024-10-05T14:48:00Z","update_time":null,"rate_limit":null}`
	t0 = "2024-10-05T14:48:00Z"
)

// TestCommands runs every command against a fresh fake, in text and json.
func TestCommands(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		// file, when set, is written to a temporary file whose path replaces
		// the argument "FILE".
		file string

		code int
		// stdout is matched exactly, stdoutRE as a regexp, json semantically
		// (and must be one line); the empty ones are not checked, except that
		// stdout must be empty when all three are.
		stdout, stdoutRE, json string
		// stderr is matched exactly; it must be empty when not given.
		stderr string
		check  func(t *testing.T, f *fake, r result)
	}{
		// add
		{
			name:   "add text",
			args:   []string{"add", "views", "home", "5", "--idempotency-token", "t1", "--time", t0},
			stdout: "added 5 to views/home (token t1, generation_time 2024-10-05T14:48:00Z)\n",
			check:  wantCount("views/home", 12),
		},
		{
			name:  "add json",
			args:  []string{"-o", "json", "add", "views", "home", "5", "--idempotency-token", "t1", "--time", t0},
			json:  `{"idempotency_token":{"token":"t1","generation_time":"2024-10-05T14:48:00Z"}}`,
			check: wantCount("views/home", 12),
		},
		{
			name:     "add generates a token and a time",
			args:     []string{"add", "views", "home", "1"},
			stdoutRE: `^added 1 to views/home \(token [0-9a-f-]{36}, generation_time \d{4}-\d\d-\d\dT[0-9:.]+Z\)\n$`,
			check: func(t *testing.T, f *fake, r result) {
				tok := f.sent("AddCount")[0].(*abacusv1.AddCountRequest).GetIdempotencyToken()
				if _, err := uuid.Parse(tok.GetToken()); err != nil {
					t.Errorf("token %q is not a UUID: %v", tok.GetToken(), err)
				}
				if d := time.Since(tok.GetGenerationTime().AsTime()); d < 0 || d > time.Minute {
					t.Errorf("generation_time is %v old, want now", d)
				}
				if !strings.Contains(r.stdout, tok.GetToken()) {
					t.Errorf("stdout %q does not show token %q", r.stdout, tok.GetToken())
				}
			},
		},
		{
			name:   "add fractional time",
			args:   []string{"add", "views", "home", "1", "--idempotency-token", "t1", "--time", "2024-10-05T16:48:00.5+02:00"},
			stdout: "added 1 to views/home (token t1, generation_time 2024-10-05T14:48:00.5Z)\n",
		},
		{
			name:     "add negative delta",
			args:     []string{"add", "views", "home", "-5"},
			stdoutRE: `^added -5 to views/home \(token `,
			check:    wantCount("views/home", 2),
		},
		{
			name:   "add negative delta with --get after it",
			args:   []string{"add", "views", "home", "-5", "--get"},
			stdout: "2\n",
			check:  wantCount("views/home", 2),
		},
		{
			name:     "add negative delta after --",
			args:     []string{"add", "views", "home", "--", "-5"},
			stdoutRE: `^added -5 to views/home`,
		},
		{
			name:  "add negative delta with flags around it",
			args:  []string{"-o", "json", "add", "--get", "views", "home", "-10", "--idempotency-token=t2", "--time", t0},
			json:  `{"count":"-3","idempotency_token":{"token":"t2","generation_time":"2024-10-05T14:48:00Z"}}`,
			check: wantCount("views/home", -3),
		},
		{
			name:  "add negative delta with attached shorthand value",
			args:  []string{"add", "views", "home", "-5", "-ojson", "--idempotency-token", "t3", "--time", t0},
			json:  `{"idempotency_token":{"token":"t3","generation_time":"2024-10-05T14:48:00Z"}}`,
			check: wantCount("views/home", 2),
		},
		{
			name:   "add negative-looking flag value stays the value",
			args:   []string{"add", "views", "home", "-5", "--idempotency-token", "-7", "--time", t0},
			stdout: "added -5 to views/home (token -7, generation_time 2024-10-05T14:48:00Z)\n",
		},
		{
			name:   "add --get text",
			args:   []string{"add", "--get", "views", "home", "3"},
			stdout: "10\n",
		},
		{
			name: "add --get json",
			args: []string{"add", "--get", "views", "home", "3", "--idempotency-token", "t1", "--time", t0, "-o", "json"},
			json: `{"count":"10","idempotency_token":{"token":"t1","generation_time":"2024-10-05T14:48:00Z"}}`,
		},
		{
			name:   "add to unknown namespace",
			args:   []string{"add", "nope", "home", "1"},
			code:   ExitServer,
			stderr: "abacus: not_found: namespace \"nope\" not found\n",
		},
		{
			name:   "add zero is refused by the server",
			args:   []string{"add", "views", "home", "0"},
			code:   ExitServer,
			stderr: "abacus: invalid_argument: delta must not be 0\n",
		},
		{
			name:   "add with too few arguments",
			args:   []string{"add", "views", "home"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: accepts 3 arg(s), received 2\nusage: abacus add NAMESPACE COUNTER DELTA [flags]\n",
		},
		{
			name:   "add with a bad delta",
			args:   []string{"add", "views", "home", "five"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: DELTA \"five\" is not a 64-bit integer\nusage: abacus add NAMESPACE COUNTER DELTA [flags]\n",
		},
		{
			name:   "add with a delta beyond int64",
			args:   []string{"add", "views", "home", "-9223372036854775809"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: DELTA \"-9223372036854775809\" is not a 64-bit integer\nusage: abacus add NAMESPACE COUNTER DELTA [flags]\n",
		},
		{
			name:   "add with a bad time",
			args:   []string{"add", "views", "home", "1", "--time", "yesterday"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: --time \"yesterday\" is not an RFC 3339 time such as 2024-10-05T14:48:00Z\nusage: abacus add NAMESPACE COUNTER DELTA [flags]\n",
		},
		{
			name:   "add with an unknown flag",
			args:   []string{"add", "views", "home", "1", "--tokn", "x"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: unknown flag: --tokn\nusage: abacus add NAMESPACE COUNTER DELTA [flags]\n",
		},

		// get
		{name: "get text", args: []string{"get", "views", "home"}, stdout: "7\n"},
		{name: "get json", args: []string{"get", "views", "home", "-o", "json"}, json: `{"count":"7"}`},
		{name: "get a counter never written", args: []string{"get", "views", "never"}, stdout: "0\n"},
		{
			name:   "get several text",
			args:   []string{"get", "views", "home", "about", "never"},
			stdout: "home   7\nabout  2\nnever  0\n",
			check: func(t *testing.T, f *fake, _ result) {
				if n := len(f.sent("GetCounts")); n != 1 {
					t.Errorf("GetCounts called %d times, want once", n)
				}
			},
		},
		{
			name: "get several json",
			args: []string{"get", "views", "home", "about", "-o", "json"},
			json: `{"counts":[{"count":"7"},{"count":"2"}]}`,
		},
		{
			name:   "get from unknown namespace",
			args:   []string{"get", "nope", "home"},
			code:   ExitServer,
			stderr: "abacus: not_found: namespace \"nope\" not found\n",
		},
		{
			name:   "get without a counter",
			args:   []string{"get", "views"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: requires at least 2 arg(s), only received 1\nusage: abacus get NAMESPACE COUNTER [COUNTER...] [flags]\n",
		},

		// clear
		{
			name:   "clear text",
			args:   []string{"clear", "views", "home", "--idempotency-token", "c1", "--time", t0},
			stdout: "cleared views/home (token c1, generation_time 2024-10-05T14:48:00Z)\n",
			check:  wantCount("views/home", 0),
		},
		{
			name:  "clear json",
			args:  []string{"clear", "views", "home", "--idempotency-token", "c1", "--time", t0, "-o", "json"},
			json:  `{"idempotency_token":{"token":"c1","generation_time":"2024-10-05T14:48:00Z"}}`,
			check: wantCount("views/home", 0),
		},
		{
			name:     "clear generates a token",
			args:     []string{"clear", "views", "home"},
			stdoutRE: `^cleared views/home \(token [0-9a-f-]{36}, generation_time \S+Z\)\n$`,
			check:    wantCount("views/home", 0),
		},
		{
			name:   "clear with too many arguments",
			args:   []string{"clear", "views", "home", "1"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: accepts 2 arg(s), received 3\nusage: abacus clear NAMESPACE COUNTER [flags]\n",
		},

		// ns list
		{
			name: "ns list text",
			args: []string{"ns", "list"},
			stdout: "NAME    TYPE         CARDINALITY  ACCEPT_LIMIT  TTL    DESCRIPTION\n" +
				"clicks  BEST_EFFORT  HIGH         1m            1h30m  \n" +
				"views   EVENTUAL     LOW          5s            24h    page views\n",
		},
		{name: "ns list json", args: []string{"ns", "ls", "-o", "json"}, json: `{"namespaces":[` + clicksJSON + `,` + viewsJSON + `]}`},
		{
			name:   "ns list with an argument",
			args:   []string{"ns", "list", "views"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: accepts 0 arg(s), received 1\nusage: abacus ns list [flags]\n",
		},

		// ns get
		{name: "ns get text", args: []string{"ns", "get", "views"}, stdout: viewsText},
		{name: "ns get json", args: []string{"namespace", "get", "views", "-o", "json"}, json: viewsJSON},
		{
			name:   "ns get unknown",
			args:   []string{"ns", "get", "nope"},
			code:   ExitServer,
			stderr: "abacus: not_found: namespace \"nope\" not found\n",
		},

		// ns create
		{
			name: "ns create from flags text",
			args: []string{"ns", "create", "pages", "--type", "accurate", "--cardinality", "HIGH", "--accept-limit", "5s",
				"--ttl", "90m", "--coalesce", "1s", "--description", "web pages"},
			stdout: pagesText,
		},
		{
			name: "ns create from flags json",
			args: []string{"ns", "create", "pages", "--type", "ACCURATE", "--cardinality", "high", "--accept-limit", "5s",
				"--ttl", "1h30m", "--coalesce", "1000ms", "--description", "web pages", "-o", "json"},
			json: pagesJSON,
		},
		{
			name: "ns create from flags leaves the rest to the server",
			args: []string{"ns", "create", "taps", "--type", "best-effort", "-o", "json"},
			json: `{"name":"taps","counter_type":"BEST_EFFORT","counter_cardinality":"LOW","ttl":null,"accept_limit":null,"time_partition":null,"queue_config":null,"rollup_batch_count":0,"retention":null,"storage":null,"description":"","create_time":"2024-10-05T14:48:00Z","update_time":null,"rate_limit":null}`,
		},
		{name: "ns create from a file", args: []string{"ns", "create", "-f", "FILE"}, file: pagesFile, stdout: pagesText},
		{name: "ns create from stdin", args: []string{"ns", "create", "-f", "-", "-o", "json"}, stdin: pagesFile, json: pagesJSON},
		{
			name:   "ns create an existing namespace",
			args:   []string{"ns", "create", "views", "--type", "EVENTUAL"},
			code:   ExitServer,
			stderr: "abacus: already_exists: namespace \"views\" exists\n",
		},
		{
			name:   "ns create without --type",
			args:   []string{"ns", "create", "pages"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: --type is required: BEST_EFFORT, EVENTUAL or ACCURATE\nusage: abacus ns create {NAME --type TYPE [flags] | -f FILE}\n",
		},
		{
			name:   "ns create with a bad type",
			args:   []string{"ns", "create", "pages", "--type", "EXACT"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: --type must be BEST_EFFORT, EVENTUAL or ACCURATE, not \"EXACT\"\nusage: abacus ns create {NAME --type TYPE [flags] | -f FILE}\n",
		},
		{
			name:   "ns create with a bad cardinality",
			args:   []string{"ns", "create", "pages", "--type", "EVENTUAL", "--cardinality", "MEDIUM"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: --cardinality must be LOW or HIGH, not \"MEDIUM\"\nusage: abacus ns create {NAME --type TYPE [flags] | -f FILE}\n",
		},
		{
			name:   "ns create with a negative ttl",
			args:   []string{"ns", "create", "pages", "--type", "EVENTUAL", "--ttl", "-1h"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: --ttl must be positive, not -1h0m0s\nusage: abacus ns create {NAME --type TYPE [flags] | -f FILE}\n",
		},
		{
			name:   "ns create with a sub-millisecond coalesce",
			args:   []string{"ns", "create", "pages", "--type", "EVENTUAL", "--coalesce", "1500us"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: --coalesce must be a positive whole number of milliseconds, not 1.5ms\nusage: abacus ns create {NAME --type TYPE [flags] | -f FILE}\n",
		},
		{
			name:   "ns create with neither NAME nor -f",
			args:   []string{"ns", "create"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: give a NAME and --type, or -f FILE\nusage: abacus ns create {NAME --type TYPE [flags] | -f FILE}\n",
		},
		{
			name:   "ns create with both NAME and -f",
			args:   []string{"ns", "create", "pages", "-f", "FILE"},
			file:   pagesFile,
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: -f takes the whole namespace from the file; give no NAME or settings flags with it\nusage: abacus ns create {NAME --type TYPE [flags] | -f FILE}\n",
		},
		{
			name:   "ns create with -f and a settings flag",
			args:   []string{"ns", "create", "-f", "FILE", "--ttl", "1h"},
			file:   pagesFile,
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: -f takes the whole namespace from the file; give no NAME or settings flags with it\nusage: abacus ns create {NAME --type TYPE [flags] | -f FILE}\n",
		},
		{
			name: "ns create from a file with an unknown field",
			args: []string{"ns", "create", "-f", "-"}, stdin: `{"name":"pages","counter_typ":"EVENTUAL"}`,
			code: ExitUsage,
			check: wantStderr(`^abacus: invalid_argument: - is not a JSON abacus.v1.Namespace: .*unknown field "counter_typ"` +
				`\nusage: abacus ns create`),
		},
		{
			name: "ns create from a file without a name",
			args: []string{"ns", "create", "-f", "-"}, stdin: `{"counter_type":"EVENTUAL"}`,
			code:  ExitUsage,
			check: wantStderr(`^abacus: invalid_argument: -: the namespace has no name\n`),
		},
		{
			name:  "ns create from a missing file",
			args:  []string{"ns", "create", "-f", "/nonexistent/ns.json"},
			code:  ExitUsage,
			check: wantStderr(`^abacus: invalid_argument: open /nonexistent/ns.json: no such file or directory\nusage: `),
		},

		// ns update
		{
			name: "ns update text",
			args: []string{"ns", "update", "-f", "FILE"},
			file: viewsUpdate,
			stdoutRE: `(?s)^name: +views\ndescription: +all page views\n.*ttl: +1h\n.*` +
				`update_time: +2024-10-05T15:48:00Z\n$`,
			check: func(t *testing.T, f *fake, _ result) {
				if d := f.namespace("views").GetDescription(); d != "all page views" {
					t.Errorf("description = %q after update", d)
				}
			},
		},
		{
			name: "ns update json",
			args: []string{"ns", "update", "-f", "-", "-o", "json"}, stdin: viewsUpdate,
			json: `{"name":"views","counter_type":"EVENTUAL","counter_cardinality":"LOW","ttl":"3600s","accept_limit":"5s",` +
				`"time_partition":null,"queue_config":null,"rollup_batch_count":0,"retention":null,"storage":null,` +
				`"description":"all page views","create_time":"2024-10-05T14:48:00Z","update_time":"2024-10-05T15:48:00Z","rate_limit":null}`,
		},
		{
			name: "ns update unknown",
			args: []string{"ns", "update", "-f", "-"}, stdin: `{"name":"nope"}`,
			code:   ExitServer,
			stderr: "abacus: not_found: namespace \"nope\" not found\n",
		},
		{
			name:   "ns update without -f",
			args:   []string{"ns", "update"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: give -f FILE, or a NAME and --rate-limit-* flags\nusage: abacus ns update {-f FILE | NAME --rate-limit-rps N [--rate-limit-ips M] [--rate-limit-burst B]} [flags]\n",
		},

		// ns delete
		{
			name:   "ns delete text",
			args:   []string{"ns", "delete", "views"},
			stdout: "deleted namespace views\n",
			check: func(t *testing.T, f *fake, _ result) {
				if f.namespace("views") != nil {
					t.Error("views still exists")
				}
			},
		},
		{name: "ns delete json", args: []string{"ns", "delete", "views", "-o", "json"}, json: `{}`},
		{
			name:   "ns delete unknown",
			args:   []string{"ns", "delete", "nope"},
			code:   ExitServer,
			stderr: "abacus: not_found: namespace \"nope\" not found\n",
		},

		// ns, help and version
		{name: "ns alone prints help", args: []string{"ns"}, stdoutRE: `(?s)Manage namespaces.*Available Commands:`},
		{
			name:   "ns with an unknown subcommand",
			args:   []string{"ns", "lst"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: unknown command \"lst\" for \"abacus ns\"; did you mean \"list\"?\nusage: abacus ns COMMAND (see abacus ns --help)\n",
		},
		{name: "help", args: []string{"add", "--help"}, stdoutRE: `(?s)Usage:\n  abacus add NAMESPACE COUNTER DELTA \[flags\]`},
		{name: "version text", args: []string{"version"}, stdoutRE: `^abacus \S+.* go1\.\S+ \w+/\w+\n$`},
		{
			name: "version json", args: []string{"version", "-o", "json"},
			check: func(t *testing.T, _ *fake, r result) {
				var v versionInfo
				if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Version == "" || v.GoVersion == "" {
					t.Errorf("version json %q: %+v, %v", r.stdout, v, err)
				}
			},
		},

		// global usage errors
		{
			name:   "unknown command",
			args:   []string{"ad", "views", "home", "1"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: unknown command \"ad\" for \"abacus\"; did you mean \"add\"?\nusage: abacus COMMAND (see abacus --help)\n",
		},
		{
			name:   "bad output format",
			args:   []string{"get", "views", "home", "-o", "yaml"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: --output must be text or json, not \"yaml\"\nusage: abacus get NAMESPACE COUNTER [COUNTER...] [flags]\n",
		},
		{
			name:   "bad timeout",
			args:   []string{"--timeout", "0s", "get", "views", "home"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: --timeout must be positive, not 0s\nusage: abacus get NAMESPACE COUNTER [COUNTER...] [flags]\n",
		},
		{
			name:   "bad retries",
			args:   []string{"--retries", "-1", "get", "views", "home"},
			code:   ExitUsage,
			stderr: "abacus: invalid_argument: --retries must be 0 or more, not -1\nusage: abacus get NAMESPACE COUNTER [COUNTER...] [flags]\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake()
			addr := f.start(t)
			args := slices.Clone(tt.args)
			if tt.file != "" {
				path := filepath.Join(t.TempDir(), "ns.json")
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
				args[slices.Index(args, "FILE")] = path
			}
			r := runCLI(t, addr, tt.stdin, args...)
			if r.code != tt.code {
				t.Errorf("exit status %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if tt.stderr != "" || tt.check == nil {
				if r.stderr != tt.stderr {
					t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, tt.stderr)
				}
			}
			switch {
			case tt.json != "":
				checkJSON(t, r.stdout, tt.json)
			case tt.stdoutRE != "":
				if !regexp.MustCompile(tt.stdoutRE).MatchString(r.stdout) {
					t.Errorf("stdout:\n%s\ndoes not match %s", r.stdout, tt.stdoutRE)
				}
			case tt.check == nil || tt.stdout != "":
				if r.stdout != tt.stdout {
					t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, tt.stdout)
				}
			}
			if tt.check != nil {
				tt.check(t, f, r)
			}
		})
	}
}

// checkJSON checks that got is one line holding one JSON document equal to want.
func checkJSON(t *testing.T, got, want string) {
	t.Helper()
	if !strings.HasSuffix(got, "\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("json output %q is not one line", got)
	}
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("output %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("json:\n%s\nwant:\n%s", got, want)
	}
}

func wantCount(key string, n int64) func(*testing.T, *fake, result) {
	return func(t *testing.T, f *fake, _ result) {
		t.Helper()
		if got := f.count(key); got != n {
			t.Errorf("count of %s = %d, want %d", key, got, n)
		}
	}
}

func wantStderr(re string) func(*testing.T, *fake, result) {
	return func(t *testing.T, _ *fake, r result) {
		t.Helper()
		if !regexp.MustCompile(re).MatchString(r.stderr) {
			t.Errorf("stderr:\n%s\ndoes not match %s", r.stderr, re)
		}
	}
}

// TestNamespaceRoundTrip checks that "ns get -o json" output goes back into
// "ns update -f -" as it is, output-only fields included.
func TestNamespaceRoundTrip(t *testing.T) {
	f := newFake()
	addr := f.start(t)
	got := runCLI(t, addr, "", "ns", "get", "views", "-o", "json")
	if got.code != ExitOK {
		t.Fatalf("ns get: %+v", got)
	}
	edited := strings.Replace(got.stdout, `"page views"`, `"edited"`, 1)
	upd := runCLI(t, addr, edited, "ns", "update", "-f", "-")
	if upd.code != ExitOK {
		t.Fatalf("ns update: %+v", upd)
	}
	want := proto.Clone(newFake().namespaces["views"]).(*abacusv1.Namespace)
	want.Description = "edited"
	want.CreateTime = nil
	sent := f.sent("UpdateNamespace")[0].(*abacusv1.UpdateNamespaceRequest).GetNamespace()
	if !proto.Equal(sent, want) {
		t.Errorf("sent %v\nwant %v", sent, want)
	}
}

// TestWriteRetriesWithSameToken checks that add, add --get and clear resend
// the same idempotency token and time after UNAVAILABLE, whether or not the
// failed attempt was applied, and that the write is applied once.
func TestWriteRetriesWithSameToken(t *testing.T) {
	type tokened interface {
		GetIdempotencyToken() *abacusv1.IdempotencyToken
	}
	for _, tt := range []struct {
		method string
		args   []string
		stdout string
		count  int64
	}{
		{"AddCount", []string{"add", "views", "home", "5"}, "", 12},
		{"AddAndGetCount", []string{"add", "views", "home", "-5", "--get"}, "2\n", 2},
		{"ClearCount", []string{"clear", "views", "home"}, "", 0},
	} {
		t.Run(tt.method, func(t *testing.T) {
			f := newFake()
			addr := f.start(t)
			f.script(tt.method, fault{code: codes.Unavailable, apply: true}, fault{code: codes.Unavailable})
			r := runCLI(t, addr, "", tt.args...)
			if r.code != ExitOK || r.stderr != "" {
				t.Fatalf("exit status %d, stderr %q", r.code, r.stderr)
			}
			if tt.stdout != "" && r.stdout != tt.stdout {
				t.Errorf("stdout %q, want %q", r.stdout, tt.stdout)
			}
			sent := f.sent(tt.method)
			if len(sent) != 3 {
				t.Fatalf("%s called %d times, want 3", tt.method, len(sent))
			}
			first := sent[0].(tokened).GetIdempotencyToken()
			for i, req := range sent[1:] {
				if tok := req.(tokened).GetIdempotencyToken(); !proto.Equal(tok, first) {
					t.Errorf("attempt %d sent token %v, want %v", i+2, tok, first)
				}
			}
			if !proto.Equal(sent[0], sent[2]) {
				t.Errorf("retry sent %v, first attempt %v", sent[2], sent[0])
			}
			if got := f.count("views/home"); got != tt.count {
				t.Errorf("count = %d, want %d (applied once)", got, tt.count)
			}
		})
	}
}

// TestRetryAfterDeadlineExceeded checks that an attempt that runs out of
// --timeout after the server applied it is retried, and applied once.
func TestRetryAfterDeadlineExceeded(t *testing.T) {
	f := newFake()
	addr := f.start(t)
	f.script("AddCount", fault{hang: true, apply: true})
	r := runCLI(t, addr, "", "--timeout", "200ms", "add", "views", "home", "5", "--idempotency-token", "t1")
	if r.code != ExitOK {
		t.Fatalf("exit status %d, stderr %q", r.code, r.stderr)
	}
	sent := f.sent("AddCount")
	if len(sent) != 2 || !proto.Equal(sent[0], sent[1]) {
		t.Fatalf("sent %v, want the same request twice", sent)
	}
	if got := f.count("views/home"); got != 12 {
		t.Errorf("count = %d, want 12", got)
	}
}

// TestRetriesExhausted checks that the CLI gives up after --retries, exits 1
// and prints the token and time that make a manual rerun safe.
func TestRetriesExhausted(t *testing.T) {
	f := newFake()
	addr := f.start(t)
	f.script("AddCount", fault{code: codes.Unavailable}, fault{code: codes.Unavailable}, fault{code: codes.Unavailable})
	r := runCLI(t, addr, "", "--retries", "2", "add", "views", "home", "5", "--time", t0)
	if r.code != ExitServer {
		t.Errorf("exit status %d, want %d", r.code, ExitServer)
	}
	sent := f.sent("AddCount")
	if len(sent) != 3 {
		t.Fatalf("AddCount called %d times, want 3", len(sent))
	}
	tok := sent[0].(*abacusv1.AddCountRequest).GetIdempotencyToken().GetToken()
	want := "abacus: unavailable: injected unavailable (outcome unknown; rerun with --idempotency-token " + tok +
		" --time 2024-10-05T14:48:00Z to apply it at most once)\n"
	if r.stderr != want {
		t.Errorf("stderr %q\nwant   %q", r.stderr, want)
	}
	// The rerun the message suggests is a no-op for the fake once applied,
	// and applies the write when nothing was.
	rerun := runCLI(t, addr, "", "add", "views", "home", "5", "--idempotency-token", tok, "--time", t0)
	if rerun.code != ExitOK || f.count("views/home") != 12 {
		t.Errorf("rerun: %+v, count %d", rerun, f.count("views/home"))
	}
}

// TestNoRetry checks that definite failures, and calls that are not
// idempotent, are sent once.
func TestNoRetry(t *testing.T) {
	for _, tt := range []struct {
		method string
		flt    fault
		args   []string
		stderr string
	}{
		{"AddCount", fault{code: codes.FailedPrecondition}, []string{"add", "views", "home", "1"},
			"abacus: failed_precondition: injected failed_precondition\n"},
		{"AddCount", fault{code: codes.Unavailable}, []string{"--retries", "0", "add", "views", "home", "1", "--idempotency-token", "t", "--time", t0},
			"abacus: unavailable: injected unavailable (outcome unknown; rerun with --idempotency-token t --time 2024-10-05T14:48:00Z to apply it at most once)\n"},
		{"CreateNamespace", fault{code: codes.Unavailable}, []string{"ns", "create", "pages", "--type", "EVENTUAL"},
			"abacus: unavailable: injected unavailable\n"},
		{"UpdateNamespace", fault{code: codes.Unavailable}, []string{"ns", "update", "-f", "-"},
			"abacus: unavailable: injected unavailable\n"},
		{"DeleteNamespace", fault{code: codes.Unavailable}, []string{"ns", "delete", "views"},
			"abacus: unavailable: injected unavailable\n"},
	} {
		t.Run(tt.method+"/"+codeName(tt.flt.code), func(t *testing.T) {
			f := newFake()
			addr := f.start(t)
			f.script(tt.method, tt.flt, tt.flt)
			r := runCLI(t, addr, `{"name":"views","counter_type":"EVENTUAL"}`, tt.args...)
			if r.code != ExitServer || r.stderr != tt.stderr {
				t.Errorf("got %d %q, want %d %q", r.code, r.stderr, ExitServer, tt.stderr)
			}
			if n := len(f.sent(tt.method)); n != 1 {
				t.Errorf("%s called %d times, want once", tt.method, n)
			}
		})
	}
}

// TestReadsRetry checks that reads, being idempotent, are retried too.
func TestReadsRetry(t *testing.T) {
	for _, tt := range []struct {
		method string
		args   []string
	}{
		{"GetCount", []string{"get", "views", "home"}},
		{"GetCounts", []string{"get", "views", "home", "about"}},
		{"GetNamespace", []string{"ns", "get", "views"}},
		{"ListNamespaces", []string{"ns", "list"}},
	} {
		t.Run(tt.method, func(t *testing.T) {
			f := newFake()
			addr := f.start(t)
			f.script(tt.method, fault{code: codes.Unavailable})
			r := runCLI(t, addr, "", tt.args...)
			if r.code != ExitOK || len(f.sent(tt.method)) != 2 {
				t.Errorf("exit status %d, stderr %q, %d calls", r.code, r.stderr, len(f.sent(tt.method)))
			}
		})
	}
}

// TestUnreachable checks the error of a node that does not listen.
func TestUnreachable(t *testing.T) {
	r := runCLI(t, "127.0.0.1:1", "", "--retries", "0", "get", "views", "home")
	if r.code != ExitServer || !strings.HasPrefix(r.stderr, "abacus: unavailable: ") {
		t.Errorf("got %d %q", r.code, r.stderr)
	}
}

// TestCanceled checks that cancelling Run's context stops a call in flight.
func TestCanceled(t *testing.T) {
	f := newFake()
	addr := f.start(t)
	f.script("GetCount", fault{hang: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(100*time.Millisecond, cancel)
	var out, errb bytes.Buffer
	code := Run(ctx, []string{"--addr", addr, "get", "views", "home"}, &out, &errb)
	if code != ExitServer || !strings.HasPrefix(errb.String(), "abacus: canceled: ") {
		t.Errorf("got %d %q", code, errb.String())
	}
	if n := len(f.sent("GetCount")); n != 1 {
		t.Errorf("GetCount called %d times after the caller gave up, want once", n)
	}
}

// TestRun checks the exported entry point.
func TestRun(t *testing.T) {
	f := newFake()
	addr := f.start(t)
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"--addr", addr, "get", "views", "home"}, &out, &errb); code != ExitOK {
		t.Fatalf("exit status %d, stderr %q", code, errb.String())
	}
	if out.String() != "7\n" {
		t.Errorf("stdout %q", out.String())
	}
}

// TestAddrFromEnv checks that ABACUS_ADDR replaces the default address and
// that --addr overrides it.
func TestAddrFromEnv(t *testing.T) {
	f := newFake()
	addr := f.start(t)
	for _, tt := range []struct {
		env  string
		args []string
	}{
		{addr, []string{"get", "views", "home"}},
		{"127.0.0.1:1", []string{"--addr", addr, "get", "views", "home"}},
	} {
		var out, errb bytes.Buffer
		a := newApp(&out, &errb)
		a.lookupEnv = func(k string) (string, bool) {
			if k == "ABACUS_ADDR" {
				return tt.env, true
			}
			return "", false
		}
		if code := a.run(context.Background(), tt.args); code != ExitOK || out.String() != "7\n" {
			t.Errorf("ABACUS_ADDR=%s %v: %d %q %q", tt.env, tt.args, code, out.String(), errb.String())
		}
	}
}

func TestNormalizeArgs(t *testing.T) {
	root := newApp(nil, nil).rootCmd()
	for _, tt := range []struct{ in, want string }{
		{"add ns c 5", "add ns c 5"},
		{"add ns c -- -5", "add ns c -- -5"},
		{"add ns c -5", "add -- ns c -5"},
		{"add ns c -5 --get", "add --get -- ns c -5"},
		{"-o json add --get ns c -5", "add -o json --get -- ns c -5"},
		{"add ns c -5 --idempotency-token -7 --time=t", "add --idempotency-token -7 --time=t -- ns c -5"},
		{"add ns c -5 -ojson", "add -ojson -- ns c -5"},
		{"add ns c -5 -- -x", "add -- ns c -5 -x"},
		{"get ns -1 -2", "get -- ns -1 -2"},
		{"ns get -1", "ns get -- -1"},
	} {
		got := strings.Join(normalizeArgs(root, strings.Fields(tt.in)), " ")
		if got != tt.want {
			t.Errorf("normalizeArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRefusalAfterRetry: a definite refusal that follows an uncertain attempt
// (an expired deadline, after which the retried generation_time may have left
// the accept window) does not prove the first attempt failed, so the CLI
// still reports the outcome as unknown, with the rerun hint.
func TestRefusalAfterRetry(t *testing.T) {
	f := newFake()
	addr := f.start(t)
	f.script("AddCount", fault{code: codes.Unavailable, apply: true}, fault{code: codes.FailedPrecondition})
	r := runCLI(t, addr, "", "add", "views", "home", "5", "--idempotency-token", "t", "--time", t0)
	want := "abacus: failed_precondition: injected failed_precondition (outcome unknown; rerun with --idempotency-token t --time 2024-10-05T14:48:00Z to apply it at most once)\n"
	if r.code != ExitServer || r.stderr != want {
		t.Errorf("got %d %q\nwant %d %q", r.code, r.stderr, ExitServer, want)
	}
}
