package embedded_test

import (
	"context"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"

	"github.com/abacus-dev/abacus/embedded"
	"github.com/abacus-dev/abacus/storetest"
)

func open(t testing.TB, dir string, opts embedded.Options) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		return open(t, t.TempDir(), embedded.Options{})
	})
}

var t0 = time.Date(2024, 10, 5, 14, 48, 0, 0, time.UTC)

func nsConfig(name string) *abacus.Namespace {
	return &abacus.Namespace{
		Name:      name,
		Type:      abacus.Accurate,
		Partition: abacus.TimePartition{BucketsPerID: 4, BucketWidth: 10 * time.Second, SliceWidth: time.Minute},
	}
}

func ev(counter string, off time.Duration, id string, delta int64) abacus.Event {
	return abacus.Event{Counter: counter, Time: t0.Add(off), ID: id, Delta: delta}
}

func scan(t testing.TB, s *embedded.Store, ns *abacus.Namespace, counter string) []abacus.Event {
	t.Helper()
	var out []abacus.Event
	if err := s.Scan(context.Background(), ns, counter, abacus.Range{}, func(e abacus.Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
