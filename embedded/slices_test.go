package embedded

import (
	"slices"
	"testing"
)

func TestSliceIndex(t *testing.T) {
	tests := []struct {
		name        string
		add         [][2]int64 // nsID, slice
		deleteBelow [2]int64   // nsID, end; zero nsID: none
		drop        uint64
		ns          uint64
		first, last int64
		want        []int64
	}{
		{name: "empty", ns: 1, first: -10, last: 10},
		{name: "sorted, deduplicated", add: [][2]int64{{1, 5}, {1, -3}, {1, 5}, {1, 0}, {2, 1}}, ns: 1, first: -100, last: 100, want: []int64{-3, 0, 5}},
		{name: "bounds are inclusive", add: [][2]int64{{1, 1}, {1, 2}, {1, 3}, {1, 4}}, ns: 1, first: 2, last: 3, want: []int64{2, 3}},
		{name: "other namespace", add: [][2]int64{{1, 1}, {2, 2}}, ns: 2, first: 0, last: 9, want: []int64{2}},
		{name: "delete below", add: [][2]int64{{1, 1}, {1, 2}, {1, 3}}, deleteBelow: [2]int64{1, 3}, ns: 1, first: 0, last: 9, want: []int64{3}},
		{name: "delete all", add: [][2]int64{{1, 1}}, deleteBelow: [2]int64{1, 9}, ns: 1, first: 0, last: 9},
		{name: "drop", add: [][2]int64{{1, 1}, {2, 1}}, drop: 1, ns: 1, first: 0, last: 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			si := newSliceIndex()
			for _, a := range tt.add {
				si.add(uint64(a[0]), a[1])
			}
			if tt.deleteBelow[0] != 0 {
				si.deleteBelow(uint64(tt.deleteBelow[0]), tt.deleteBelow[1])
			}
			if tt.drop != 0 {
				si.drop(tt.drop)
			}
			if got := si.between(tt.ns, tt.first, tt.last); !slices.Equal(got, tt.want) {
				t.Errorf("between(%d, %d, %d) = %v, want %v", tt.ns, tt.first, tt.last, got, tt.want)
			}
		})
	}
}
