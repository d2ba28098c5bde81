package history

import (
	"encoding/json"
	"math"
	"runtime"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func TestHistoryRing(t *testing.T) {
	a := ID{Group: "g", Label: "a"}
	b := ID{Group: "g", Label: "b", Namespace: "ns"}
	tests := []struct {
		name    string
		slots   int
		samples []Sample
		points  int
		want    map[ID][]float64 // NaN: no value
		times   int
	}{
		{
			name: "partly filled", slots: 4,
			samples: []Sample{{a: 1}, {a: 2, b: 5}},
			want:    map[ID][]float64{a: {1, 2}, b: {math.NaN(), 5}}, times: 2,
		},
		{
			name: "wrapped keeps the newest", slots: 3,
			samples: []Sample{{a: 1}, {a: 2}, {a: 3}, {a: 4}, {a: 5}},
			want:    map[ID][]float64{a: {3, 4, 5}}, times: 3,
		},
		{
			name: "last points", slots: 5, points: 2,
			samples: []Sample{{a: 1}, {a: 2}, {a: 3}},
			want:    map[ID][]float64{a: {2, 3}}, times: 2,
		},
		{
			name: "a series empty for a whole window is forgotten", slots: 2,
			samples: []Sample{{a: 1, b: 1}, {a: 2}, {a: 3}},
			want:    map[ID][]float64{a: {2, 3}}, times: 2,
		},
		{
			name: "a gap is NaN", slots: 4,
			samples: []Sample{{a: 1}, {}, {a: 3}},
			want:    map[ID][]float64{a: {1, math.NaN(), 3}}, times: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Options{Interval: time.Second, Window: time.Duration(tt.slots) * time.Second})
			for i, s := range tt.samples {
				h.Record(t0.Add(time.Duration(i)*time.Second), s)
			}
			snap := h.Snapshot(tt.points, nil)
			if len(snap.Times) != tt.times {
				t.Fatalf("%d times, want %d", len(snap.Times), tt.times)
			}
			last := t0.Add(time.Duration(len(tt.samples)-1) * time.Second)
			if !snap.Times[len(snap.Times)-1].Equal(last) {
				t.Errorf("last time %v, want %v", snap.Times[len(snap.Times)-1], last)
			}
			if len(snap.Series) != len(tt.want) {
				t.Fatalf("series %+v, want %d", snap.Series, len(tt.want))
			}
			for _, s := range snap.Series {
				want := tt.want[s.ID]
				if !sameFloats(s.Values, want) {
					t.Errorf("%v = %v, want %v", s.ID, s.Values, want)
				}
			}
		})
	}
}

func sameFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.IsNaN(a[i]) != math.IsNaN(b[i]) || (!math.IsNaN(a[i]) && a[i] != b[i]) {
			return false
		}
	}
	return true
}

func TestHistoryMaxSeriesAndKeep(t *testing.T) {
	h := New(Options{MaxSeries: 2})
	h.Record(t0, Sample{{Group: "g", Label: "1"}: 1, {Group: "g", Label: "2"}: 2, {Group: "g", Label: "3"}: 3})
	snap := h.Snapshot(0, nil)
	if len(snap.Series) != 2 || snap.Dropped != 1 {
		t.Fatalf("kept %d series, dropped %d; want 2 and 1", len(snap.Series), snap.Dropped)
	}
	only := h.Snapshot(0, func(id ID) bool { return id.Label == snap.Series[0].Label })
	if len(only.Series) != 1 {
		t.Fatalf("keep: %d series, want 1", len(only.Series))
	}
}

// The default history at its cap stays within the 5 MB budget, by its own
// estimate and by the heap it takes.
func TestHistoryBudget(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h := New(Options{})
	s := make(Sample)
	for i := range DefaultMaxSeries + 50 {
		s[ID{Group: GroupNSRequests, Namespace: "namespace_" + string(rune('a'+i%26)) + string(rune(i))}] = float64(i)
	}
	for i := range int(DefaultWindow / DefaultInterval) {
		h.Record(t0.Add(time.Duration(i)*time.Second), s)
	}
	s = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("history at its cap (%d series of %d points): estimate %d bytes, heap %d bytes", DefaultMaxSeries, int(DefaultWindow/DefaultInterval), h.Bytes(), heap)
	if b := h.Bytes(); b > 5<<20 {
		t.Fatalf("history holds ~%d bytes, over 5 MB", b)
	}
	if heap > 5<<20 {
		t.Fatalf("history takes %d bytes of heap, over 5 MB", heap)
	}
	runtime.KeepAlive(h)
}

func TestSnapshotJSON(t *testing.T) {
	h := New(Options{Window: 3 * time.Second})
	id := ID{Group: "requests", Label: `Counter "x" ok`, Namespace: "n"}
	h.Record(t0, Sample{id: 1.5})
	h.Record(t0.Add(time.Second), Sample{id: math.NaN()})
	var got struct {
		IntervalMS int64   `json:"interval_ms"`
		Times      []int64 `json:"times"`
		Series     []struct {
			Group, Label, Namespace string
			Values                  []*float64
		} `json:"series"`
	}
	b := h.Snapshot(0, nil).AppendJSON(nil)
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	if got.IntervalMS != 1000 || len(got.Times) != 2 || got.Times[0] != t0.UnixMilli() {
		t.Errorf("header %+v", got)
	}
	if len(got.Series) != 1 || got.Series[0].Label != id.Label || got.Series[0].Namespace != "n" {
		t.Fatalf("series %+v", got.Series)
	}
	v := got.Series[0].Values
	if len(v) != 2 || v[0] == nil || *v[0] != 1.5 || v[1] != nil {
		t.Errorf("values %s", b)
	}
}
