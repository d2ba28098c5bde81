package controlplane

import (
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

func TestCheckUpdate(t *testing.T) {
	created := time.Date(2024, 11, 13, 0, 0, 0, 0, time.UTC)
	old := func() abacus.Namespace {
		ns := abacus.Namespace{
			ID: 7, Name: "views", Type: abacus.Eventual, Cardinality: abacus.High, Created: created,
			Partition:   abacus.TimePartition{BucketsPerID: 2},
			AcceptLimit: 10 * time.Second,
			Storage:     abacus.Storage{Events: abacus.PhysicalStorage{Cluster: "local", Dataset: "views"}},
		}
		if err := Complete(&ns); err != nil {
			panic(err)
		}
		return ns
	}
	tests := []struct {
		name   string
		update abacus.Namespace
		want   string                      // the problems, or "" if the update is allowed
		check  func(abacus.Namespace) bool // the completed update, if allowed
	}{
		{"only what changes", abacus.Namespace{TTL: time.Hour}, "",
			func(ns abacus.Namespace) bool {
				o := old()
				o.TTL = time.Hour
				return ns == o
			}},
		{"the same namespace", old(), "", func(ns abacus.Namespace) bool { return ns == old() }},
		{"mutable settings", abacus.Namespace{
			TTL: time.Minute, AcceptLimit: time.Second,
			Queue:            abacus.QueueConfig{NumQueues: 3, Coalesce: 5 * time.Second, CapacityBytes: 4096},
			RollupBatchCount: 9, Retention: abacus.Retention{CloseAfter: time.Hour, DeleteAfter: 2 * time.Hour},
			Description: "new", Cardinality: abacus.Low,
		}, "", func(ns abacus.Namespace) bool {
			return ns.Queue.NumQueues == 3 && ns.RollupBatchCount == 9 && ns.Cardinality == abacus.Low &&
				ns.AcceptLimit == time.Second && ns.Description == "new" &&
				ns.Partition == old().Partition && ns.ID == 7 && ns.Created == created
		}},
		{"settings left out keep their values", abacus.Namespace{Description: "d"}, "",
			func(ns abacus.Namespace) bool {
				o := old()
				o.Description = "d"
				return ns == o
			}},
		{"accept_limit shrinks", abacus.Namespace{AcceptLimit: 9 * time.Second}, "",
			func(ns abacus.Namespace) bool { return ns.AcceptLimit == 9*time.Second }},
		{"invalid new value", abacus.Namespace{Retention: abacus.Retention{DeleteAfter: time.Hour}},
			`retention.delete_after: must be at least close_after (144h), got 1h`, nil},
		{"accept_limit grows", abacus.Namespace{AcceptLimit: 11 * time.Second},
			`accept_limit: may only shrink, from 10s to 11s: a larger limit would accept events behind existing rollup checkpoints, which would never be counted`, nil},
		{"type", abacus.Namespace{Type: abacus.Accurate},
			`counter_type: cannot change (from EVENTUAL to ACCURATE); create a new namespace instead`, nil},
		{"name", abacus.Namespace{Name: "other"}, `name: cannot change (from "views" to "other")`, nil},
		{"time partition", abacus.Namespace{Partition: abacus.TimePartition{BucketsPerID: 3, BucketWidth: time.Minute, SliceWidth: time.Hour}},
			`time_partition.buckets_per_id: cannot change (from 2 to 3); ` +
				`time_partition.seconds_per_bucket: cannot change (from 3600 to 60); ` +
				`time_partition.seconds_per_slice: cannot change (from 86400 to 3600)`, nil},
		{"storage", abacus.Namespace{Storage: abacus.Storage{Events: abacus.PhysicalStorage{Dataset: "views2"}}},
			`storage.event_storage: cannot change (from {type: "EMBEDDED", cluster: "local", dataset: "views"} to {type: "EMBEDDED", cluster: "local", dataset: "views2"})`, nil},
		{"invalid and immutable at once", abacus.Namespace{Type: abacus.BestEffort, RollupBatchCount: -1},
			`rollup_batch_count: must be between 1 and 10000, got -1; counter_type: cannot change (from EVENTUAL to BEST_EFFORT); create a new namespace instead`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := old()
			u := tt.update
			before := u
			err := CheckUpdate(&o, &u)
			if o != old() {
				t.Errorf("CheckUpdate changed old")
			}
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !tt.check(u) {
					t.Errorf("unexpected update %+v", u)
				}
				return
			}
			if abacus.ErrorCode(err) != abacus.InvalidArgument {
				t.Fatalf("err = %v (code %v), want invalid_argument", err, abacus.ErrorCode(err))
			}
			if got, want := abacus.ErrorMessage(err), `namespace "views": `+tt.want; got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			if u != before {
				t.Errorf("CheckUpdate changed updated on error")
			}
		})
	}
}
