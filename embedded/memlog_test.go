package embedded

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

func TestRecordRoundTrip(t *testing.T) {
	l := abacus.Layout{NSID: 7, SliceWidth: int64(time.Minute), BucketWidth: int64(10 * time.Second), Buckets: 4}
	base := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		evs  []abacus.Event
	}{
		{"one", []abacus.Event{{Counter: "c", Time: base, ID: "a", Delta: 1}}},
		{"extremes", []abacus.Event{
			{Counter: "c", Time: base, ID: "min", Delta: -1 << 63},
			{Counter: "c", Time: base.Add(time.Nanosecond), ID: "max", Delta: 1<<63 - 1},
			{Counter: "other counter", Time: base.Add(time.Hour), ID: "clear", Clear: true},
			{Counter: "ünïcode", Time: base.Add(-time.Hour), ID: "", Delta: 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pend []*pendingEvent
			for _, e := range tt.evs {
				n := e.Time.UnixNano()
				pend = append(pend, &pendingEvent{ev: e, key: eventKey(l, e, n), nanos: n})
			}
			rec, mes := appendRecord(pend)
			got, ok := decodeRecord(rec)
			if !ok {
				t.Fatal("decodeRecord refused a record appendRecord wrote")
			}
			if len(got) != len(mes) {
				t.Fatalf("decoded %d events, want %d", len(got), len(mes))
			}
			for i := range got {
				if !bytes.Equal(got[i].key, mes[i].key) || !bytes.Equal(got[i].value(), mes[i].value()) || got[i].nanos != mes[i].nanos {
					t.Errorf("event %d: decoded %+v, want %+v", i, got[i], mes[i])
				}
				ev, err := memEventOf(tt.evs[i].Counter, got[i])
				if err != nil {
					t.Fatal(err)
				}
				want := tt.evs[i]
				want.Time = want.Time.UTC()
				if ev != want {
					t.Errorf("event %d = %+v, want %+v", i, ev, want)
				}
			}
			// Every strict prefix of a record is refused or decodes to
			// fewer events, never to a wrong one.
			for n := 0; n < len(rec); n++ {
				if got, ok := decodeRecord(rec[:n]); ok && len(got) >= len(mes) {
					t.Fatalf("a record cut at %d of %d bytes decoded to %d events", n, len(rec), len(got))
				}
			}
		})
	}
}

func TestMergeMem(t *testing.T) {
	at := func(sec int, id string) abacus.Event {
		return abacus.Event{Counter: "c", Time: time.Unix(int64(sec), 0).UTC(), ID: id, Delta: 1}
	}
	tests := []struct {
		name       string
		stored     []abacus.Event
		mem        []abacus.Event
		reverse    bool
		want       []string
		stopAfterN int
	}{
		{name: "no memory", stored: []abacus.Event{at(1, "a"), at(2, "b")}, want: []string{"a", "b"}},
		{name: "memory only", mem: []abacus.Event{at(1, "a"), at(2, "b")}, want: []string{"a", "b"}},
		{name: "interleaved", stored: []abacus.Event{at(1, "a"), at(3, "c")}, mem: []abacus.Event{at(2, "b"), at(4, "d")}, want: []string{"a", "b", "c", "d"}},
		{name: "in both once", stored: []abacus.Event{at(1, "a"), at(2, "b")}, mem: []abacus.Event{at(2, "b"), at(3, "c")}, want: []string{"a", "b", "c"}},
		{name: "same time by id", stored: []abacus.Event{at(1, "b")}, mem: []abacus.Event{at(1, "a"), at(1, "c")}, want: []string{"a", "b", "c"}},
		{name: "reverse", reverse: true, stored: []abacus.Event{at(3, "c"), at(1, "a")}, mem: []abacus.Event{at(4, "d"), at(3, "c"), at(2, "b")}, want: []string{"d", "c", "b", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			fn, finish := mergeMem(tt.mem, tt.reverse, func(e abacus.Event) error {
				got = append(got, e.ID)
				return nil
			})
			for _, e := range tt.stored {
				if err := fn(e); err != nil {
					t.Fatal(err)
				}
			}
			if err := finish(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMergeMemStopsOnError(t *testing.T) {
	stop := fmt.Errorf("stop")
	ev := func(sec int) abacus.Event { return abacus.Event{Time: time.Unix(int64(sec), 0), ID: "x"} }
	n := 0
	fn, finish := mergeMem([]abacus.Event{ev(1), ev(2)}, false, func(abacus.Event) error {
		n++
		return stop
	})
	if err := fn(ev(3)); err != stop {
		t.Fatalf("fn = %v, want the callback's error", err)
	}
	if n != 1 {
		t.Fatalf("callback ran %d times after its error, want 1", n)
	}
	_ = finish
}
