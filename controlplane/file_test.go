package controlplane

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// inputs returns the namespaces files in testdata.
func inputs(t testing.TB) []string {
	var files []string
	for _, pat := range []string{"*.yaml", "*.json"} {
		m, err := filepath.Glob(filepath.Join("testdata", pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no input files in testdata")
	}
	return files
}

// render is what a golden file holds: the completed namespaces in the native
// shape, or the error's code and message.
func render(nss []*abacus.Namespace, err error) []byte {
	if err != nil {
		return []byte(abacus.ErrorCode(err).String() + ": " + abacus.ErrorMessage(err) + "\n")
	}
	return MarshalFile(nss)
}

// TestGolden parses each file in testdata and compares the outcome with
// testdata/<file>.golden. Run with -update to rewrite the golden files.
func TestGolden(t *testing.T) {
	for _, in := range inputs(t) {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			nss, err := ParseFile(data)
			if err != nil && abacus.ErrorCode(err) != abacus.InvalidArgument {
				t.Errorf("code = %v, want invalid_argument", abacus.ErrorCode(err))
			}
			got := render(nss, err)
			golden := in + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("ParseFile(%s):\ngot:\n%s\nwant:\n%s", in, got, want)
			}
			if nss != nil {
				checkRoundTrip(t, nss)
			}
		})
	}
}

// checkRoundTrip checks that the namespaces, rendered by MarshalFile, parse
// back to themselves and are already complete.
func checkRoundTrip(t testing.TB, nss []*abacus.Namespace) {
	t.Helper()
	for _, ns := range nss {
		c := *ns
		if err := Complete(&c); err != nil {
			t.Fatalf("Complete of a parsed namespace: %v", err)
		}
		if c != *ns {
			t.Fatalf("Complete changed a parsed namespace:\n got %+v\nwant %+v", c, *ns)
		}
	}
	out := MarshalFile(nss)
	back, err := ParseFile(out)
	if err != nil {
		t.Fatalf("ParseFile(MarshalFile(...)): %v\n%s", err, out)
	}
	if len(nss) == 0 && len(back) == 0 {
		return
	}
	if !reflect.DeepEqual(back, nss) {
		t.Fatalf("round trip through MarshalFile:\n got %+v\nwant %+v", back, nss)
	}
}

func TestParseFileAt(t *testing.T) {
	nss, err := ParseFileAt(filepath.Join("testdata", "article.json"))
	if err != nil || len(nss) != 1 || nss[0].Name != "my_dataset" {
		t.Fatalf("ParseFileAt(article.json) = %v, %v", nss, err)
	}

	_, err = ParseFileAt(filepath.Join("testdata", "article_cassandra.json"))
	if msg := abacus.ErrorMessage(err); !strings.HasPrefix(msg, "invalid namespaces file testdata/article_cassandra.json: ") {
		t.Errorf("error does not name the file: %q", msg)
	}

	_, err = ParseFileAt(filepath.Join("testdata", "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || abacus.ErrorCode(err) != abacus.InvalidArgument ||
		!strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v (code %v)", err, abacus.ErrorCode(err))
	}
}

// TestParseFileValues checks the lenient ways of writing values.
func TestParseFileValues(t *testing.T) {
	const head = "namespaces:\n- name: n\n  counter_type: EVENTUAL\n"
	tests := []struct {
		name, body string
		check      func(ns *abacus.Namespace) bool
	}{
		{"int as number", "  rollup_batch_count: 7\n",
			func(ns *abacus.Namespace) bool { return ns.RollupBatchCount == 7 }},
		{"int as string", "  rollup_batch_count: \"7\"\n",
			func(ns *abacus.Namespace) bool { return ns.RollupBatchCount == 7 }},
		{"int as integral float", "  queue_config: {capacity_bytes: 1e6}\n",
			func(ns *abacus.Namespace) bool { return ns.Queue.CapacityBytes == 1e6 }},
		{"int in hex", "  queue_config: {capacity_bytes: 0x10000}\n",
			func(ns *abacus.Namespace) bool { return ns.Queue.CapacityBytes == 65536 }},
		{"duration go", "  ttl: 1h30m\n",
			func(ns *abacus.Namespace) bool { return ns.TTL.String() == "1h30m0s" }},
		{"duration proto", "  ttl: \"5400.5s\"\n",
			func(ns *abacus.Namespace) bool { return ns.TTL.String() == "1h30m0.5s" }},
		{"duration seconds int", "  ttl: 60\n",
			func(ns *abacus.Namespace) bool { return ns.TTL.String() == "1m0s" }},
		{"duration seconds float", "  accept_limit: 0.25\n",
			func(ns *abacus.Namespace) bool { return ns.AcceptLimit.String() == "250ms" }},
		{"duration seconds string", "  accept_limit: \"2\"\n",
			func(ns *abacus.Namespace) bool { return ns.AcceptLimit.String() == "2s" }},
		{"null is unset", "  ttl: null\n  time_partition:\n",
			func(ns *abacus.Namespace) bool { return ns.TTL.String() == "24h0m0s" && ns.Partition.BucketsPerID == 4 }},
		{"camel case keys", "  timePartition: {bucketsPerId: 2}\n",
			func(ns *abacus.Namespace) bool { return ns.Partition.BucketsPerID == 2 }},
		{"numeric name", "  description: 2024\n",
			func(ns *abacus.Namespace) bool { return ns.Description == "2024" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nss, err := ParseFile([]byte(head + tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(nss[0]) {
				t.Errorf("unexpected namespace %+v", *nss[0])
			}
		})
	}
}

// TestParseFileProblems checks single problems and their exact messages.
func TestParseFileProblems(t *testing.T) {
	tests := []struct{ name, file, want string }{
		{"unknown key suggests",
			"namespaces:\n- name: n\n  counter_type: EVENTUAL\n  acept_limit: 5s\n",
			`namespaces[0].acept_limit: unknown key; did you mean "accept_limit"?`},
		{"unknown key lists",
			"namespaces:\n- name: n\n  counter_type: EVENTUAL\n  queue_config: {size: 5}\n",
			`namespaces[0].queue_config.size: unknown key; expected one of num_queues, coalesce_ms, capacity_bytes`},
		{"unknown top-level key",
			"namespace: []\n",
			`namespace: unknown key; did you mean "namespaces"?`},
		{"odd key is quoted",
			"namespaces:\n- name: n\n  counter_type: EVENTUAL\n  \"a b\": 1\n",
			`namespaces[0]["a b"]: unknown key; expected one of name, counter_type, counter_cardinality, ttl, accept_limit, time_partition, queue_config, rollup_batch_count, retention, storage, rate_limit, description`},
		{"duplicate key",
			"{\"namespaces\": [{\"name\": \"n\", \"counter_type\": \"EVENTUAL\", \"ttl\": \"1s\", \"ttl\": \"2s\"}]}",
			`namespaces[0].ttl: duplicate key (also given as "ttl")`},
		{"duplicate key through camel case",
			"namespaces:\n- name: n\n  counter_type: EVENTUAL\n  accept_limit: 1s\n  acceptLimit: 2s\n",
			`namespaces[0].acceptLimit: duplicate key (also given as "accept_limit")`},
		{"bad duration",
			"namespaces:\n- name: n\n  counter_type: EVENTUAL\n  ttl: 5x\n",
			`namespaces[0].ttl: invalid duration "5x"; write e.g. "5s", "1.5s", "10m" or a number of seconds`},
		{"float for int",
			"namespaces:\n- name: n\n  counter_type: EVENTUAL\n  rollup_batch_count: 1.5\n",
			`namespaces[0].rollup_batch_count: expected an integer, got 1.5`},
		{"int overflow to duration",
			"namespaces:\n- name: n\n  counter_type: EVENTUAL\n  time_partition: {seconds_per_slice: 99999999999999}\n",
			`namespaces[0].time_partition.seconds_per_slice: 99999999999999 is too large`},
		{"mapping for string",
			"namespaces:\n- name: {a: 1}\n  counter_type: EVENTUAL\n",
			`namespaces[0].name: expected a string, got a mapping`},
		{"missing type",
			"namespaces:\n- name: n\n",
			`namespaces[0]: counter_type: is required: BEST_EFFORT, EVENTUAL or ACCURATE`},
		{"defaulted field",
			"namespaces:\n- name: n\n  counter_type: EVENTUAL\n  retention: {close_after: 200h}\n",
			`namespaces[0]: retention.delete_after (default): must be at least close_after (200h), got 168h`},
		{"output only",
			"namespaces:\n- name: n\n  counter_type: EVENTUAL\n  update_time: 2024-01-01T00:00:00Z\n",
			`namespaces[0].update_time: is output only and cannot be set`},
		{"conflicting counter types",
			`{"namespaces":[{"name":"n","persistence_configuration":[{"id":"COUNTER_ROLLUP","counter_type":"EVENTUAL","config":{"counter_type":"ACCURATE"}}]}]}`,
			`namespaces[0].persistence_configuration[0].config.counter_type: conflicts with the value given at namespaces[0].persistence_configuration[0].counter_type`},
		{"mixed shapes",
			`{"namespaces":[{"name":"n","accept_limit":"1s","persistence_configuration":[{"id":"COUNTER_ROLLUP","counter_type":"EVENTUAL"}]}]}`,
			`namespaces[0].accept_limit: the native key cannot be mixed with persistence_configuration; write the namespace in one shape or the other`},
		{"not a mapping",
			"- a\n",
			`expected a mapping with a namespaces list, got a list`},
		{"several documents",
			"namespaces: []\n---\nnamespaces: []\n",
			`the file holds several YAML documents; put all namespaces in one`},
		{"yaml syntax",
			"namespaces: [\n",
			`yaml: line 1: did not find expected node content`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFile([]byte(tt.file))
			if abacus.ErrorCode(err) != abacus.InvalidArgument {
				t.Fatalf("err = %v (code %v), want invalid_argument", err, abacus.ErrorCode(err))
			}
			if got, want := err.Error(), "invalid namespaces file: "+tt.want; got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestParseFileEmpty(t *testing.T) {
	for _, in := range []string{"", "# nothing\n", "namespaces:\n", "namespaces: []\n", "{}"} {
		nss, err := ParseFile([]byte(in))
		if err != nil || len(nss) != 0 {
			t.Errorf("ParseFile(%q) = %v, %v; want no namespaces", in, nss, err)
		}
	}
}

// TestParseFileAliasBomb checks that aliases cannot make a small file
// expensive: through merge keys, each level names the one below 20 times, so
// the file expands to 20⁸ mappings.
func TestParseFileAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-0: &l0 {ttl: 1s}\n")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&b, "x-%d: &l%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 20), ", "))
	}
	b.WriteString("namespaces: [{name: n, counter_type: EVENTUAL, <<: *l8}]\n")
	start := time.Now()
	_, err := ParseFile([]byte(b.String()))
	want := "invalid namespaces file: file expands to more than 1048576 YAML nodes (through aliases?)"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestParseFileProblemLimit checks that a file with very many problems
// reports the first hundred and counts the rest.
func TestParseFileProblemLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("namespaces:\n")
	for range 150 {
		b.WriteString("- {name: n, counter_type: EVENTUAL, tll: 1h}\n")
	}
	_, err := ParseFile([]byte(b.String()))
	msg := abacus.ErrorMessage(err)
	if n := strings.Count(msg, "tll: unknown key") + strings.Count(msg, "duplicate namespace"); n != 100 {
		t.Errorf("%d problems shown, want 100 and a count", n)
	}
	if !strings.HasSuffix(msg, "; and 199 more problems") {
		t.Errorf("message ends %q", msg[len(msg)-60:])
	}
}

func TestCustomSupportedInFile(t *testing.T) {
	v := Validator{Supported: Supported{Events: []string{"POSTGRES", abacus.StorageEmbedded}}}
	nss, err := v.ParseFile([]byte("namespaces:\n- {name: n, counter_type: EVENTUAL}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := nss[0].Storage.Events.Type; got != "POSTGRES" {
		t.Errorf("default event store = %q, want POSTGRES", got)
	}
	_, err = v.ParseFile([]byte("namespaces:\n- {name: n, counter_type: EVENTUAL, storage: {event_storage: {type: CASSANDRA}}}\n"))
	want := `invalid namespaces file: namespaces[0].storage.event_storage.type: this node cannot serve "CASSANDRA" (EVENT_STORAGE): abacus has no "CASSANDRA" backend; it serves EVENT_STORAGE: POSTGRES, EMBEDDED`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

// articleAsPrinted is the article's persistence_configuration block, verbatim.
func articleAsPrinted(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "article_as_printed.json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestArticleAsPrinted loads the article's block in the forms a user pastes
// it: alone, as one namespace object, and in a namespaces list, with the
// stores replaced by ones a node serves.
func TestArticleAsPrinted(t *testing.T) {
	block := articleAsPrinted(t)
	shared := Validator{Supported: Supported{
		Cache:  []string{abacus.StorageMemcached, abacus.StorageMemory},
		Rollup: []string{abacus.StoragePostgres}, Events: []string{abacus.StoragePostgres},
	}}
	embedded := strings.NewReplacer(`"CASSANDRA", `, `"EMBEDDED",  `, `"EVCACHE", `, `"MEMORY",  `)
	postgres := strings.NewReplacer(`"CASSANDRA", `, `"POSTGRES",  `)
	tests := []struct {
		name      string
		v         Validator
		text      string
		wantCache string
		wantStore string
	}{
		{"alone, embedded", Validator{}, embedded.Replace(block), abacus.StorageMemory, abacus.StorageEmbedded},
		{"alone, postgres and memcached (EVCACHE kept)", shared, postgres.Replace(block), abacus.StorageMemcached, abacus.StoragePostgres},
		{"one namespace object", Validator{}, "{\n" + embedded.Replace(block) + "\n}\n", abacus.StorageMemory, abacus.StorageEmbedded},
		{"in a namespaces list, with a comment", Validator{},
			"// pasted from the article\n{\"namespaces\": [{\n" + embedded.Replace(block) + "\n},],}\n", abacus.StorageMemory, abacus.StorageEmbedded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nss, err := tt.v.ParseFile([]byte(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			if len(nss) != 1 {
				t.Fatalf("%d namespaces, want 1", len(nss))
			}
			ns := nss[0]
			if ns.Name != "my_dataset_1" || ns.Type != abacus.Eventual || ns.Queue.Coalesce != 10*time.Second ||
				ns.Partition.BucketWidth != 600*time.Second || ns.Retention.DeleteAfter != 604800*time.Second {
				t.Errorf("namespace = %+v", ns)
			}
			if ns.Storage.Cache.Type != tt.wantCache || ns.Storage.Rollup.Type != tt.wantStore || ns.Storage.Events.Type != tt.wantStore {
				t.Errorf("storage = %+v, want cache %s, stores %s", ns.Storage, tt.wantCache, tt.wantStore)
			}
			if ns.Storage.Cache.Cluster != "evcache_dgw_counter_tier1" || ns.Storage.Events.Dataset != "my_dataset_1" {
				t.Errorf("cluster and dataset labels lost: %+v", ns.Storage)
			}
		})
	}
}

// TestArticleRules checks what the article's shape refuses or infers: scopes
// other than the article's, unknown keys (also in JSON with comments), and
// the name, which comes from COUNTER_ROLLUP's dataset unless given.
func TestArticleRules(t *testing.T) {
	block := strings.NewReplacer(`"CASSANDRA", `, `"EMBEDDED",  `, `"EVCACHE", `, `"MEMORY",  `).Replace(articleAsPrinted(t))
	tests := []struct {
		name, text, want string
	}{
		{"CACHE scope", strings.Replace(block, `"scope": "dal=counter"`, `"scope": "dal=ts"`, 1),
			`persistence_configuration[0].scope: scope "dal=ts" is not the scope of CACHE; want "dal=counter"`},
		{"EVENT_STORAGE scope", strings.Replace(block, `"scope": "dal=ts"`, `"scope": "dal=counter"`, 1),
			`persistence_configuration[2].scope: scope "dal=counter" is not the scope of EVENT_STORAGE; want "dal=ts"`},
		{"scope not a string", strings.Replace(block, `"scope": "dal=ts"`, `"scope": ["dal=ts"]`, 1),
			`persistence_configuration[2].scope: expected a string, got a list`},
		{"unknown key with comments", strings.Replace(block, `"accept_limit": "5s",`, `"accept_limit": "5s", "acept": 1, // typo`, 1),
			`persistence_configuration[2].config.acept: unknown key; expected one of time_partition, accept_limit`},
		{"explicit name wins", strings.Replace(block, `"persistence_configuration": [`, `"name": "views", "persistence_configuration": [`, 1), ""},
		{"no name, no dataset", strings.Replace(block, `"dataset": "my_dataset_1"                // namespace/dataset`, ``, 1),
			`namespace: name: is required`},
		{"dataset not a name", strings.Replace(block, `"dataset": "my_dataset_1"                // namespace/dataset`, `"dataset": "my dataset"`, 1),
			`persistence_configuration[1].physical_storage.dataset: must be 1 to 128 characters`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nss, err := ParseFile([]byte(tt.text))
			if tt.want == "" {
				if err != nil || nss[0].Name != "views" {
					t.Fatalf("got %v, %v; want the namespace views", nss, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}
