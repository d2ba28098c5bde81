package embedded_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetrics: the store's collector exports its WAL fsync latencies (every
// synced append waits for one) and its L0 and stall gauges, under valid
// names, and Collect after Close exports nothing instead of failing.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	s, ns := newStoreNS(t, "metrics")
	const appends = 5
	for i := range appends {
		ev := abacus.Event{Counter: "c", Time: time.Now(), ID: fmt.Sprint(i), Delta: 1}
		if err := s.Append(ctx, []abacus.Write{{NS: ns, Event: ev}}); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(s); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
		if mf.GetName() == "abacus_embedded_wal_fsync_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() < 1 || h.GetSampleSum() <= 0 || h.GetSampleSum() > 10*float64(h.GetSampleCount()) {
				t.Errorf("fsync histogram: %d samples summing to %gs after %d synced appends", h.GetSampleCount(), h.GetSampleSum(), appends)
			}
		}
	}
	for _, name := range []string{"abacus_embedded_wal_fsync_seconds", "abacus_embedded_l0_sublevels", "abacus_embedded_l0_tables",
		"abacus_embedded_compaction_debt_bytes", "abacus_embedded_memtables", "abacus_embedded_write_stalls_total", "abacus_embedded_write_stall_seconds_total"} {
		if !got[name] {
			t.Errorf("%s not exported", name)
		}
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP abacus_embedded_write_stalls_total Write stalls of the embedded store: every write waited for a flush or compaction.
# TYPE abacus_embedded_write_stalls_total counter
abacus_embedded_write_stalls_total 0
`), "abacus_embedded_write_stalls_total"); err != nil {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(s); n != 0 {
		t.Errorf("%d metrics collected after Close, want 0", n)
	}
}
