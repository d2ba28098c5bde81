package controlplane

import (
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

func TestCompleteDefaults(t *testing.T) {
	low := abacus.Namespace{
		Name: "n", Type: abacus.Eventual, Cardinality: abacus.Low,
		TTL: 24 * time.Hour, AcceptLimit: 5 * time.Second,
		Partition:        abacus.TimePartition{BucketsPerID: 4, BucketWidth: 600 * time.Second, SliceWidth: 86400 * time.Second},
		Queue:            abacus.QueueConfig{NumQueues: 8, Coalesce: time.Second, CapacityBytes: 16 << 20},
		RollupBatchCount: 32,
		Retention:        abacus.Retention{CloseAfter: 6 * 24 * time.Hour, DeleteAfter: 7 * 24 * time.Hour},
		Storage: abacus.Storage{
			Cache:  abacus.PhysicalStorage{Type: "MEMORY"},
			Rollup: abacus.PhysicalStorage{Type: "EMBEDDED"},
			Events: abacus.PhysicalStorage{Type: "EMBEDDED"},
		},
	}
	high := low
	high.Cardinality = abacus.High
	high.Partition = abacus.TimePartition{BucketsPerID: 1, BucketWidth: time.Hour, SliceWidth: 86400 * time.Second}
	high.Queue = abacus.QueueConfig{NumQueues: 32, Coalesce: 2 * time.Second, CapacityBytes: 16 << 20}
	high.RollupBatchCount = 256

	tests := []struct {
		name string
		in   abacus.Namespace
		want abacus.Namespace
	}{
		{"unspecified is LOW", abacus.Namespace{Name: "n", Type: abacus.Eventual}, low},
		{"LOW", abacus.Namespace{Name: "n", Type: abacus.Eventual, Cardinality: abacus.Low}, low},
		{"HIGH", abacus.Namespace{Name: "n", Type: abacus.Eventual, Cardinality: abacus.High}, high},
		{"given values are kept", func() abacus.Namespace {
			ns := abacus.Namespace{Name: "n", Type: abacus.Eventual, Cardinality: abacus.High}
			ns.Partition.BucketsPerID = 7
			ns.Queue.Coalesce = 30 * time.Millisecond
			ns.Storage.Events.Dataset = "d"
			return ns
		}(), func() abacus.Namespace {
			ns := high
			ns.Partition.BucketsPerID = 7
			ns.Queue.Coalesce = 30 * time.Millisecond
			ns.Storage.Events.Dataset = "d"
			return ns
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in
			if err := Complete(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Complete:\n got %+v\nwant %+v", got, tt.want)
			}
			again := got
			if err := Complete(&again); err != nil || again != got {
				t.Errorf("Complete is not idempotent: %v\n%+v", err, again)
			}
		})
	}
}

// TestDefaultsAreValid checks that the defaults of each cardinality pass
// validation, for each counter type.
func TestDefaultsAreValid(t *testing.T) {
	for _, c := range []abacus.Cardinality{abacus.CardinalityUnspecified, abacus.Low, abacus.High} {
		for _, typ := range []abacus.CounterType{abacus.BestEffort, abacus.Eventual, abacus.Accurate} {
			ns := Defaults(c)
			ns.Name, ns.Type = "n", typ
			if err := Complete(&ns); err != nil {
				t.Errorf("%v %v: %v", c, typ, err)
			}
		}
	}
}

// TestConvergence checks the promise the defaults are chosen for: a count
// converges within accept_limit + skew margin + coalesce of the last write,
// a few seconds.
func TestConvergence(t *testing.T) {
	for _, c := range []abacus.Cardinality{abacus.Low, abacus.High} {
		d := Defaults(c)
		if conv := d.AcceptLimit + abacus.SkewMargin + d.Queue.Coalesce; conv > 10*time.Second {
			t.Errorf("%v: default convergence time %v", c, conv)
		}
	}
}
