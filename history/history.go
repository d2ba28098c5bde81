// Package history keeps a node's recent figures in memory for its operator
// views (the dashboard under /ui/ and `abacus top`): the last Window of
// samples, one per Interval, of a bounded set of named series. It needs no
// Prometheus server: a Sampler reads the node's own registry once per
// interval and turns counters into rates.
//
// Memory is bounded by construction: every series is a ring of float32 of
// Window/Interval slots (900 for 15 minutes at 1 s, 3.6 KB), and at most
// MaxSeries series are kept (new ones past the cap are counted in Dropped
// rather than stored), so the history stays under 5 MB whatever the
// traffic; series that stayed empty for a whole window are forgotten.
package history

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultInterval  = time.Second
	DefaultWindow    = 15 * time.Minute
	DefaultMaxSeries = 1000
)

// Options configures a History. The zero value takes the defaults.
type Options struct {
	// Interval is the time between samples; default DefaultInterval.
	Interval time.Duration
	// Window is how far back samples are kept; default DefaultWindow.
	Window time.Duration
	// MaxSeries caps the series kept; default DefaultMaxSeries.
	MaxSeries int
}

// ID names a series: a group of related series drawn on one chart (such as
// "requests"), a label within it (such as "CounterService/AddCount ok"),
// and, for per-namespace series, the namespace, whose readers need a right
// on it.
type ID struct {
	Group, Label, Namespace string
}

// Sample is the value of each series at one instant. A series missing from
// a sample has no value then (drawn as a gap).
type Sample map[ID]float64

// History is a fixed-size ring of samples. Its methods are safe for
// concurrent use.
type History struct {
	interval time.Duration
	slots    int
	max      int

	mu      sync.RWMutex
	times   []int64 // unix milliseconds of each slot; the ring's order
	head    int     // slot of the next sample
	n       int     // slots filled
	series  map[ID]*series
	dropped int // series refused for MaxSeries
}

type series struct {
	vals []float32 // NaN: no value
	seen int       // samples since this series last had a value
}

// New returns an empty History.
func New(o Options) *History {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.MaxSeries <= 0 {
		o.MaxSeries = DefaultMaxSeries
	}
	slots := max(int(o.Window/o.Interval), 1)
	return &History{
		interval: o.Interval, slots: slots, max: o.MaxSeries,
		times: make([]int64, slots), series: make(map[ID]*series),
	}
}

// Interval returns the time between samples.
func (h *History) Interval() time.Duration { return h.interval }

// Record appends a sample taken at t, overwriting the oldest once the
// window is full.
func (h *History) Record(t time.Time, s Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	slot := h.head
	h.times[slot] = t.UnixMilli()
	h.head = (h.head + 1) % h.slots
	h.n = min(h.n+1, h.slots)
	for id := range s {
		if h.series[id] != nil {
			continue
		}
		if len(h.series) >= h.max {
			h.dropped++
			continue
		}
		vals := make([]float32, h.slots)
		for i := range vals {
			vals[i] = float32(math.NaN())
		}
		h.series[id] = &series{vals: vals}
	}
	for id, sr := range h.series {
		v, ok := s[id]
		if !ok || math.IsNaN(v) {
			sr.vals[slot] = float32(math.NaN())
			sr.seen++
			// Nothing left in the window: forget it, so that deleted
			// namespaces and methods no longer called give their room back.
			if sr.seen >= h.slots {
				delete(h.series, id)
			}
			continue
		}
		sr.vals[slot] = float32(v)
		sr.seen = 0
	}
}

// Series is one series as returned by Snapshot: its values, oldest first,
// aligned with Snapshot.Times; NaN where it had no value.
type Series struct {
	ID
	Values []float64
}

// Snapshot is a copy of part of a History.
type Snapshot struct {
	// Interval is the time between samples.
	Interval time.Duration
	// Times are the sample times, oldest first.
	Times []time.Time
	// Series are sorted by group, namespace and label.
	Series []Series
	// Dropped counts series that were not kept for MaxSeries.
	Dropped int
}

// Snapshot returns the last points samples (all of them if points ≤ 0) of
// the series that keep returns true for (all if keep is nil).
func (h *History) Snapshot(points int, keep func(ID) bool) Snapshot {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := h.n
	if points > 0 {
		n = min(n, points)
	}
	first := (h.head - n + h.slots) % h.slots
	snap := Snapshot{Interval: h.interval, Times: make([]time.Time, n), Dropped: h.dropped}
	for i := range n {
		snap.Times[i] = time.UnixMilli(h.times[(first+i)%h.slots])
	}
	for id, sr := range h.series {
		if keep != nil && !keep(id) {
			continue
		}
		vals := make([]float64, n)
		for i := range n {
			vals[i] = float64(sr.vals[(first+i)%h.slots])
		}
		snap.Series = append(snap.Series, Series{ID: id, Values: vals})
	}
	slices.SortFunc(snap.Series, func(a, b Series) int {
		return strings.Compare(a.Group+"\x00"+a.Namespace+"\x00"+a.Label, b.Group+"\x00"+b.Namespace+"\x00"+b.Label)
	})
	return snap
}

// Bytes estimates the memory the History holds: what its 5 MB budget is
// checked against.
func (h *History) Bytes() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	const perSeries = 400 // map slot, ID and its strings, series struct (measured: TestHistoryBudget)
	return h.slots*8 + len(h.series)*(h.slots*4+perSeries)
}

// AppendJSON appends the snapshot as JSON:
//
//	{"interval_ms":1000,"times":[unix ms...],"dropped":0,
//	 "series":[{"group":"requests","label":"...","namespace":"","values":[1.5,null,...]}]}
//
// A missing value is null (JSON has no NaN). encoding/json would need a
// []*float64 per series for that; writing it directly keeps the once-a-second
// poll of every open dashboard cheap.
func (s Snapshot) AppendJSON(b []byte) []byte {
	b = append(b, `{"interval_ms":`...)
	b = strconv.AppendInt(b, s.Interval.Milliseconds(), 10)
	b = append(b, `,"dropped":`...)
	b = strconv.AppendInt(b, int64(s.Dropped), 10)
	b = append(b, `,"times":[`...)
	for i, t := range s.Times {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, t.UnixMilli(), 10)
	}
	b = append(b, `],"series":[`...)
	for i, sr := range s.Series {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"group":`...)
		b = appendString(b, sr.Group)
		b = append(b, `,"label":`...)
		b = appendString(b, sr.Label)
		b = append(b, `,"namespace":`...)
		b = appendString(b, sr.Namespace)
		b = append(b, `,"values":[`...)
		for j, v := range sr.Values {
			if j > 0 {
				b = append(b, ',')
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				b = append(b, "null"...)
				continue
			}
			b = strconv.AppendFloat(b, v, 'g', 6, 64)
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}"...)
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
