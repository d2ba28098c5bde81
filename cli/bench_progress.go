package cli

import (
	"fmt"
	"io"

	"github.com/abacus-dev/abacus/bench"
	"github.com/schollz/progressbar/v3"
)

// benchProgress draws one progress bar per phase of a bench run on stderr:
// by time for a timed phase, by ops for a counted one. It is off with -o
// json (a script reads stdout, and a bar on stderr would only clutter its
// logs) and with --no-progress. Bars are cleared when their phase ends, so
// that only the report remains.
type benchProgress struct {
	w     io.Writer
	on    bool
	label string // target (and repetition), set before each run
	bar   *progressbar.ProgressBar
}

func (a *app) newProgress(off bool) *benchProgress {
	return &benchProgress{w: a.stderr, on: !off && a.output != "json"}
}

// update is a bench.Config.Progress callback. The runner calls it from one
// goroutine at a time, so it needs no lock.
func (p *benchProgress) update(pr bench.Progress) {
	if !p.on {
		return
	}
	total, at := pr.Count, pr.Done
	if pr.Count == 0 {
		total, at = pr.Duration.Milliseconds(), min(pr.Elapsed.Milliseconds(), pr.Duration.Milliseconds())
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(max(total, 1),
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionClearOnFinish(),
		)
	}
	rate := 0.0
	if s := pr.Elapsed.Seconds(); s > 0 {
		rate = float64(pr.Done) / s
	}
	p.bar.Describe(fmt.Sprintf("%s %-9s %9d ops %9.0f/s", p.label, pr.Phase, pr.Done, rate))
	_ = p.bar.Set64(at)
	if pr.Final {
		_ = p.bar.Finish()
		p.bar = nil
	}
}
