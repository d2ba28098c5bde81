package e2e

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestMemoryLimit: a built abacusd runs GOGC=400 under a soft memory limit
// that follows its live heap (2 GiB while the heap is small), and leaves
// both to the environment when GOGC or GOMEMLIMIT is set. Read from the Go
// collector's metrics on /metrics.
func TestMemoryLimit(t *testing.T) {
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMEMLIMIT=") {
			base = append(base, kv)
		}
	}
	tests := []struct {
		name     string
		env      []string
		gogc     string
		memlimit string
	}{
		{"default", nil, "400", "2.147483648e+09"},
		{"GOMEMLIMIT set", []string{"GOMEMLIMIT=3GiB"}, "400", "3.221225472e+09"},
		{"GOGC set", []string{"GOGC=150"}, "150", "9.223372036854776e+18"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDaemon(t, "")
			d.env = append(append([]string{}, base...), tt.env...)
			d.start()
			resp, err := http.Get("http://" + d.httpAddr + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string]string{"go_gc_gogc_percent": tt.gogc, "go_gc_gomemlimit_bytes": tt.memlimit} {
				m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
				if m == nil || string(m[1]) != want {
					t.Errorf("%s = %q, want %s", name, m, want)
				}
			}
		})
	}
}
