package bench

import "testing"

func TestExactFraction(t *testing.T) {
	r := &ConvergeResult{Counters: 1000, Progress: []ConvergePoint{{1, 400}, {2.5, 900}, {4, 999}, {6, 1000}}}
	tests := []struct {
		fraction float64
		at       float64
		ok       bool
	}{
		{0.4, 1, true},
		{0.5, 2.5, true},
		{0.9, 2.5, true},
		{0.999, 4, true},
		{1, 6, true},
	}
	for _, tt := range tests {
		if at, ok := r.ExactFraction(tt.fraction); at != tt.at || ok != tt.ok {
			t.Errorf("ExactFraction(%g) = %g, %v; want %g, %v", tt.fraction, at, ok, tt.at, tt.ok)
		}
	}
	if _, ok := (&ConvergeResult{Counters: 10, Progress: []ConvergePoint{{1, 9}}}).ExactFraction(1); ok {
		t.Error("ExactFraction(1) ok with a counter never exact")
	}
}
