package cli

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// jsonOptions gives scripts every field, zero or not, under the names of the
// .proto file, which are also the names the HTTP/JSON API and namespace files
// use.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// print writes m as one line of JSON with -o json, and calls text otherwise.
func (a *app) print(m proto.Message, text func(io.Writer) error) error {
	if a.output != "json" {
		return text(a.stdout)
	}
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return err
	}
	// protojson varies its whitespace on purpose so that nobody depends on
	// it; compacting gives scripts and tests a stable byte stream, and one
	// document per line.
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = a.stdout.Write(buf.Bytes())
	return err
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// formatTimestamp prints a timestamp so that --time accepts it back.
func formatTimestamp(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return formatTime(ts.AsTime())
}

// formatDuration prints d as Go does but without trailing zero units ("24h",
// not "24h0m0s"), a form the duration flags accept back.
func formatDuration(d *durationpb.Duration) string {
	if d == nil {
		return "-"
	}
	s := d.AsDuration().String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

func counterTypeText(t abacusv1.CounterType) string {
	if t == abacusv1.CounterType_COUNTER_TYPE_UNSPECIFIED {
		return "-"
	}
	return t.String()
}

func cardinalityText(c abacusv1.Cardinality) string {
	if c == abacusv1.Cardinality_CARDINALITY_UNSPECIFIED {
		return "-"
	}
	return c.String()
}

func storageText(s *abacusv1.PhysicalStorage) string {
	if s == nil {
		return "-"
	}
	var b strings.Builder
	b.WriteString(cmp.Or(s.GetType(), "-"))
	if s.GetCluster() != "" {
		fmt.Fprintf(&b, " cluster=%s", s.GetCluster())
	}
	if s.GetDataset() != "" {
		fmt.Fprintf(&b, " dataset=%s", s.GetDataset())
	}
	return b.String()
}

// writeNamespaceTable writes namespaces as an aligned table, one per line.
func writeNamespaceTable(w io.Writer, list []*abacusv1.Namespace) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tCARDINALITY\tACCEPT_LIMIT\tTTL\tDESCRIPTION")
	for _, ns := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ns.GetName(), counterTypeText(ns.GetCounterType()),
			cardinalityText(ns.GetCounterCardinality()), formatDuration(ns.GetAcceptLimit()),
			formatDuration(ns.GetTtl()), oneLine(ns.GetDescription()))
	}
	return tw.Flush()
}

// writeNamespace writes every setting of ns, one "field: value" line each.
// Fields are named as in the .proto file (nested ones with a dot) so that
// what a user reads here is what they write in a namespace file.
func writeNamespace(w io.Writer, ns *abacusv1.Namespace) error {
	tp, qc, ret, st := ns.GetTimePartition(), ns.GetQueueConfig(), ns.GetRetention(), ns.GetStorage()
	rows := [][2]string{
		{"name", ns.GetName()},
		{"description", cmp.Or(oneLine(ns.GetDescription()), "-")},
		{"counter_type", counterTypeText(ns.GetCounterType())},
		{"counter_cardinality", cardinalityText(ns.GetCounterCardinality())},
		{"ttl", formatDuration(ns.GetTtl())},
		{"accept_limit", formatDuration(ns.GetAcceptLimit())},
		{"time_partition.buckets_per_id", fmt.Sprint(tp.GetBucketsPerId())},
		{"time_partition.seconds_per_bucket", fmt.Sprint(tp.GetSecondsPerBucket())},
		{"time_partition.seconds_per_slice", fmt.Sprint(tp.GetSecondsPerSlice())},
		{"queue_config.num_queues", fmt.Sprint(qc.GetNumQueues())},
		{"queue_config.coalesce_ms", fmt.Sprint(qc.GetCoalesceMs())},
		{"queue_config.capacity_bytes", fmt.Sprint(qc.GetCapacityBytes())},
		{"rollup_batch_count", fmt.Sprint(ns.GetRollupBatchCount())},
		{"retention.close_after", formatDuration(ret.GetCloseAfter())},
		{"retention.delete_after", formatDuration(ret.GetDeleteAfter())},
		{"storage.cache", storageText(st.GetCache())},
		{"storage.counter_rollup", storageText(st.GetCounterRollup())},
		{"storage.event_storage", storageText(st.GetEventStorage())},
		{"rate_limit", rateLimitText(ns.GetRateLimit())},
		{"create_time", formatTimestamp(ns.GetCreateTime())},
		{"update_time", formatTimestamp(ns.GetUpdateTime())},
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// rateLimitText shows a rate limit as the namespace file writes it, "-"
// for none.
func rateLimitText(r *abacusv1.RateLimit) string {
	if r.GetRequestsPerSecond() == 0 && r.GetIncrementsPerSecond() == 0 {
		return "-"
	}
	return fmt.Sprintf("{requests_per_second: %g, increments_per_second: %g, burst: %d}",
		r.GetRequestsPerSecond(), r.GetIncrementsPerSecond(), r.GetBurst())
}

// oneLine keeps a free-text field from breaking the line-per-record layout.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
