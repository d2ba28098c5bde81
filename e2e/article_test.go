package e2e

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/internal/testservers"
)

// articleFile returns the article's persistence_configuration block exactly
// as printed (comments, trailing commas, scope, EVCACHE and CASSANDRA), with
// the replacements applied, written to a .json file.
func articleFile(t *testing.T, replace ...string) string {
	t.Helper()
	b, err := os.ReadFile("../controlplane/testdata/article_as_printed.json")
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "article.json", strings.NewReplacer(replace...).Replace(string(b)))
}

// TestArticleConfigAsPrinted starts abacusd with the article's block as
// printed: it must exit with one message naming what it cannot serve and
// what it can, and the block with servable stores must load and serve.
func TestArticleConfigAsPrinted(t *testing.T) {
	t.Run("as printed", func(t *testing.T) {
		d := newDaemon(t, articleFile(t))
		args := []string{"--data-dir", d.dataDir, "--grpc-addr", d.grpcAddr, "--http-addr", d.httpAddr, "--namespaces", d.nsFile}
		cmd := exec.Command(filepath.Join(binDir, "abacusd"), args...)
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("abacusd did not exit on the article's block as printed:\n%s", out)
		}
		if err == nil {
			t.Fatalf("abacusd exited 0 on CASSANDRA:\n%s", out)
		}
		for _, want := range []string{
			`cannot serve "EVCACHE" (CACHE) or "CASSANDRA" (COUNTER_ROLLUP, EVENT_STORAGE)`,
			`EVCACHE needs abacusd --memcached ADDR`,
			`abacus has no "CASSANDRA" backend`,
			`it serves CACHE: MEMORY; COUNTER_ROLLUP: EMBEDDED; EVENT_STORAGE: EMBEDDED`,
		} {
			if !strings.Contains(string(out), want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(string(out), "unknown key") {
			t.Errorf("a key of the article was refused:\n%s", out)
		}
	})

	serves := func(t *testing.T, d *daemon) {
		t.Helper()
		d.start()
		now := time.Now().UTC().Format(time.RFC3339Nano)
		body := `{"namespace":"my_dataset_1","counter_name":"counter123","delta":2,"idempotency_token":{"token":"some_event_id","generation_time":"` + now + `"}}`
		url := "http://" + d.httpAddr + "/abacus.v1.CounterService/AddAndGetCount"
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("AddAndGetCount over HTTP/JSON: %d %s", resp.StatusCode, b)
		}
		c, n := client(t, d.grpcAddr)
		ctx := ctxT(t, 30*time.Second)
		got, err := n.GetNamespace(ctx, &abacusv1.GetNamespaceRequest{Name: "my_dataset_1"})
		if err != nil {
			t.Fatal(err)
		}
		if ns := got.GetNamespace(); ns.GetCounterType() != abacusv1.CounterType_EVENTUAL || ns.GetQueueConfig().GetCoalesceMs() != 10000 {
			t.Errorf("namespace = %v", ns)
		}
		// EVENTUAL with coalesce_ms 10000: the count may lag; it is exact
		// once the window has passed (accept limit 5s + 1s + coalesce).
		deadline := time.Now().Add(25 * time.Second)
		for {
			got, err := c.GetCount(ctx, &abacusv1.GetCountRequest{Namespace: "my_dataset_1", CounterName: "counter123"})
			if err != nil {
				t.Fatal(err)
			}
			if got.Count == 2 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("count = %d, want 2", got.Count)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Run("embedded", func(t *testing.T) {
		serves(t, newDaemon(t, articleFile(t, `"CASSANDRA", `, `"EMBEDDED",  `, `"EVCACHE", `, `"MEMORY",  `)))
	})
	t.Run("postgres and memcached", func(t *testing.T) {
		pg := testservers.NewDatabase(t, testservers.Env(t, "ABACUS_TEST_POSTGRES"))
		mc := testservers.Env(t, "ABACUS_TEST_MEMCACHED")
		d := newDaemon(t, articleFile(t, `"CASSANDRA", `, `"POSTGRES",  `))
		d.extra = []string{"--postgres", pg, "--memcached", mc}
		serves(t, d)
	})
}
