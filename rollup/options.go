package rollup

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Pipeline. The zero value is usable: every field's
// documentation gives its default.
type Options struct {
	// Logger receives rollup failures and drain summaries. Default slog.Default().
	Logger *slog.Logger

	// Registerer, if set, receives the pipeline's abacus_rollup_* metrics.
	// Default nil: no metrics are registered (Stats still works).
	Registerer prometheus.Registerer

	// Batch, if set, is called once per batch instead of Func once per
	// counter, with as much parallelism as the batch got node-wide slots
	// (MaxConcurrency). Func is still required: it is the reference the
	// batch must agree with, and tests use it. Default nil.
	Batch BatchFunc

	// BatchGrowth, with Batch, lets a queue with a backlog take up to
	// BatchGrowth × rollup_batch_count counters in one Batch call (still run
	// on at most the slots it gets); default 0 or 1: batches of
	// rollup_batch_count.
	BatchGrowth int

	// MaxConcurrency bounds the rollups running at once on the node, across
	// every queue of every namespace. Default 0: no bound beyond
	// NumQueues × RollupBatchCount per namespace.
	MaxConcurrency int

	// RollupTimeout bounds one Func call. Default 0: no bound of its own (the
	// call is still cancelled when Drain's context ends).
	RollupTimeout time.Duration

	// PauseRatio scales the pause after a batch: pause = PauseRatio × the
	// batch's duration, at most MaxPause. Default 1.
	PauseRatio float64

	// MaxPause caps the pause after a batch. Default 1s; negative: no pause.
	MaxPause time.Duration

	// RetryMin is the first backoff after a failed rollup; each further
	// consecutive failure of the counter doubles it, up to RetryMax. The
	// actual wait is drawn from [b/2, b] so that counters failed by one
	// outage do not retry in lockstep. Default 1s.
	RetryMin time.Duration

	// RetryMax caps the retry backoff. Default 1m.
	RetryMax time.Duration

	// ErrorLogInterval is the least time between two logged rollup failures;
	// the ones in between are counted in the next log line. Default 10s.
	ErrorLogInterval time.Duration
}

// withDefaults returns o with its zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.PauseRatio <= 0 {
		o.PauseRatio = 1
	}
	if o.MaxPause == 0 {
		o.MaxPause = time.Second
	}
	if o.RetryMin <= 0 {
		o.RetryMin = time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = time.Minute
	}
	o.RetryMax = max(o.RetryMax, o.RetryMin)
	if o.ErrorLogInterval <= 0 {
		o.ErrorLogInterval = 10 * time.Second
	}
	return o
}

// pause returns how long a queue waits after a batch that took d.
func (o Options) pause(d time.Duration) time.Duration {
	if o.MaxPause < 0 {
		return 0
	}
	return min(time.Duration(float64(d)*o.PauseRatio), o.MaxPause)
}
