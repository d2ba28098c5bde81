package cli

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

func TestCheckResumable(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	row := exportRow{Namespace: "views", Counter: "c", EventID: "e", Time: t0, Delta: 1}
	ts := timestamppb.New
	tests := []struct {
		name string
		req  *abacusv1.ExportEventsRequest
		want string // a part of the error, or "" for none
	}{
		{"the same export", &abacusv1.ExportEventsRequest{Namespace: "views", CounterName: "c"}, ""},
		{"the whole namespace", &abacusv1.ExportEventsRequest{Namespace: "views"}, ""},
		{"a range holding the row", &abacusv1.ExportEventsRequest{Namespace: "views", StartTime: ts(t0), EndTime: ts(t0.Add(time.Nanosecond))}, ""},
		{"another namespace", &abacusv1.ExportEventsRequest{Namespace: "clicks"}, `namespace "views", not "clicks"`},
		{"another counter", &abacusv1.ExportEventsRequest{Namespace: "views", CounterName: "d"}, `counter "c", not "d"`},
		{"--from after the row", &abacusv1.ExportEventsRequest{Namespace: "views", StartTime: ts(t0.Add(time.Second))}, "before --from"},
		{"--to at the row", &abacusv1.ExportEventsRequest{Namespace: "views", EndTime: ts(t0)}, "not before --to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkResumable(tt.req, row)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}
