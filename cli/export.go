package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// Export formats, the values of export's -o.
const (
	formatJSONL   = "jsonl"
	formatCSV     = "csv"
	formatParquet = "parquet"
)

func (a *app) exportCmd() *cobra.Command {
	var (
		rng                timeRange
		format, out        string
		resume, noProgress bool
	)
	cmd := &cobra.Command{
		Use:   "export NAMESPACE [COUNTER] --out FILE [-o jsonl|csv|parquet] [--from T] [--to T] [--resume]",
		Short: "Export the events of a counter, or of a whole namespace, to a file",
		Long: `Export the events of COUNTER, or of every counter of NAMESPACE (by counter
name, then in the order rollups apply them), to FILE as JSON Lines, CSV or
Parquet. --from and --to bound the events to [from, to) by generation time.

Each row holds namespace, counter, event_id, generation_time (RFC 3339 in
UTC, with as many digits of nanoseconds as it needs), delta and clear (a
clear has delta 0 and clear true). Rows are written in the order they
arrive, a chunk at a time, so an export of any size runs in little memory.
The CSV file starts with that header line.

Here -o is the file format, not the global text|json; its default comes
from the extension of FILE (.jsonl, .ndjson, .csv, .parquet). "--out -"
writes to stdout.

--resume continues an interrupted export of the same NAMESPACE, COUNTER and
range (a file whose last row is of another namespace or counter, or outside
--from/--to, is refused): it drops a last, partly written line of a JSONL or CSV file, reads the
last complete row, and asks for the events after it. The result equals, byte
for byte, the file a single run would have written. A Parquet file is
resumed by rewriting its rows into a new file and continuing there; that
needs a complete file (one the export closed, as it does on an error or
Ctrl-C): a Parquet file cut short by a crash has no footer and cannot be
read, and is refused. Without FILE, --resume starts a new export.

A stream broken by UNAVAILABLE, or by no chunk for --timeout, reconnects from
the last row written, up to --retries times in a row.

A progress bar on stderr (events, bytes, rate; with --from, --to and one
COUNTER, the position in the range and an ETA) is drawn when stderr is a
terminal, and not with --no-progress.`,
		Example: `  abacus export views home --from 2024-10-05T00:00:00Z --to 2024-10-06T00:00:00Z --out home.csv
  abacus export views --out views.parquet
  abacus export views --out views.jsonl --resume`,
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, to, err := rng.parse(cmd)
			if err != nil {
				return err
			}
			if out == "" {
				return usagef(cmd, "--out FILE is required (\"-\" for stdout)")
			}
			if format == "" {
				if format = formatOf(out); format == "" {
					return usagef(cmd, "-o jsonl, csv or parquet is required: the extension of %q does not tell", out)
				}
			}
			switch format {
			case formatJSONL, formatCSV, formatParquet:
			default:
				return usagef(cmd, "-o must be jsonl, csv or parquet, not %q", format)
			}
			if out == "-" && resume {
				return usagef(cmd, "--resume needs a file, not stdout")
			}
			req := &abacusv1.ExportEventsRequest{Namespace: args[0], StartTime: from, EndTime: to}
			if len(args) == 2 {
				req.CounterName = args[1]
			}
			return a.export(cmd.Context(), cmd, req, format, out, resume, a.newBar(noProgress, from != nil && to != nil && req.CounterName != ""))
		},
	}
	rng.register(cmd)
	// Named "output" like the global flag, so that it shadows it (and its
	// -o) in this command rather than clash with it.
	cmd.Flags().StringVarP(&format, "output", "o", "", "file format: jsonl, csv or parquet (default: from the extension of --out)")
	cmd.Flags().StringVar(&out, "out", "", "file to write (\"-\": stdout)")
	cmd.Flags().BoolVar(&resume, "resume", false, "continue an interrupted export of FILE after its last complete row")
	cmd.Flags().BoolVar(&noProgress, "no-progress", false, "no progress bar on stderr")
	return cmd
}

// formatOf is the export format that the extension of name implies, or "".
func formatOf(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jsonl", ".ndjson":
		return formatJSONL
	case ".csv":
		return formatCSV
	case ".parquet":
		return formatParquet
	}
	return ""
}

// export runs the export req into out, reconnecting after a retryable
// error from the last row written.
func (a *app) export(ctx context.Context, cmd *cobra.Command, req *abacusv1.ExportEventsRequest, format, out string, resume bool, bar *auditBar) (err error) {
	c, err := a.client()
	if err != nil {
		return err
	}
	check := func(last exportRow) error { return checkResumable(req, last) }
	sk, last, err := openSink(format, out, resume, a.stdout, check)
	if err != nil {
		if resume {
			err = fmt.Errorf("--resume: %s: %w", out, err)
		}
		return &usageError{cmd: cmd, err: err}
	}
	defer func() {
		bar.done()
		if cerr := sk.close(); err == nil {
			err = cerr
		}
	}()
	if last != nil {
		req.ResumeAfter = last.event()
	}
	x := &exporter{a: a, req: req, sink: sk, bar: bar, start: time.Now()}
	backoff := a.backoff
	for failures := 0; ; {
		before := x.events
		err := x.stream(ctx, c.Unary())
		if err == nil {
			return nil
		}
		if x.events > before {
			failures, backoff = 0, a.backoff
		}
		if failures >= a.retries || !retryable(ctx, err) {
			return err
		}
		failures++
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return err
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// checkResumable checks that the last row of a file being resumed belongs
// to the export asked for.
func checkResumable(req *abacusv1.ExportEventsRequest, last exportRow) error {
	if last.Namespace != req.GetNamespace() {
		return fmt.Errorf("its last row is of namespace %q, not %q", last.Namespace, req.GetNamespace())
	}
	if req.GetCounterName() != "" && last.Counter != req.GetCounterName() {
		return fmt.Errorf("its last row is of counter %q, not %q", last.Counter, req.GetCounterName())
	}
	// A range that does not hold the last row is not the range the file
	// was written for (resuming would skip or repeat rows). One that holds
	// it may still differ: the file does not record its range.
	if st := req.GetStartTime(); st != nil && last.Time.Before(st.AsTime()) {
		return fmt.Errorf("its last row, at %s, is before --from %s: it was written for another range",
			last.Time.Format(time.RFC3339Nano), st.AsTime().Format(time.RFC3339Nano))
	}
	if et := req.GetEndTime(); et != nil && !last.Time.Before(et.AsTime()) {
		return fmt.Errorf("its last row, at %s, is not before --to %s: it was written for another range",
			last.Time.Format(time.RFC3339Nano), et.AsTime().Format(time.RFC3339Nano))
	}
	return nil
}

// exporter is one export in progress: what it has written so far.
type exporter struct {
	a     *app
	req   *abacusv1.ExportEventsRequest
	sink  sink
	bar   *auditBar
	start time.Time

	events int64
	noted  bool
}

// stream runs one ExportEvents stream to its end, writing each chunk as it
// arrives and moving req.ResumeAfter past it, so that a new stream after an
// error continues where this one stopped. --timeout bounds the wait for each
// chunk, not the whole export.
func (x *exporter) stream(ctx context.Context, c abacusv1.CounterServiceClient) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var idle atomic.Bool
	timer := time.AfterFunc(x.a.timeout, func() { idle.Store(true); cancel() })
	defer timer.Stop()
	stalled := func(err error) error {
		if idle.Load() && ctx.Err() == nil {
			return status.Errorf(codes.DeadlineExceeded, "no events from the export for %v (--timeout)", x.a.timeout)
		}
		return err
	}
	st, err := c.ExportEvents(sctx, x.req)
	if err != nil {
		return stalled(err)
	}
	rows := make([]exportRow, 0, 1024)
	for {
		timer.Reset(x.a.timeout)
		msg, err := st.Recv()
		timer.Stop()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return stalled(err)
		}
		if kept := msg.GetRetainedFrom(); !x.noted && reachesBefore(x.req.GetStartTime(), kept) {
			x.bar.clear()
			fmt.Fprintln(x.a.stderr, retainedNote(kept, "they are not in the export"))
			x.noted = true
		}
		if len(msg.Events) == 0 {
			continue
		}
		rows = rows[:0]
		for _, e := range msg.Events {
			rows = append(rows, rowOf(x.req, e))
		}
		if err := x.sink.write(rows); err != nil {
			return err
		}
		last := msg.Events[len(msg.Events)-1]
		x.req.ResumeAfter = rows[len(rows)-1].event()
		x.events += int64(len(rows))
		x.progress(last.GetGenerationTime())
	}
}

// progress shows the events and bytes written so far, their rate, and
// where in [from, to) the last event lies.
func (x *exporter) progress(at *timestamppb.Timestamp) {
	rate := float64(x.events) / max(time.Since(x.start).Seconds(), 1e-3)
	desc := fmt.Sprintf("%d events  %s  %.0f events/s", x.events, byteSize(x.sink.size()), rate)
	frac := 0.0
	if from, to := x.req.GetStartTime(), x.req.GetEndTime(); from != nil && to != nil {
		span := to.AsTime().Sub(from.AsTime())
		frac = float64(at.AsTime().Sub(from.AsTime())) / float64(span)
	}
	x.bar.update(desc, frac)
}

// byteSize prints n bytes in binary units.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
