package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPU is the CPU time (user plus system) one process, or process tree,
// spent over a run's measured phase, and what that comes to per op. It is
// what tells a target's cost apart from its throughput: on a machine whose
// CPUs the generator and the server share, ops/s alone moves with whatever
// else runs, while the CPU per op moves only when the work per op does.
type CPU struct {
	// Source says where the figure comes from: a /metrics URL, "/proc/PID"
	// or "getrusage" (the generator).
	Source string `json:"source"`
	// Seconds is the CPU time spent over the measured phase. It includes
	// the process's background work (for abacusd, rollups and compactions),
	// which is part of what the ops cost.
	Seconds float64 `json:"seconds"`
	// PerOpUS is Seconds over the successful ops, in microseconds.
	PerOpUS float64 `json:"per_op_us"`
	// PerCountUS is Seconds over the counter operations (increments plus
	// reads, see Result.Throughput), in microseconds: for an AddCounts of
	// 100, the CPU per increment. Equal to PerOpUS for single-counter ops.
	PerCountUS float64 `json:"per_count_us"`
	// Error, when set, says why the figure could not be read; the other
	// fields are then zero.
	Error string `json:"error,omitempty"`
}

// CPUSource reads the CPU seconds a process has used since it started.
// Only differences between two reads matter.
type CPUSource interface {
	// CPUSeconds returns the process's user plus system CPU time.
	CPUSeconds(ctx context.Context) (float64, error)
	// String names the source in reports.
	String() string
}

// ServerCPUReporter is implemented by targets that know how to read their
// server's CPU time (abacusd's /metrics, a peer's /proc/PID). It returns
// nil when no source is configured.
type ServerCPUReporter interface {
	ServerCPU() CPUSource
}

// cpuMeter measures one CPU source over a stretch of time.
type cpuMeter struct {
	src    CPUSource
	before float64
	err    error
}

// startCPU reads src's first value; a nil src gives a nil meter.
func startCPU(ctx context.Context, src CPUSource) *cpuMeter {
	if src == nil {
		return nil
	}
	m := &cpuMeter{src: src}
	m.before, m.err = src.CPUSeconds(ctx)
	return m
}

// stop reads src again and returns the CPU spent since start, per op and
// per counter operation of res; nil for a nil meter.
func (m *cpuMeter) stop(ctx context.Context, res *Result) *CPU {
	if m == nil {
		return nil
	}
	out := &CPU{Source: m.src.String()}
	after, err := 0.0, m.err
	if err == nil {
		after, err = m.src.CPUSeconds(ctx)
	}
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.fill(after-m.before, res.Ops, res.Increments+res.Reads)
	return out
}

// fill sets Seconds and the per-op figures (zero without ops).
func (c *CPU) fill(seconds float64, ops, counts int64) {
	c.Seconds = max(seconds, 0)
	if ops > 0 {
		c.PerOpUS = c.Seconds * 1e6 / float64(ops)
	}
	if counts > 0 {
		c.PerCountUS = c.Seconds * 1e6 / float64(counts)
	}
}

// processCPUMetric is the Prometheus process collector's CPU counter, which
// abacusd serves on its /metrics (see node.start).
const processCPUMetric = "process_cpu_seconds_total"

// MetricsCPU reads process_cpu_seconds_total from a Prometheus text
// exposition at URL, such as abacusd's GET /metrics.
type MetricsCPU struct {
	// URL is the /metrics URL, e.g. http://127.0.0.1:7401/metrics.
	URL string
	// Client makes the request; nil: a client with a 5s timeout.
	Client *http.Client
}

func (m *MetricsCPU) String() string { return m.URL }

// defaultMetricsClient bounds a scrape: a node too busy to answer within 5s
// gives an error in the report, not a hung run.
var defaultMetricsClient = &http.Client{Timeout: 5 * time.Second}

// CPUSeconds scrapes m.URL once.
func (m *MetricsCPU) CPUSeconds(ctx context.Context) (float64, error) {
	hc := m.Client
	if hc == nil {
		hc = defaultMetricsClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL, nil)
	if err != nil {
		return 0, err
	}
	// The text format: no content negotiation of protobuf expositions.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", m.URL, resp.Status)
	}
	v, err := parseMetric(resp.Body, processCPUMetric)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", m.URL, err)
	}
	return v, nil
}

// parseMetric returns the value of the unlabelled sample name in a
// Prometheus text exposition. Lines are "name value [timestamp]" or
// "name{labels} value [timestamp]"; comments start with #.
func parseMetric(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, name)
		if !ok || line == "" || line[0] == '#' {
			continue
		}
		// A longer name (name_foo) is another metric.
		if rest == "" || (rest[0] != ' ' && rest[0] != '\t' && rest[0] != '{') {
			continue
		}
		if rest[0] == '{' {
			end := labelsEnd(rest)
			if end < 0 {
				return 0, fmt.Errorf("%s: unterminated labels in %q", name, line)
			}
			rest = rest[end+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0, fmt.Errorf("%s: no value in %q", name, line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: value %q: %w", name, fields[0], err)
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in the metrics", name)
}

// labelsEnd returns the index of the '}' that closes the label set s starts
// with, skipping quoted values (which may hold '}' and escaped quotes), or
// -1.
func labelsEnd(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == '}':
			return i
		}
	}
	return -1
}

// ProcCPU reads the CPU time of process PID and its live descendants from
// /proc (Linux): a server such as PostgreSQL does its work in child
// processes. Children that exited and were reaped count through their
// parent's cutime and cstime.
type ProcCPU struct {
	PID int
	// Root is the proc file system; default /proc.
	Root string
}

func (p *ProcCPU) String() string { return "/proc/" + strconv.Itoa(p.PID) }

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports (sysconf(_SC_CLK_TCK) returns it).
const clockTicks = 100

// CPUSeconds sums utime, stime, cutime and cstime over PID's tree.
func (p *ProcCPU) CPUSeconds(context.Context) (float64, error) {
	root := p.Root
	if root == "" {
		root = "/proc"
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return 0, err
	}
	type proc struct {
		ppid  int
		ticks int64
	}
	procs := map[int]proc{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		ppid, ticks, err := parseStat(string(b))
		if err != nil {
			return 0, fmt.Errorf("%s/%d/stat: %w", root, pid, err)
		}
		procs[pid] = proc{ppid, ticks}
	}
	if _, ok := procs[p.PID]; !ok {
		return 0, fmt.Errorf("no process %d", p.PID)
	}
	// A process belongs to the tree when its parent chain reaches PID.
	in := map[int]bool{p.PID: true}
	var member func(pid, depth int) bool
	member = func(pid, depth int) bool {
		if v, ok := in[pid]; ok {
			return v
		}
		pr, ok := procs[pid]
		v := ok && depth < 64 && pr.ppid != 0 && member(pr.ppid, depth+1)
		in[pid] = v
		return v
	}
	var ticks int64
	for pid, pr := range procs {
		if member(pid, 0) {
			ticks += pr.ticks
		}
	}
	return float64(ticks) / clockTicks, nil
}

// parseStat returns the parent pid and utime+stime+cutime+cstime of a
// /proc/PID/stat line. The command name (field 2) is in parentheses and
// may hold spaces and parentheses, so fields are counted after its last ')'.
func parseStat(s string) (ppid int, ticks int64, err error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, errors.New("no command name")
	}
	// After ")": state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("%d fields after the command name, want at least 15", len(f))
	}
	if ppid, err = strconv.Atoi(f[1]); err != nil {
		return 0, 0, fmt.Errorf("ppid: %w", err)
	}
	for _, k := range f[11:15] {
		n, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("cpu time %q: %w", k, err)
		}
		ticks += n
	}
	return ppid, ticks, nil
}

// selfCPU is the generator's own CPU: getrusage of this process, which runs
// the callers, the clients and their connections.
type selfCPU struct{}

func (selfCPU) String() string { return "getrusage" }

func (selfCPU) CPUSeconds(context.Context) (float64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime), nil
}
