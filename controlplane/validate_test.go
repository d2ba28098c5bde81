package controlplane

import (
	"strings"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

// valid returns a complete, valid namespace.
func valid() abacus.Namespace {
	ns := abacus.Namespace{Name: "n", Type: abacus.Eventual}
	if err := Complete(&ns); err != nil {
		panic(err)
	}
	return ns
}

// TestValidate checks each rule: the namespace valid() returns, changed by
// edit, must give exactly the problems in want (none if want is empty).
func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*abacus.Namespace)
		want string
	}{
		{"valid", func(*abacus.Namespace) {}, ""},

		{"name empty", func(ns *abacus.Namespace) { ns.Name = "" },
			`name: is required; must be 1 to 128 characters, each a letter (A-Z, a-z), a digit (0-9), '_', '.' or '-'`},
		{"name all allowed", func(ns *abacus.Namespace) { ns.Name = "AZaz09_.-" }, ""},
		{"name 128", func(ns *abacus.Namespace) { ns.Name = strings.Repeat("a", 128) }, ""},
		{"name 129", func(ns *abacus.Namespace) { ns.Name = strings.Repeat("a", 129) },
			`name: must be 1 to 128 characters, each a letter (A-Z, a-z), a digit (0-9), '_', '.' or '-'; got 129 bytes`},
		{"name slash", func(ns *abacus.Namespace) { ns.Name = "a/b" },
			`name: must be 1 to 128 characters, each a letter (A-Z, a-z), a digit (0-9), '_', '.' or '-'; got "a/b"`},
		{"name unicode", func(ns *abacus.Namespace) { ns.Name = "é" },
			`name: must be 1 to 128 characters, each a letter (A-Z, a-z), a digit (0-9), '_', '.' or '-'; got "é"`},

		{"type unspecified", func(ns *abacus.Namespace) { ns.Type = 0 },
			`counter_type: is required: BEST_EFFORT, EVENTUAL or ACCURATE`},
		{"type unknown", func(ns *abacus.Namespace) { ns.Type = 9 },
			`counter_type: unknown counter type 9; want BEST_EFFORT, EVENTUAL or ACCURATE`},
		{"cardinality unknown", func(ns *abacus.Namespace) { ns.Cardinality = 3 },
			`counter_cardinality: unknown cardinality 3; want LOW or HIGH`},

		{"ttl negative", func(ns *abacus.Namespace) { ns.TTL = -time.Second }, `ttl: must be positive, got -1s`},
		{"ttl 1ns", func(ns *abacus.Namespace) { ns.TTL = 1 }, ""},

		{"accept_limit 1ms", func(ns *abacus.Namespace) { ns.AcceptLimit = time.Millisecond }, ""},
		{"accept_limit 1h", func(ns *abacus.Namespace) { ns.AcceptLimit = time.Hour }, ""},
		{"accept_limit too small", func(ns *abacus.Namespace) { ns.AcceptLimit = time.Microsecond },
			`accept_limit: must be between 1ms and 1h, got 1µs`},
		{"accept_limit too large", func(ns *abacus.Namespace) { ns.AcceptLimit = 2 * time.Hour },
			`accept_limit: must be between 1ms and 1h, got 2h`},

		{"buckets_per_id 0", func(ns *abacus.Namespace) { ns.Partition.BucketsPerID = -1 },
			`time_partition.buckets_per_id: must be between 1 and 1024, got -1`},
		{"buckets_per_id 1024", func(ns *abacus.Namespace) { ns.Partition.BucketsPerID = 1024 }, ""},
		{"buckets_per_id 1025", func(ns *abacus.Namespace) { ns.Partition.BucketsPerID = 1025 },
			`time_partition.buckets_per_id: must be between 1 and 1024, got 1025`},

		{"bucket 1s", func(ns *abacus.Namespace) { ns.Partition.BucketWidth = time.Second }, ""},
		{"bucket negative", func(ns *abacus.Namespace) { ns.Partition.BucketWidth = -time.Second },
			`time_partition.seconds_per_bucket: must be at least 1, got -1`},
		{"bucket fractional", func(ns *abacus.Namespace) { ns.Partition.BucketWidth = 1500 * time.Millisecond },
			`time_partition.seconds_per_bucket: must be a whole number of seconds, got 1.5s`},
		{"slice not a multiple", func(ns *abacus.Namespace) {
			ns.Partition.BucketWidth = 60 * time.Second
			ns.Partition.SliceWidth = 100 * time.Second
		}, `time_partition.seconds_per_slice: must be a multiple of seconds_per_bucket (60), got 100`},
		{"slice equals bucket", func(ns *abacus.Namespace) { ns.Partition.SliceWidth = ns.Partition.BucketWidth }, ""},
		{"slice too wide", func(ns *abacus.Namespace) { ns.Partition.SliceWidth = 400 * 24 * time.Hour },
			`time_partition.seconds_per_slice: must be at most 31622400 (366 days), got 34560000`},

		{"num_queues 1024", func(ns *abacus.Namespace) { ns.Queue.NumQueues = 1024 }, ""},
		{"num_queues too many", func(ns *abacus.Namespace) { ns.Queue.NumQueues = 1025 },
			`queue_config.num_queues: must be between 1 and 1024, got 1025`},
		{"coalesce 1h", func(ns *abacus.Namespace) { ns.Queue.Coalesce = time.Hour }, ""},
		{"coalesce negative", func(ns *abacus.Namespace) { ns.Queue.Coalesce = -time.Millisecond },
			`queue_config.coalesce_ms: must be between 0 and 3600000 (1h), got -1`},
		{"coalesce too long", func(ns *abacus.Namespace) { ns.Queue.Coalesce = time.Hour + time.Millisecond },
			`queue_config.coalesce_ms: must be between 0 and 3600000 (1h), got 3600001`},
		{"coalesce fractional", func(ns *abacus.Namespace) { ns.Queue.Coalesce = 1500 * time.Microsecond },
			`queue_config.coalesce_ms: must be a whole number of milliseconds, got 1.5ms`},
		{"capacity 1024", func(ns *abacus.Namespace) { ns.Queue.CapacityBytes = 1024 }, ""},
		{"capacity too small", func(ns *abacus.Namespace) { ns.Queue.CapacityBytes = 1023 },
			`queue_config.capacity_bytes: must be at least 1024, got 1023`},
		{"batch 10000", func(ns *abacus.Namespace) { ns.RollupBatchCount = 10000 }, ""},
		{"batch too big", func(ns *abacus.Namespace) { ns.RollupBatchCount = 10001 },
			`rollup_batch_count: must be between 1 and 10000, got 10001`},
		{"batch negative", func(ns *abacus.Namespace) { ns.RollupBatchCount = -5 },
			`rollup_batch_count: must be between 1 and 10000, got -5`},

		{"close_after just enough", func(ns *abacus.Namespace) { ns.Retention.CloseAfter = 6*time.Second + 1 }, ""},
		{"close_after within accept window", func(ns *abacus.Namespace) { ns.Retention.CloseAfter = 6 * time.Second },
			`retention.close_after: must be greater than accept_limit + 1s skew margin (6s), got 6s`},
		{"close_after negative, accept_limit bad", func(ns *abacus.Namespace) {
			ns.AcceptLimit = 0 - time.Second
			ns.Retention.CloseAfter = -time.Second
		}, `accept_limit: must be between 1ms and 1h, got -1s; retention.close_after: must be positive, got -1s`},
		{"delete_after equal", func(ns *abacus.Namespace) { ns.Retention.DeleteAfter = ns.Retention.CloseAfter }, ""},
		{"delete_after before close", func(ns *abacus.Namespace) { ns.Retention.DeleteAfter = time.Hour },
			`retention.delete_after: must be at least close_after (144h), got 1h`},

		{"cache EVCACHE", func(ns *abacus.Namespace) { ns.Storage.Cache.Type = "EVCACHE" },
			`storage.cache.type: this node cannot serve "EVCACHE" (CACHE); it serves CACHE: MEMORY`},
		{"rollup CASSANDRA", func(ns *abacus.Namespace) { ns.Storage.Rollup.Type = "CASSANDRA" },
			`storage.counter_rollup.type: this node cannot serve "CASSANDRA" (COUNTER_ROLLUP): abacus has no "CASSANDRA" backend; it serves COUNTER_ROLLUP: EMBEDDED`},
		{"events lower case", func(ns *abacus.Namespace) { ns.Storage.Events.Type = "embedded" },
			`storage.event_storage.type: this node cannot serve "embedded" (EVENT_STORAGE): types are upper case: did you mean "EMBEDDED"?; it serves EVENT_STORAGE: EMBEDDED`},
		{"best effort ignores durable stores", func(ns *abacus.Namespace) {
			ns.Type = abacus.BestEffort
			ns.Storage.Rollup.Type = "CASSANDRA"
			ns.Storage.Events.Type = "WHATEVER"
		}, ""},
		{"best effort checks the cache", func(ns *abacus.Namespace) {
			ns.Type = abacus.BestEffort
			ns.Storage.Cache.Type = "EVCACHE"
		}, `storage.cache.type: this node cannot serve "EVCACHE" (CACHE); it serves CACHE: MEMORY`},
		{"invalid UTF-8", func(ns *abacus.Namespace) {
			ns.Description = "\xff"
			ns.Storage.Events.Dataset = "\xfe"
		}, `storage.event_storage.dataset: must be valid UTF-8; description: must be valid UTF-8`},

		{"all at once", func(ns *abacus.Namespace) {
			ns.AcceptLimit = 2 * time.Hour
			ns.Partition.BucketWidth = 60 * time.Second
			ns.Partition.SliceWidth = 100 * time.Second
			ns.Storage.Rollup.Type = "CASSANDRA"
		}, `accept_limit: must be between 1ms and 1h, got 2h; ` +
			`time_partition.seconds_per_slice: must be a multiple of seconds_per_bucket (60), got 100; ` +
			`storage.counter_rollup.type: this node cannot serve "CASSANDRA" (COUNTER_ROLLUP): abacus has no "CASSANDRA" backend; it serves COUNTER_ROLLUP: EMBEDDED`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := valid()
			tt.edit(&ns)
			before := ns
			err := Complete(&ns)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if abacus.ErrorCode(err) != abacus.InvalidArgument {
				t.Fatalf("err = %v (code %v), want invalid_argument", err, abacus.ErrorCode(err))
			}
			if got, want := abacus.ErrorMessage(err), "namespace "+quote(before.Name)+": "+tt.want; got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			if ns != before {
				t.Errorf("Complete changed the namespace on error")
			}
		})
	}
}

func TestValidatorSupported(t *testing.T) {
	v := Validator{Supported: Supported{
		Cache:  []string{"REDIS", "MEMCACHED", abacus.StorageMemory},
		Events: []string{"POSTGRES", abacus.StorageEmbedded},
	}}
	ns := abacus.Namespace{Name: "n", Type: abacus.Accurate}
	if err := v.Complete(&ns); err != nil {
		t.Fatal(err)
	}
	want := abacus.Storage{
		Cache:  abacus.PhysicalStorage{Type: "REDIS"},
		Rollup: abacus.PhysicalStorage{Type: "EMBEDDED"},
		Events: abacus.PhysicalStorage{Type: "POSTGRES"},
	}
	if ns.Storage != want {
		t.Errorf("storage = %+v, want %+v", ns.Storage, want)
	}
	// EVCACHE is an alias of MEMCACHED where memcached is supported.
	ns.Storage.Cache.Type = "EVCACHE"
	if err := v.Complete(&ns); err != nil || ns.Storage.Cache.Type != abacus.StorageMemcached {
		t.Errorf("EVCACHE: %v, type %q; want MEMCACHED", err, ns.Storage.Cache.Type)
	}
	ns.Storage.Cache.Type = "CASSANDRA"
	err := v.Complete(&ns)
	if want := `namespace "n": storage.cache.type: this node cannot serve "CASSANDRA" (CACHE): abacus has no "CASSANDRA" backend; it serves CACHE: REDIS, MEMCACHED, MEMORY`; err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	// The default build does not know POSTGRES.
	ns.Storage.Cache.Type = "MEMORY"
	if err := Complete(&ns); err == nil || !strings.Contains(err.Error(), `cannot serve "POSTGRES"`) {
		t.Errorf("default build accepted POSTGRES: %v", err)
	}
}

func TestDefaultSupportedIsACopy(t *testing.T) {
	s := DefaultSupported()
	s.Cache[0] = "CHANGED"
	if DefaultSupported().Cache[0] != abacus.StorageMemory {
		t.Fatal("DefaultSupported returned shared state")
	}
}

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", time.Hour: "1h", 144 * time.Hour: "144h", 90 * time.Minute: "1h30m",
		10 * time.Minute: "10m", 1500 * time.Millisecond: "1.5s", time.Hour + time.Second: "1h0m1s",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(fmtDur(d)); err != nil || back != d {
			t.Errorf("fmtDur(%v) does not parse back: %v %v", d, back, err)
		}
	}
	for d, want := range map[time.Duration]string{
		0: "0s", 518400 * time.Second: "518400s", 1500 * time.Millisecond: "1.5s",
		time.Nanosecond: "0.000000001s", -250 * time.Millisecond: "-0.25s",
	} {
		if got := protoDur(d); got != want {
			t.Errorf("protoDur(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(protoDur(d)); err != nil || back != d {
			t.Errorf("protoDur(%v) does not parse back: %v %v", d, back, err)
		}
	}
}
