package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/abacus-dev/abacus/bench"
)

// printRun prints one run's result: a bench.Report with -o json, else a
// short description and an aligned latency table.
func (a *app) printRun(cfg bench.Config, res *bench.Result) error {
	if a.output == "json" {
		return writeJSON(a.stdout, bench.Report{Schema: bench.SchemaRun, Env: bench.CurrentEnv(), Config: cfg.JSON(), Result: res})
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	target := res.Target
	if res.TargetInfo != "" {
		target += " (" + res.TargetInfo + ")"
	}
	fmt.Fprintf(tw, "target:\t%s\n", target)
	fmt.Fprintf(tw, "load:\t%s\n", loadText(cfg, res))
	fmt.Fprintf(tw, "elapsed:\t%.2fs\n", res.ElapsedSec)
	fmt.Fprintf(tw, "ops:\t%s ok, %s errors", count(res.Ops), count(res.Errors))
	if res.Rate > 0 {
		fmt.Fprintf(tw, ", %s unsent", count(res.Unsent))
	}
	fmt.Fprintln(tw)
	tp := []string{thousands(res.OpsPerSec) + " ops/s"}
	if res.Increments > 0 {
		tp = append(tp, thousands(res.IncrementsPerSec)+" increments/s")
	}
	if res.Reads > 0 {
		tp = append(tp, thousands(res.ReadsPerSec)+" reads/s")
	}
	fmt.Fprintf(tw, "throughput:\t%s\n", strings.Join(tp, ", "))
	if t := cpuText(res, res.ServerCPU); t != "" {
		fmt.Fprintf(tw, "server cpu:\t%s\n", t)
	}
	if t := cpuText(res, res.GeneratorCPU); t != "" {
		fmt.Fprintf(tw, "generator cpu:\t%s\n", t)
	}
	for _, code := range slices.Sorted(maps.Keys(res.ErrorsByCode)) {
		fmt.Fprintf(tw, "error:\t%s × %d (%s)\n", code, res.ErrorsByCode[code], oneLine(res.ErrorSamples[code]))
	}
	if res.Interrupted {
		fmt.Fprintf(tw, "note:\tinterrupted before the end: partial figures\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout)
	return writeLatencyTable(a.stdout, res)
}

// cpuText describes c, a CPU figure of res, in one line: per op, per
// counter operation when an op has several, the share of one CPU and the
// source. "" when c is nil.
func cpuText(res *bench.Result, c *bench.CPU) string {
	switch {
	case c == nil:
		return ""
	case c.Error != "":
		return "- (" + oneLine(c.Error) + ")"
	}
	s := perOpText(c.PerOpUS, c.PerCountUS, res.CountersPerOp, res.Scenario) + " per op"
	if res.ElapsedSec > 0 {
		s += fmt.Sprintf(", %.0f%% of one CPU", 100*c.Seconds/res.ElapsedSec)
	}
	return s + " (" + c.Source + ")"
}

// perOpText prints a CPU per op, followed by the CPU per counter operation
// when an op has several counters: "840µs (8.40µs/incr)".
func perOpText(perOp, perCount float64, countersPerOp int, scenario string) string {
	s := us(perOp)
	if countersPerOp > 1 && perCount > 0 {
		s += " (" + us(perCount) + "/" + countWord(scenario) + ")"
	}
	return s
}

// countWord names a scenario's counter operation.
func countWord(scenario string) string {
	switch scenario {
	case bench.ScenarioGet:
		return "read"
	case bench.ScenarioMixed:
		return "count"
	}
	return "incr"
}

// cpuCell is a compare table's cell of a CPU spread: the median per op.
func cpuCell(s *bench.Summary, c *bench.CPUSpread) string {
	if c == nil || c.Reps == 0 || len(s.Runs) == 0 {
		return "-"
	}
	return perOpText(c.PerOpUS.Median, c.PerCountUS.Median, s.Runs[0].CountersPerOp, s.Scenario)
}

// loadText describes the load of a run in one line.
func loadText(cfg bench.Config, res *bench.Result) string {
	cfg = cfg.WithDefaults()
	var b strings.Builder
	b.WriteString(res.Scenario)
	if res.Scenario == bench.ScenarioMixed {
		fmt.Fprintf(&b, " (%.0f%% reads)", cfg.ReadRatio*100)
	}
	if res.CountersPerOp > 1 {
		fmt.Fprintf(&b, ", %d counters per op", res.CountersPerOp)
	}
	fmt.Fprintf(&b, ", %d callers, ", res.Callers)
	switch {
	case res.Rate > 0 && res.PeakOpsPerSec > 0:
		fmt.Fprintf(&b, "open loop at %s ops/s (%.0f%% of a peak of %s)", thousands(res.Rate), cfg.RateFraction*100, thousands(res.PeakOpsPerSec))
	case res.Rate > 0:
		fmt.Fprintf(&b, "open loop at %s ops/s", thousands(res.Rate))
	default:
		b.WriteString("closed loop")
	}
	if cfg.Count > 0 {
		fmt.Fprintf(&b, ", %d ops", cfg.Count)
	} else {
		fmt.Fprintf(&b, ", %v", cfg.Duration)
	}
	if cfg.Warmup > 0 {
		fmt.Fprintf(&b, " after %v warmup", cfg.Warmup)
	}
	fmt.Fprintf(&b, ", %d counters %s", cfg.Counters, cfg.Dist)
	if cfg.Dist == bench.DistZipf {
		fmt.Fprintf(&b, " (s=%g)", cfg.ZipfS)
	}
	return b.String()
}

func writeLatencyTable(w io.Writer, res *bench.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "OP\tCOUNT\tMEAN\tP50\tP90\tP99\tP99.9\tMAX\t")
	row := func(name string, l bench.Latency) {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, l.Count, us(l.MeanUS), us(l.P50US), us(l.P90US), us(l.P99US), us(l.P999US), us(l.MaxUS))
	}
	for _, k := range slices.Sorted(maps.Keys(res.LatencyByOp)) {
		row(k, res.LatencyByOp[k])
	}
	if len(res.LatencyByOp) > 1 {
		row("all", res.Latency)
	}
	return tw.Flush()
}

// printCompare prints a comparison: a bench.CompareReport with -o json,
// else one row per target and notes on the skipped ones.
func (a *app) printCompare(cc bench.CompareConfig, c *bench.Comparison) error {
	cfgJSON := cc.Config.JSON()
	cfgJSON.Reps = c.Reps
	if a.output == "json" {
		return writeJSON(a.stdout, bench.CompareReport{Schema: bench.SchemaCompare, Env: bench.CurrentEnv(), Config: cfgJSON, Comparison: c})
	}
	cfg := cc.Config.WithDefaults()
	length := cfg.Duration.String()
	if cfg.Count > 0 {
		length = strconv.FormatInt(cfg.Count, 10) + " ops"
	}
	warmup := ""
	if cfg.Warmup > 0 {
		warmup = fmt.Sprintf(" (after %v warmup)", cfg.Warmup)
	}
	load := "closed loop"
	switch {
	case cfg.RateFraction > 0:
		load = fmt.Sprintf("open loop at %.0f%% of each target's peak", cfg.RateFraction*100)
	case cfg.Rate > 0:
		load = "open loop at " + thousands(cfg.Rate) + " ops/s"
	}
	fmt.Fprintf(a.stdout, "scenario %s, %d callers, %s, %s per run%s, %d reps interleaved, %d counters %s\n\n",
		cfg.Scenario, cfg.Callers, load, length, warmup, c.Reps, cfg.Counters, cfg.Dist)
	vs := "VS " + strings.ToUpper(c.Baseline)
	if c.Baseline == "" {
		vs = "RATIO"
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "TARGET\tSCENARIO\tCOUNTS/S (MEDIAN)\tMIN–MAX\t%s\tOPS/S\tP50\tP99\tSERVER CPU/OP\tGEN CPU/OP\tERRORS\n", vs)
	for _, s := range c.Targets {
		ratio := "-"
		if s.Ratio != nil {
			ratio = fmt.Sprintf("%.2fx", *s.Ratio)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s–%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", s.Target, s.Scenario,
			thousands(s.Throughput.Median), thousands(s.Throughput.Min), thousands(s.Throughput.Max), ratio,
			thousands(s.OpsPerSec.Median), us(s.P50US.Median), us(s.P99US.Median),
			cpuCell(s, s.ServerCPU), cpuCell(s, s.GeneratorCPU), s.Errors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var notes []string
	for _, s := range c.Targets {
		if s.TargetInfo != "" {
			notes = append(notes, s.Target+": "+s.TargetInfo)
		}
		if c := s.ServerCPU; c != nil {
			note := fmt.Sprintf("%s: server CPU from %s", s.Target, c.Source)
			if c.Error != "" {
				note += fmt.Sprintf(" (%d of %d reps; %s)", c.Reps, len(s.Runs), oneLine(c.Error))
			}
			notes = append(notes, note)
		}
		if len(s.Runs) > 0 && s.Runs[0].Rate > 0 {
			var rates, peaks []float64
			var unsent int64
			for _, r := range s.Runs {
				rates, peaks = append(rates, r.Rate), append(peaks, r.PeakOpsPerSec)
				unsent += r.Unsent
			}
			note := fmt.Sprintf("%s: open loop at %s ops/s", s.Target, thousands(median(rates)))
			if p := median(peaks); p > 0 {
				note += " (median; peak " + thousands(p) + " ops/s)"
			}
			notes = append(notes, fmt.Sprintf("%s, %d unsent", note, unsent))
		}
		for _, code := range slices.Sorted(maps.Keys(s.ErrorsByCode)) {
			sample := ""
			for _, r := range s.Runs {
				if m := r.ErrorSamples[code]; m != "" {
					sample = " (" + oneLine(m) + ")"
					break
				}
			}
			notes = append(notes, fmt.Sprintf("%s: %s × %d%s", s.Target, code, s.ErrorsByCode[code], sample))
		}
	}
	for _, s := range c.Skipped {
		notes = append(notes, fmt.Sprintf("%s: skipped, %s", s.Target, s.Reason))
	}
	if len(notes) > 0 {
		fmt.Fprintln(a.stdout)
		for _, n := range notes {
			fmt.Fprintln(a.stdout, n)
		}
	}
	return nil
}

// median of xs (not empty), the mean of the middle two for an even count.
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// us prints a latency given in microseconds with three significant digits
// in the unit that suits it: 87.3µs, 1.25ms, 2.10s.
func us(v float64) string {
	d := time.Duration(v * 1e3)
	switch {
	case v == 0:
		return "-"
	case d < time.Millisecond:
		return sig3(v) + "µs"
	case d < time.Second:
		return sig3(v/1e3) + "ms"
	}
	return sig3(v/1e6) + "s"
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// count prints n with thousands separators.
func count(n int64) string { return thousands(float64(n)) }

// thousands prints v rounded to an integer with thousands separators
// (12,345), or with one decimal below 100, where the decimal matters.
func thousands(v float64) string {
	if v < 100 && v != float64(int64(v)) {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	s := strconv.FormatFloat(v, 'f', 0, 64)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
