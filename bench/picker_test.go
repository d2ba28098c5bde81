package bench

import (
	"math/rand/v2"
	"testing"
)

func TestUniformPicker(t *testing.T) {
	const n, draws = 10, 100000
	p, err := NewPicker(DistUniform, n, 0, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, n)
	for range draws {
		k := p.Pick()
		if k < 0 || k >= n {
			t.Fatalf("Pick() = %d, out of [0, %d)", k, n)
		}
		counts[k]++
	}
	// A fixed seed makes this deterministic; the bound (±5% of the
	// expected 10,000) is some 15 standard deviations wide.
	for k, c := range counts {
		if !within(float64(c), draws/n, 0.05) {
			t.Errorf("counter %d drawn %d times, want about %d", k, c, draws/n)
		}
	}
}

func TestZipfPicker(t *testing.T) {
	const n, draws = 1000, 200000
	p, err := NewPicker(DistZipf, n, 1.1, rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, n)
	for range draws {
		k := p.Pick()
		if k < 0 || k >= n {
			t.Fatalf("Pick() = %d, out of [0, %d)", k, n)
		}
		counts[k]++
	}
	// Popularity falls with rank: counter 0 is the hottest, and counter k
	// is drawn about (k+1)^-1.1 times as often (factor 2.14 for k = 1).
	if !(counts[0] > counts[1] && counts[1] > counts[9] && counts[9] > counts[99] && counts[99] > 0) {
		t.Errorf("counts of ranks 0, 1, 9, 99 = %d, %d, %d, %d; want strictly falling and > 0",
			counts[0], counts[1], counts[9], counts[99])
	}
	if r := float64(counts[0]) / float64(counts[1]); r < 1.8 || r > 2.5 {
		t.Errorf("count[0]/count[1] = %.2f, want about 2^1.1 = 2.14", r)
	}
	tail := 0
	for _, c := range counts[n/2:] {
		tail += c
	}
	if tail == 0 {
		t.Error("the tail half of the counters was never drawn")
	}
}

func TestPickerSingleCounter(t *testing.T) {
	for _, d := range []string{DistUniform, DistZipf} {
		p, err := NewPicker(d, 1, 1.5, rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			if k := p.Pick(); k != 0 {
				t.Fatalf("%s over 1 counter picked %d", d, k)
			}
		}
	}
}

func TestNewPickerErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, c := range []struct {
		dist string
		n    int
		s    float64
	}{{DistUniform, 0, 0}, {DistZipf, 10, 1}, {DistZipf, 10, 0.5}, {"pareto", 10, 2}} {
		if _, err := NewPicker(c.dist, c.n, c.s, rng); err == nil {
			t.Errorf("NewPicker(%q, %d, %v) succeeded, want an error", c.dist, c.n, c.s)
		}
	}
}
