package bench

// Result is what one run measured. Its JSON field names are stable (see
// docs/benchmarks.md for the schema); fields may be added, never renamed.
type Result struct {
	// Target is the target's label (a Spec string).
	Target string `json:"target"`
	// TargetInfo says more about the target's setup (e.g. the namespace and
	// its counter type), when it has something to say.
	TargetInfo string `json:"target_info,omitempty"`
	// Scenario is add, get, mixed or batch.
	Scenario string `json:"scenario"`
	// Callers is the number of concurrent callers.
	Callers int `json:"callers"`
	// CountersPerOp is how many counters each op adds to or reads: 1, or the
	// batch size for ScenarioBatch and batching targets.
	CountersPerOp int `json:"counters_per_op"`
	// Rate is the target rate in ops/s; 0 for a closed-loop run.
	Rate float64 `json:"rate"`
	// PeakOpsPerSec is the closed-loop peak that Rate was derived from,
	// with Config.RateFraction; else 0.
	PeakOpsPerSec float64 `json:"peak_ops_per_sec,omitempty"`
	// ElapsedSec runs from the start of the measured phase to the end of
	// its last op.
	ElapsedSec float64 `json:"elapsed_sec"`
	// Ops counts successful ops.
	Ops int64 `json:"ops"`
	// Errors counts failed ops; ErrorsByCode splits them by code (see
	// ErrorCode), and ErrorSamples holds the first message of each code.
	Errors       int64             `json:"errors"`
	ErrorsByCode map[string]int64  `json:"errors_by_code"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	// Unsent counts ops of an open-loop run that were due before the end
	// but that no caller was free to send: a sign the rate is beyond what
	// Callers callers can keep up with. Always 0 closed-loop.
	Unsent int64 `json:"unsent"`
	// Increments and Reads count the counters added to and read by
	// successful ops (an AddCounts of 100 counts 100).
	Increments int64 `json:"increments"`
	Reads      int64 `json:"reads"`
	// OpsPerSec, IncrementsPerSec and ReadsPerSec are the counts above
	// divided by ElapsedSec.
	OpsPerSec        float64 `json:"ops_per_sec"`
	IncrementsPerSec float64 `json:"increments_per_sec"`
	ReadsPerSec      float64 `json:"reads_per_sec"`
	// Latency is the latency of every successful op; LatencyByOp splits it
	// into "add" and "get" (only the kinds the scenario has).
	Latency     Latency            `json:"latency"`
	LatencyByOp map[string]Latency `json:"latency_by_op"`
	// ServerCPU is the CPU the server (abacusd, from its /metrics; a peer,
	// from /proc) spent over the measured phase; nil when the target has
	// no source for it (see Options.MetricsURL and Options.ServerPIDs).
	ServerCPU *CPU `json:"server_cpu,omitempty"`
	// GeneratorCPU is the CPU this process (the callers and the target's
	// client) spent over the measured phase.
	GeneratorCPU *CPU `json:"generator_cpu,omitempty"`
	// Interrupted is set when the run was cancelled before its end.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Throughput is the counter operations per second of r: increments plus
// reads. It is what comparisons rank targets by, so that one AddCounts of
// 100 counters weighs as much as 100 INCRBY.
func (r *Result) Throughput() float64 { return r.IncrementsPerSec + r.ReadsPerSec }

func (tl *tally) result(t Target, cfg Config, items int) *Result {
	res := &Result{
		Target:        t.Name(),
		Scenario:      cfg.Scenario,
		Callers:       cfg.Callers,
		CountersPerOp: items,
		ElapsedSec:    tl.elapsed.Seconds(),
		Unsent:        tl.unsent,
		ErrorsByCode:  map[string]int64{},
		LatencyByOp:   map[string]Latency{},
	}
	if d, ok := t.(Describer); ok {
		res.TargetInfo = d.Describe()
	}
	for i := range tl.callers {
		c := &tl.callers[i]
		res.Ops += c.ok
		res.Errors += c.failed
		res.Increments += c.increments
		res.Reads += c.reads
		for code, n := range c.errs {
			res.ErrorsByCode[code] += n
		}
		for code, msg := range c.samples {
			if res.ErrorSamples == nil {
				res.ErrorSamples = map[string]string{}
			}
			if _, ok := res.ErrorSamples[code]; !ok {
				res.ErrorSamples[code] = msg
			}
		}
	}
	res.OpsPerSec = perSec(res.Ops, tl.elapsed)
	res.IncrementsPerSec = perSec(res.Increments, tl.elapsed)
	res.ReadsPerSec = perSec(res.Reads, tl.elapsed)

	all := NewHistogram(1)
	for _, k := range []struct {
		name string
		h    *Histogram
	}{{"add", tl.add}, {"get", tl.get}} {
		l := k.h.Snapshot()
		if l.Count > 0 || hasKind(cfg, k.name) {
			res.LatencyByOp[k.name] = l
		}
		all.merge(k.h)
	}
	res.Latency = all.Snapshot()
	return res
}

// hasKind reports whether the scenario issues ops of the kind ("add" or
// "get"), so that a kind the scenario has shows up even with no success.
func hasKind(cfg Config, kind string) bool {
	switch cfg.Scenario {
	case ScenarioMixed:
		return kind == "get" && cfg.ReadRatio > 0 || kind == "add" && cfg.ReadRatio < 1
	case ScenarioGet:
		return kind == "get"
	}
	return kind == "add"
}

// merge adds every shard of from into h's first shard.
func (h *Histogram) merge(from *Histogram) {
	dst := &h.shards[0]
	dst.mu.Lock()
	defer dst.mu.Unlock()
	for i := range from.shards {
		s := &from.shards[i]
		s.mu.Lock()
		dst.h.Merge(s.h)
		dst.max = max(dst.max, s.max)
		dst.clamped += s.clamped
		s.mu.Unlock()
	}
}
