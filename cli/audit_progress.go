package cli

import (
	"time"

	"github.com/schollz/progressbar/v3"
)

// auditBar is the progress bar of an export or a recount --all on stderr.
// It is drawn only when stderr is a terminal and --no-progress is not
// given; otherwise every method is a no-op, so callers need not check.
type auditBar struct {
	bar  *progressbar.ProgressBar
	last time.Time // of the last redraw
}

// barEvery is the least time between redraws: an export writes thousands
// of chunks a second.
const barEvery = 100 * time.Millisecond

// barScale is the length of a bar that shows a fraction (of a time range).
const barScale = 1_000_000

// newBar returns a bar on stderr: one that shows a fraction and an ETA when
// fraction is true, else a spinner.
func (a *app) newBar(off, fraction bool) *auditBar {
	if off || !a.isTerminal(a.stderr) {
		return &auditBar{}
	}
	max := int64(-1)
	if fraction {
		max = barScale
	}
	return &auditBar{bar: progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(fraction),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionClearOnFinish(),
	)}
}

// update shows desc, and the bar at frac (0 to 1) for a fraction bar, at
// most every barEvery. (The bar's own throttle would drop the second of
// the two redraws an update makes, the position's and the description's.)
func (b *auditBar) update(desc string, frac float64) {
	if b.bar == nil || time.Since(b.last) < barEvery {
		return
	}
	b.last = time.Now()
	if b.bar.GetMax64() > 0 {
		_ = b.bar.Set64(int64(min(max(frac, 0), 1) * barScale))
	} else {
		_ = b.bar.Add64(1)
	}
	b.bar.Describe(desc)
}

// clear wipes the bar off the line, before other output goes to the
// terminal; the next update draws it again.
func (b *auditBar) clear() {
	if b.bar != nil {
		_ = b.bar.Clear()
	}
}

// done removes the bar for good. Finish (with OptionClearOnFinish) wipes
// it and marks it finished, which also stops the spinner's own goroutine
// from drawing: Exit alone would let that goroutine draw once more, after
// the command has returned and other output has followed.
func (b *auditBar) done() {
	if b.bar != nil {
		_ = b.bar.Finish()
		_ = b.bar.Exit()
	}
}
