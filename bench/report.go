package bench

import (
	"runtime"
	"time"
)

// Schema names of the JSON documents "abacus bench -o json" prints. A
// change that renames or removes a field gets a new name; adding fields
// does not.
const (
	// SchemaRun is the schema of Report.
	SchemaRun = "abacus.bench.run/v1"
	// SchemaCompare is the schema of CompareReport.
	SchemaCompare = "abacus.bench.compare/v1"
)

// Report is the JSON document of one run.
type Report struct {
	Schema string     `json:"schema"`
	Env    Env        `json:"env"`
	Config ConfigJSON `json:"config"`
	Result *Result    `json:"result"`
}

// CompareReport is the JSON document of a comparison.
type CompareReport struct {
	Schema     string      `json:"schema"`
	Env        Env         `json:"env"`
	Config     ConfigJSON  `json:"config"`
	Comparison *Comparison `json:"comparison"`
}

// Env records where the numbers come from.
type Env struct {
	// Time is when the report was made (RFC 3339, UTC).
	Time string `json:"time"`
	// GoVersion, GOOS and GOARCH are the load generator's.
	GoVersion string `json:"go_version"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	// NumCPU and GOMAXPROCS are the generator's machine and its setting
	// (the generator shares the CPUs with the target on one machine).
	NumCPU     int `json:"num_cpu"`
	GOMAXPROCS int `json:"gomaxprocs"`
}

// CurrentEnv describes the running process.
func CurrentEnv() Env {
	return Env{
		Time:       time.Now().UTC().Format(time.RFC3339),
		GoVersion:  runtime.Version(),
		GOOS:       runtime.GOOS,
		GOARCH:     runtime.GOARCH,
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
	}
}

// ConfigJSON is Config as it appears in reports (durations in seconds).
type ConfigJSON struct {
	Scenario     string  `json:"scenario"`
	ReadRatio    float64 `json:"read_ratio"`
	Callers      int     `json:"callers"`
	DurationSec  float64 `json:"duration_sec"`
	Count        int64   `json:"count"`
	WarmupSec    float64 `json:"warmup_sec"`
	Counters     int     `json:"counters"`
	Dist         string  `json:"dist"`
	ZipfS        float64 `json:"zipf_s"`
	BatchSize    int     `json:"batch_size"`
	Rate         float64 `json:"rate"`
	RateFraction float64 `json:"rate_fraction"`
	TimeoutSec   float64 `json:"timeout_sec"`
	Seed         uint64  `json:"seed"`
	// Reps is the number of repetitions (comparisons only; 1 for a run).
	Reps int `json:"reps"`
}

// JSON returns c (with defaults) as it appears in reports.
func (c Config) JSON() ConfigJSON {
	c = c.WithDefaults()
	return ConfigJSON{
		Scenario:     c.Scenario,
		ReadRatio:    c.ReadRatio,
		Callers:      c.Callers,
		DurationSec:  c.Duration.Seconds(),
		Count:        c.Count,
		WarmupSec:    c.Warmup.Seconds(),
		Counters:     c.Counters,
		Dist:         c.Dist,
		ZipfS:        c.ZipfS,
		BatchSize:    c.BatchSize,
		Rate:         c.Rate,
		RateFraction: c.RateFraction,
		TimeoutSec:   c.Timeout.Seconds(),
		Seed:         c.Seed,
		Reps:         1,
	}
}
