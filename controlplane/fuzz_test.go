package controlplane

import (
	"os"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/abacus-dev/abacus"
)

// FuzzParseFile checks that no file makes ParseFile panic, that its errors
// are InvalidArgument, and that the namespaces it returns are complete (a
// second Complete changes nothing) and survive MarshalFile and ParseFile.
func FuzzParseFile(f *testing.F) {
	for _, in := range inputs(f) {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("namespaces: [{name: a, counter_type: EVENTUAL, <<: {ttl: 1s}}]"))
	f.Add([]byte(`{"namespaces":[{"name":"a\/b","counter_type":"ACCURATE","description":"\ud83d\ude00"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		nss, err := ParseFile(data)
		if err != nil {
			if abacus.ErrorCode(err) != abacus.InvalidArgument || abacus.ErrorMessage(err) == "" {
				t.Fatalf("error %v has code %v", err, abacus.ErrorCode(err))
			}
			return
		}
		checkRoundTrip(t, nss)
	})
}

// genNamespace generates a valid, complete namespace.
func genNamespace(t *rapid.T) abacus.Namespace {
	bucket := time.Duration(rapid.Int64Range(1, 7200).Draw(t, "bucket")) * time.Second
	accept := time.Duration(rapid.Int64Range(int64(time.Millisecond), int64(time.Hour)).Draw(t, "accept"))
	closeAfter := accept + abacus.SkewMargin + time.Duration(rapid.Int64Range(1, int64(30*24*time.Hour)).Draw(t, "close"))
	return abacus.Namespace{
		Name:        rapid.StringMatching(`[A-Za-z0-9_.-]{1,128}`).Draw(t, "name"),
		Type:        rapid.SampledFrom([]abacus.CounterType{abacus.BestEffort, abacus.Eventual, abacus.Accurate}).Draw(t, "type"),
		Cardinality: rapid.SampledFrom([]abacus.Cardinality{abacus.Low, abacus.High}).Draw(t, "cardinality"),
		TTL:         time.Duration(rapid.Int64Range(1, int64(365*24*time.Hour)).Draw(t, "ttl")),
		AcceptLimit: accept,
		Partition: abacus.TimePartition{
			BucketsPerID: rapid.IntRange(1, 1024).Draw(t, "buckets"),
			BucketWidth:  bucket,
			SliceWidth:   bucket * time.Duration(rapid.Int64Range(1, int64(maxSliceWidth/bucket)).Draw(t, "slice")),
		},
		Queue: abacus.QueueConfig{
			NumQueues:     rapid.IntRange(1, 1024).Draw(t, "queues"),
			Coalesce:      time.Duration(rapid.Int64Range(1, 3600000).Draw(t, "coalesce")) * time.Millisecond,
			CapacityBytes: rapid.Int64Range(1024, 1<<40).Draw(t, "capacity"),
		},
		RollupBatchCount: rapid.IntRange(1, 10000).Draw(t, "batch"),
		Retention: abacus.Retention{
			CloseAfter:  closeAfter,
			DeleteAfter: closeAfter + time.Duration(rapid.Int64Range(0, int64(30*24*time.Hour)).Draw(t, "delete")),
		},
		Storage: abacus.Storage{
			Cache:  abacus.PhysicalStorage{Type: abacus.StorageMemory, Cluster: rapid.String().Draw(t, "cluster")},
			Rollup: abacus.PhysicalStorage{Type: abacus.StorageEmbedded},
			Events: abacus.PhysicalStorage{Type: abacus.StorageEmbedded, Dataset: rapid.String().Draw(t, "dataset")},
		},
		Description: rapid.String().Draw(t, "description"),
	}
}

// TestRoundTripProperty checks, for random valid namespaces, that Complete
// keeps them as they are, that MarshalFile and ParseFile round-trip them, and
// that an update to the same settings is allowed.
func TestRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ns := genNamespace(t)
		c := ns
		if err := Complete(&c); err != nil {
			t.Fatalf("Complete of a valid namespace: %v", err)
		}
		if c != ns {
			t.Fatalf("Complete changed a complete namespace:\n got %+v\nwant %+v", c, ns)
		}
		nss, err := ParseFile(MarshalFile([]*abacus.Namespace{&ns}))
		if err != nil {
			t.Fatalf("ParseFile(MarshalFile): %v", err)
		}
		if *nss[0] != ns {
			t.Fatalf("round trip:\n got %+v\nwant %+v", *nss[0], ns)
		}
		u := ns
		if err := CheckUpdate(&ns, &u); err != nil || u != ns {
			t.Fatalf("CheckUpdate to itself: %v", err)
		}
	})
}

// TestYAMLStrings checks that strings with characters YAML treats specially
// survive the JSON that MarshalFile writes.
func TestYAMLStrings(t *testing.T) {
	for _, s := range []string{"", "null", "~", "yes", "1e3", "a: b", "- x", "#", "\t", "\\/", "\u2028", "\u2029", "\u0085", "\x7f", "\u009f", "\ufffe", "\U0001F600", "\x00", strings.Repeat("x", 2000)} {
		ns := valid()
		ns.Description = s
		nss, err := ParseFile(MarshalFile([]*abacus.Namespace{&ns}))
		if err != nil || nss[0].Description != s {
			t.Errorf("description %q: %v", s, err)
		}
	}
}
