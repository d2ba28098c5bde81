package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/parquet-go/parquet-go"
	"google.golang.org/grpc/codes"
)

// runTerminal runs the CLI as runCLI does, but as if stderr were a
// terminal, where progress bars are drawn.
func runTerminal(t *testing.T, addr string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.lookupEnv = func(string) (string, bool) { return "", false }
	a.backoff = time.Millisecond
	a.isTerminal = func(w io.Writer) bool { return w == &errb }
	code := a.run(context.Background(), append([]string{"--addr", addr}, args...))
	return result{code, out.String(), errb.String()}
}

// exportCounters are the counters seedExport writes, in name order: names
// that CSV must quote and JSON could escape.
var exportCounters = []string{`a,b "c"`, "home", "x&y<z>"}

// seedExport gives the fake's views namespace events in several counters,
// with clears, negative deltas and times of every precision, and returns
// them as the rows of an export of the whole namespace, in order.
func seedExport(f *fake) []exportRow {
	var rows []exportRow
	for i, counter := range exportCounters {
		var events []*abacusv1.Event
		for j := range 4 + 3*i {
			at := testEpoch.Add(time.Duration(j)*time.Second + time.Duration(j*j*j)*time.Millisecond/7)
			id := fmt.Sprintf("%s-%d", strings.Repeat("e", 1+j%3), j)
			r := exportRow{Namespace: "views", Counter: counter, EventID: id, Time: at, Delta: int64(j*7%5 - 2)}
			if r.Delta == 0 {
				r.Clear = true
				events = append(events, clearEvent(id, at))
			} else {
				events = append(events, deltaEvent(id, at, r.Delta))
			}
			rows = append(rows, r)
		}
		f.addEvents("views", counter, events...)
	}
	return rows
}

func TestExport(t *testing.T) {
	f := newFake()
	all := seedExport(f)
	addr := f.start(t)
	dir := t.TempDir()

	t.Run("jsonl", func(t *testing.T) {
		out := filepath.Join(dir, "a.jsonl")
		r := runCLI(t, addr, "", "export", "views", `a,b "c"`, "--out", out)
		if r.code != ExitOK || r.stdout != "" || r.stderr != "" {
			t.Fatalf("got %+v", r)
		}
		want := `{"namespace":"views","counter":"a,b \"c\"","event_id":"e-0","generation_time":"2024-10-05T14:48:00Z","delta":-2,"clear":false}
{"namespace":"views","counter":"a,b \"c\"","event_id":"ee-1","generation_time":"2024-10-05T14:48:01.000142857Z","delta":0,"clear":true}
{"namespace":"views","counter":"a,b \"c\"","event_id":"eee-2","generation_time":"2024-10-05T14:48:02.001142857Z","delta":2,"clear":false}
{"namespace":"views","counter":"a,b \"c\"","event_id":"e-3","generation_time":"2024-10-05T14:48:03.003857142Z","delta":-1,"clear":false}
`
		if got := readFile(t, out); got != want {
			t.Errorf("file:\n%s\nwant:\n%s", got, want)
		}
	})
	t.Run("csv of a range, to stdout", func(t *testing.T) {
		r := runCLI(t, addr, "", "export", "views", "--from", "2024-10-05T14:48:02Z", "--to", "2024-10-05T14:48:03Z", "--out", "-", "-o", "csv")
		want := `namespace,counter,event_id,generation_time,delta,clear
views,"a,b ""c""",eee-2,2024-10-05T14:48:02.001142857Z,2,false
views,home,eee-2,2024-10-05T14:48:02.001142857Z,2,false
views,x&y<z>,eee-2,2024-10-05T14:48:02.001142857Z,2,false
`
		if r.code != ExitOK || r.stdout != want {
			t.Errorf("exit status %d, stderr %q, stdout:\n%s\nwant:\n%s", r.code, r.stderr, r.stdout, want)
		}
		req := f.sent("ExportEvents")[len(f.sent("ExportEvents"))-1].(*abacusv1.ExportEventsRequest)
		if req.GetCounterName() != "" || !req.GetStartTime().AsTime().Equal(testEpoch.Add(2*time.Second)) || req.GetResumeAfter() != nil {
			t.Errorf("sent %v", req)
		}
	})
	t.Run("parquet read back", func(t *testing.T) {
		out := filepath.Join(dir, "all.parquet")
		r := runCLI(t, addr, "", "export", "views", "--out", out)
		if r.code != ExitOK {
			t.Fatalf("got %+v", r)
		}
		checkParquet(t, out, all)
	})
	t.Run("retained_from noted", func(t *testing.T) {
		f.mu.Lock()
		f.audit.retainedFrom = map[string]time.Time{"views": testEpoch}
		f.mu.Unlock()
		defer func() { f.mu.Lock(); f.audit.retainedFrom = nil; f.mu.Unlock() }()
		r := runCLI(t, addr, "", "export", "views", "home", "--out", filepath.Join(dir, "r.csv"))
		if r.code != ExitOK || r.stderr != "abacus: note: retention keeps the events from 2024-10-05T14:48:00Z on (retained_from); earlier ones may have been deleted: they are not in the export\n" {
			t.Errorf("got %+v", r)
		}
	})
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkParquet reads a Parquet export back with the library and compares
// its rows with want.
func checkParquet(t *testing.T, name string, want []exportRow) {
	t.Helper()
	rows, err := parquet.ReadFile[parquetRow](name)
	if err != nil {
		t.Fatalf("reading %s back: %v", name, err)
	}
	got := make([]exportRow, len(rows))
	for i, p := range rows {
		got[i] = exportRow{p.Namespace, p.Counter, p.EventID, p.GenerationTime.UTC(), p.Delta, p.Clear}
	}
	same := func(a, b exportRow) bool {
		ta, tb := a.Time, b.Time
		a.Time, b.Time = time.Time{}, time.Time{}
		return a == b && ta.Equal(tb)
	}
	if !slices.EqualFunc(got, want, same) {
		t.Errorf("rows read back:\n%v\nwant:\n%v", got, want)
	}
}

// TestExportResume checks that a resumed JSONL or CSV export equals, byte
// for byte, one run of the same export: after the stream broke, and after
// the file was cut at any byte (a row half written).
func TestExportResume(t *testing.T) {
	f := newFake()
	seedExport(f)
	addr := f.start(t)
	for _, format := range []string{"jsonl", "csv"} {
		for _, tc := range []struct {
			name string
			args []string
		}{
			{"namespace", []string{"views"}},
			{"counter in a range", []string{"views", "home", "--from", "2024-10-05T14:48:01Z", "--to", "2024-10-05T14:48:06Z"}},
		} {
			t.Run(format+"/"+tc.name, func(t *testing.T) {
				dir := t.TempDir()
				export := func(out string, extra ...string) result {
					args := append([]string{"export"}, tc.args...)
					return runCLI(t, addr, "", append(append(args, "-o", format, "--out", out), extra...)...)
				}
				single := filepath.Join(dir, "single")
				if r := export(single); r.code != ExitOK {
					t.Fatalf("single run: %+v", r)
				}
				want := readFile(t, single)

				// The stream breaks after two chunks; a crash leaves half a row.
				broken := filepath.Join(dir, "broken")
				f.scriptExport(exportFault{chunks: 1, code: codes.Internal})
				if r := export(broken); r.code != ExitServer || !strings.Contains(r.stderr, "injected internal after 1 chunks") {
					t.Fatalf("broken run: %+v", r)
				}
				part := readFile(t, broken)
				if !strings.HasPrefix(want, part) || len(part) == len(want) {
					t.Fatalf("broken run wrote %d of %d bytes, not a prefix", len(part), len(want))
				}
				torn := want[len(part) : len(part)+5]
				if err := os.WriteFile(broken, []byte(part+torn), 0o666); err != nil {
					t.Fatal(err)
				}
				if r := export(broken, "--resume"); r.code != ExitOK {
					t.Fatalf("resume: %+v", r)
				}
				if got := readFile(t, broken); got != want {
					t.Fatalf("resumed file:\n%s\nwant:\n%s", got, want)
				}
				sent := f.sent("ExportEvents")
				after := sent[len(sent)-1].(*abacusv1.ExportEventsRequest).GetResumeAfter()
				if after.GetEventId() == "" || after.GetCounterName() == "" || after.GetKind() == nil {
					t.Errorf("resume_after %v", after)
				}

				// Cut anywhere: every 17th byte, and around every row end.
				cut := filepath.Join(dir, "cut")
				var cuts []int
				for n := range len(want) + 1 {
					if n%17 == 0 || n == len(want) {
						cuts = append(cuts, n)
					}
					if n < len(want) && want[n] == '\n' {
						cuts = append(cuts, n, n+1, n+2)
					}
				}
				for _, n := range cuts {
					n = min(n, len(want))
					if err := os.WriteFile(cut, []byte(want[:n]), 0o666); err != nil {
						t.Fatal(err)
					}
					if r := export(cut, "--resume"); r.code != ExitOK {
						t.Fatalf("resume after %d bytes: %+v", n, r)
					}
					if got := readFile(t, cut); got != want {
						t.Fatalf("resumed after %d bytes:\n%s\nwant:\n%s", n, got, want)
					}
				}

				// --resume without a file starts one.
				fresh := filepath.Join(dir, "fresh")
				if r := export(fresh, "--resume"); r.code != ExitOK || readFile(t, fresh) != want {
					t.Errorf("resume of no file: %+v", r)
				}
			})
		}
	}
}

// TestExportResumeParquet checks that an interrupted Parquet export, which
// the CLI closes with its footer, resumes into a file with every row, and
// that a file cut short (no footer) is refused.
func TestExportResumeParquet(t *testing.T) {
	f := newFake()
	all := seedExport(f)
	addr := f.start(t)
	out := filepath.Join(t.TempDir(), "v.parquet")
	f.scriptExport(exportFault{chunks: 3, code: codes.Internal})
	if r := runCLI(t, addr, "", "export", "views", "--out", out); r.code != ExitServer {
		t.Fatalf("broken run: %+v", r)
	}
	checkParquet(t, out, all[:9])
	if r := runCLI(t, addr, "", "export", "views", "--out", out, "--resume"); r.code != ExitOK {
		t.Fatalf("resume: %+v", r)
	}
	checkParquet(t, out, all)
	if m, _ := filepath.Glob(out + ".resume-*"); len(m) != 0 {
		t.Errorf("left behind: %v", m)
	}

	b := []byte(readFile(t, out))
	if err := os.WriteFile(out, b[:len(b)/2], 0o666); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, addr, "", "export", "views", "--out", out, "--resume")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "is not a complete Parquet file") || !strings.Contains(r.stderr, "export again without --resume") {
		t.Errorf("resume of a torn file: %+v", r)
	}
	if got := readFile(t, out); got != string(b[:len(b)/2]) {
		t.Error("the refused resume changed the file")
	}
}

// TestExportReconnects checks that a stream broken by UNAVAILABLE, or
// silent for --timeout, is reopened after the last row written.
func TestExportReconnects(t *testing.T) {
	f := newFake()
	seedExport(f)
	addr := f.start(t)
	dir := t.TempDir()
	single := filepath.Join(dir, "single.jsonl")
	if r := runCLI(t, addr, "", "export", "views", "--out", single); r.code != ExitOK {
		t.Fatal(r)
	}
	n := len(f.sent("ExportEvents"))

	out := filepath.Join(dir, "x.jsonl")
	f.scriptExport(exportFault{chunks: 2, code: codes.Unavailable}, exportFault{chunks: 1, hang: true})
	if r := runCLI(t, addr, "", "--timeout", "300ms", "export", "views", "--out", out); r.code != ExitOK {
		t.Fatalf("got %+v", r)
	}
	if readFile(t, out) != readFile(t, single) {
		t.Errorf("file differs from a single run:\n%s", readFile(t, out))
	}
	sent := f.sent("ExportEvents")[n:]
	want := []string{"", "ee-1", "ee-4"}
	if len(sent) != len(want) {
		t.Fatalf("%d streams, want %d", len(sent), len(want))
	}
	for i, m := range sent {
		if got := m.(*abacusv1.ExportEventsRequest).GetResumeAfter().GetEventId(); got != want[i] {
			t.Errorf("stream %d resumed after %q, want %q", i, got, want[i])
		}
	}

	// Retries are counted between rows: without progress, they run out.
	f.scriptExport(exportFault{code: codes.Unavailable}, exportFault{code: codes.Unavailable})
	r := runCLI(t, addr, "", "--retries", "1", "export", "views", "--out", out)
	if r.code != ExitServer || !strings.HasPrefix(r.stderr, "abacus: unavailable: ") {
		t.Errorf("got %+v", r)
	}
}

func TestExportProgress(t *testing.T) {
	f := newFake()
	seedExport(f)
	addr := f.start(t)
	out := filepath.Join(t.TempDir(), "x.csv")
	r := runTerminal(t, addr, "export", "views", "home", "--from", t0, "--to", "2024-10-05T14:48:10Z", "--out", out)
	if r.code != ExitOK || !regexp.MustCompile(`\d+ events  \d+ B  \d+ events/s`).MatchString(r.stderr) || !strings.Contains(r.stderr, "%") {
		t.Errorf("progress: %+v", r)
	}
	r = runTerminal(t, addr, "export", "views", "--out", out)
	if r.code != ExitOK || !strings.Contains(r.stderr, "events/s") {
		t.Errorf("progress without a range: %+v", r)
	}
	r = runTerminal(t, addr, "export", "views", "--out", out, "--no-progress")
	if r.code != ExitOK || r.stderr != "" {
		t.Errorf("--no-progress: %+v", r)
	}
	r = runCLI(t, addr, "", "export", "views", "--out", out)
	if r.code != ExitOK || r.stderr != "" {
		t.Errorf("not a terminal: %+v", r)
	}
}

func TestExportUsage(t *testing.T) {
	f := newFake()
	seedExport(f)
	addr := f.start(t)
	dir := t.TempDir()
	other := filepath.Join(dir, "other.jsonl")
	if err := os.WriteFile(other, []byte(`{"namespace":"clicks","counter":"home","event_id":"e","generation_time":"2024-10-05T14:48:00Z","delta":1,"clear":false}`+"\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	notCSV := filepath.Join(dir, "x.csv")
	if err := os.WriteFile(notCSV, []byte("a,b\n1,2\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"export", "views"}, `--out FILE is required`},
		{[]string{"export", "views", "--out", filepath.Join(dir, "x.txt")}, `-o jsonl, csv or parquet is required: the extension of ".*x.txt" does not tell`},
		{[]string{"export", "views", "--out", "-"}, `-o jsonl, csv or parquet is required`},
		{[]string{"export", "views", "--out", "x.csv", "-o", "json"}, `-o must be jsonl, csv or parquet, not "json"`},
		{[]string{"-o", "json", "export", "views", "--out", "x.csv"}, `-o must be jsonl, csv or parquet, not "json"`},
		{[]string{"export", "views", "--out", "-", "-o", "csv", "--resume"}, `--resume needs a file, not stdout`},
		{[]string{"export", "views", "a", "b", "--out", "x.csv"}, `accepts between 1 and 2 arg\(s\)`},
		{[]string{"export", "views", "--out", "x.csv", "--from", "2024-10-06T00:00:00Z", "--to", t0}, `--from .* is not before --to`},
		{[]string{"export", "views", "--out", other, "--resume"}, `--resume: .*other.jsonl: its last row is of namespace "clicks", not "views"`},
		{[]string{"export", "clicks", "nothome", "--out", other, "--resume"}, `its last row is of counter "home", not "nothome"`},
		{[]string{"export", "views", "--out", notCSV, "--resume"}, `it does not start with the header line of a CSV export`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runCLI(t, addr, "", tt.args...)
			if r.code != ExitUsage || !regexp.MustCompile(tt.stderr).MatchString(r.stderr) || !strings.Contains(r.stderr, "usage: abacus export") {
				t.Errorf("got %+v, want stderr matching %q", r, tt.stderr)
			}
		})
	}
	if len(f.sent("ExportEvents")) != 0 {
		t.Errorf("usage errors sent %d exports", len(f.sent("ExportEvents")))
	}
	if got := readFile(t, other); !strings.HasPrefix(got, `{"namespace":"clicks"`) {
		t.Errorf("a refused resume changed the file: %q", got)
	}
}
