package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// listPageSize is the page size the audit commands ask for: the server's
// default (100) costs a round trip per hundred rows, its maximum (10000)
// makes each page of text output wait long before it shows.
const listPageSize = 1000

// read makes one call of the audit API, all of which may be repeated: each
// attempt is bounded by --timeout, and UNAVAILABLE and DEADLINE_EXCEEDED
// are retried up to --retries times with the CLI's backoff. (A Recount
// with repair may be repeated too: the repair is fenced on the server and
// a second attempt finds the checkpoint already right.)
func read[T any](ctx context.Context, a *app, fn func(context.Context, abacusv1.CounterServiceClient) (T, error)) (T, error) {
	var zero T
	c, err := a.client()
	if err != nil {
		return zero, err
	}
	u := c.Unary()
	backoff := a.backoff
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, a.timeout)
		res, err := fn(actx, u)
		cancel()
		if err == nil || attempt >= a.retries || !retryable(ctx, err) {
			return res, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return zero, err
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// retryable reports whether a failed attempt may be tried again: the
// server was unreachable or slow, and the caller has not given up.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// timeRange is the --from and --to flags of the audit commands.
type timeRange struct {
	from, to string
}

func (r *timeRange) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.from, "from", "", "first generation time included, RFC 3339 (default: the first event)")
	cmd.Flags().StringVar(&r.to, "to", "", "generation time the range ends before, RFC 3339 (default: through the last event)")
}

// parse returns the bounds of the half-open range [from, to); nil ones are
// unbounded.
func (r timeRange) parse(cmd *cobra.Command) (from, to *timestamppb.Timestamp, err error) {
	parse := func(flag, v string) (*timestamppb.Timestamp, error) {
		if v == "" {
			return nil, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, usagef(cmd, "--%s %q is not an RFC 3339 time such as 2024-10-05T14:48:00Z", flag, v)
		}
		return timestamppb.New(t), nil
	}
	if from, err = parse("from", r.from); err != nil {
		return nil, nil, err
	}
	if to, err = parse("to", r.to); err != nil {
		return nil, nil, err
	}
	if from != nil && to != nil && !from.AsTime().Before(to.AsTime()) {
		return nil, nil, usagef(cmd, "--from %s is not before --to %s", r.from, r.to)
	}
	return from, to, nil
}

// limitFlag registers --limit, the most rows a listing prints.
func limitFlag(cmd *cobra.Command, limit *int, what string) {
	cmd.Flags().IntVar(limit, "limit", 0, "print at most this many "+what+" (default 0: all)")
}

func checkLimit(cmd *cobra.Command, limit int) error {
	if limit < 0 {
		return usagef(cmd, "--limit must be 0 (all) or more, not %d", limit)
	}
	return nil
}

// pageSize is the page to ask for when want rows remain (0: all of them).
func pageSize(want int) int32 {
	if want > 0 && want < listPageSize {
		return int32(want)
	}
	return listPageSize
}

func (a *app) eventsCmd() *cobra.Command {
	var (
		rng         timeRange
		newestFirst bool
		limit       int
	)
	cmd := &cobra.Command{
		Use:   "events NAMESPACE COUNTER",
		Short: "List a counter's events",
		Long: `List the events of a counter, in the order rollups apply them (by generation
time; at one time deltas before clears, then by event id), or newest first
with --newest-first. Each line shows the event's generation time, its event
id (the idempotency token of the write) and its delta, or "clear".

--from and --to bound the events to [from, to) by generation time. Events
that retention deleted are absent; when it has deleted some, a note on
stderr says from when on events are kept (retained_from).

With -o json, each page of events is printed as one ListEventsResponse on a
line of its own (the page --limit cuts short has no next_page_token).
BEST_EFFORT namespaces keep no events: they answer failed_precondition.`,
		Example: `  abacus events views home
  abacus events views home --from 2024-10-05T00:00:00Z --to 2024-10-06T00:00:00Z
  abacus events views home --newest-first --limit 10`,
		Args: usageArgs(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, to, err := rng.parse(cmd)
			if err != nil {
				return err
			}
			if err := checkLimit(cmd, limit); err != nil {
				return err
			}
			req := &abacusv1.ListEventsRequest{Namespace: args[0], CounterName: args[1], StartTime: from, EndTime: to,
				Order: abacusv1.EventOrder_OLDEST_FIRST}
			if newestFirst {
				req.Order = abacusv1.EventOrder_NEWEST_FIRST
			}
			return a.listEvents(cmd.Context(), req, limit)
		},
	}
	rng.register(cmd)
	cmd.Flags().BoolVar(&newestFirst, "newest-first", false, "list the newest events first")
	limitFlag(cmd, &limit, "events")
	return cmd
}

// listEvents pages through ListEvents until limit events (0: all) are
// printed, printing each page as it arrives.
func (a *app) listEvents(ctx context.Context, req *abacusv1.ListEventsRequest, limit int) error {
	printed := 0
	noted := false
	tab := newPagedTable(a.stdout, "TIME", "EVENT_ID", "DELTA")
	for {
		req.PageSize = pageSize(limit - printed)
		page, err := read(ctx, a, func(ctx context.Context, c abacusv1.CounterServiceClient) (*abacusv1.ListEventsResponse, error) {
			return c.ListEvents(ctx, req)
		})
		if err != nil {
			return err
		}
		if limit > 0 && printed+len(page.Events) >= limit {
			page.Events = page.Events[:limit-printed]
			page.NextPageToken = ""
		}
		printed += len(page.Events)
		if !noted && a.output != "json" && reachesBefore(req.GetStartTime(), page.RetainedFrom) {
			fmt.Fprintln(a.stderr, retainedNote(page.RetainedFrom, "their counts are kept in the checkpoints"))
			noted = true
		}
		if err := a.print(page, func(io.Writer) error { return writeEvents(tab, page.Events) }); err != nil {
			return err
		}
		if page.NextPageToken == "" {
			return nil
		}
		req.PageToken = page.NextPageToken
	}
}

// reachesBefore reports whether a range that starts at from (nil: the
// first event) may miss events that retention deleted before kept (nil:
// none were).
func reachesBefore(from, kept *timestamppb.Timestamp) bool {
	return kept != nil && (from == nil || from.AsTime().Before(kept.AsTime()))
}

// retainedNote tells that events before kept may have been deleted.
func retainedNote(kept *timestamppb.Timestamp, consequence string) string {
	return fmt.Sprintf("abacus: note: retention keeps the events from %s on (retained_from); earlier ones may have been deleted: %s",
		formatTimestamp(kept), consequence)
}

// writeEvents writes a page of events as rows of the table tab. Times
// have a fixed width (all nine digits of nanoseconds) so that they line up.
func writeEvents(tab *pagedTable, events []*abacusv1.Event) error {
	for _, e := range events {
		tab.add(e.GetGenerationTime().AsTime().UTC().Format(fixedNano), e.GetEventId(), eventDelta(e))
	}
	return tab.flush()
}

// fixedNano is RFC 3339 with all nine digits of nanoseconds: --from and
// --to accept it back.
const fixedNano = "2006-01-02T15:04:05.000000000Z07:00"

// eventDelta is an event's delta, or "clear".
func eventDelta(e *abacusv1.Event) string {
	if e.GetClear() {
		return "clear"
	}
	return fmt.Sprint(e.GetDelta())
}

func (a *app) countersCmd() *cobra.Command {
	var (
		prefix string
		limit  int
	)
	cmd := &cobra.Command{
		Use:   "counters NAMESPACE",
		Short: "List the counters of a namespace, with their checkpoints",
		Long: `List the counters of a namespace in name order, optionally only those whose
name starts with --prefix, with each one's checkpoint (the count and the time
the last rollup covers events up to) and the time of its latest write. "-"
stands for a counter never rolled up, or never written.

With -o json, each page of counters is printed as one ListCountersResponse
on a line of its own (the page --limit cuts short has no next_page_token).`,
		Example: `  abacus counters views
  abacus counters views --prefix home/ --limit 20`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkLimit(cmd, limit); err != nil {
				return err
			}
			req := &abacusv1.ListCountersRequest{Namespace: args[0], Prefix: prefix}
			printed := 0
			tab := newPagedTable(a.stdout, "COUNTER", "CHECKPOINT_COUNT", "CHECKPOINT_TIME", "LAST_WRITE_TIME")
			return a.walkCounters(cmd.Context(), req, func(page *abacusv1.ListCountersResponse) (bool, error) {
				more := page.NextPageToken != ""
				if limit > 0 && printed+len(page.Counters) >= limit {
					page.Counters = page.Counters[:limit-printed]
					page.NextPageToken, more = "", false
				}
				printed += len(page.Counters)
				err := a.print(page, func(io.Writer) error {
					for _, c := range page.Counters {
						tab.add(c.GetCounterName(), fmt.Sprint(c.GetCheckpointCount()),
							formatTimestamp(c.GetCheckpointTime()), formatTimestamp(c.GetLastWriteTime()))
					}
					return tab.flush()
				})
				return more, err
			})
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "list only the counters whose names start with this")
	limitFlag(cmd, &limit, "counters")
	return cmd
}

// walkCounters pages through ListCounters, calling fn with each page until
// the last one or until fn returns false or an error.
func (a *app) walkCounters(ctx context.Context, req *abacusv1.ListCountersRequest, fn func(*abacusv1.ListCountersResponse) (bool, error)) error {
	req.PageSize = listPageSize
	for {
		page, err := read(ctx, a, func(ctx context.Context, c abacusv1.CounterServiceClient) (*abacusv1.ListCountersResponse, error) {
			return c.ListCounters(ctx, req)
		})
		if err != nil {
			return err
		}
		token := page.NextPageToken
		more, err := fn(page)
		if err != nil || !more || token == "" {
			return err
		}
		req.PageToken = token
	}
}

// printWithCounter prints m, a reply that does not name its counter
// (RecountResponse), as one compact line of protojson that starts with
// "counter_name".
func (a *app) printWithCounter(counter string, m proto.Message) error {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return err
	}
	name, err := json.Marshal(counter)
	if err != nil {
		return err
	}
	var doc bytes.Buffer
	if err := json.Compact(&doc, b); err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString(`{"counter_name":`)
	buf.Write(name)
	if rest := doc.Bytes()[1:]; len(rest) > 1 {
		buf.WriteByte(',')
		buf.Write(rest)
	} else {
		buf.WriteByte('}')
	}
	buf.WriteByte('\n')
	_, err = a.stdout.Write(buf.Bytes())
	return err
}

// isTerminal reports whether w is a terminal, where progress bars belong.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// pagedTable writes a table with a header a page of rows at a time, aligned
// as tabwriter aligns columns (two spaces between them), without holding
// every row until the last: each page is aligned to the widest cells seen
// so far, so that columns never shift left from one page to the next.
type pagedTable struct {
	w       io.Writer
	header  []string
	widths  []int
	rows    [][]string
	started bool
}

func newPagedTable(w io.Writer, header ...string) *pagedTable {
	return &pagedTable{w: w, header: header, widths: make([]int, len(header))}
}

// add adds a row to the current page.
func (t *pagedTable) add(cells ...string) { t.rows = append(t.rows, cells) }

// flush writes the current page, after the header if it is the first.
func (t *pagedTable) flush() error {
	rows := t.rows
	if !t.started {
		rows = append([][]string{t.header}, rows...)
		t.started = true
	}
	for _, r := range rows {
		for i, c := range r {
			t.widths[i] = max(t.widths[i], utf8.RuneCountInString(c))
		}
	}
	var b bytes.Buffer
	for _, r := range rows {
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", t.widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		b.WriteByte('\n')
	}
	t.rows = t.rows[:0]
	_, err := t.w.Write(b.Bytes())
	return err
}
