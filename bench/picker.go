package bench

import (
	"fmt"
	"math/rand/v2"
)

// Distributions of counter popularity accepted by Config.Dist.
const (
	// DistUniform picks every counter equally often.
	DistUniform = "uniform"
	// DistZipf picks counter k (k = 0, 1, ...) with probability proportional
	// to 1/(k+1)^s: a few hot counters and a long tail, as real view and
	// click counts are.
	DistZipf = "zipf"
)

// Picker chooses the counter (an index in [0, n)) of the next operation.
// A Picker is not safe for concurrent use: each caller owns one, so that
// picking costs no synchronisation.
type Picker interface {
	Pick() int
}

// NewPicker returns a picker over n counters with the given distribution
// (DistUniform or DistZipf, the latter with exponent s > 1) drawing from
// rng.
func NewPicker(dist string, n int, s float64, rng *rand.Rand) (Picker, error) {
	if n < 1 {
		return nil, fmt.Errorf("counters must be at least 1, not %d", n)
	}
	switch dist {
	case DistUniform:
		return uniformPicker{rng: rng, n: n}, nil
	case DistZipf:
		if !(s > 1) {
			return nil, fmt.Errorf("zipf exponent must be greater than 1, not %v", s)
		}
		// v = 1 makes counter 0 the most popular, with weight 1/1^s.
		return zipfPicker{z: rand.NewZipf(rng, s, 1, uint64(n-1))}, nil
	}
	return nil, fmt.Errorf("distribution must be %s or %s, not %q", DistUniform, DistZipf, dist)
}

type uniformPicker struct {
	rng *rand.Rand
	n   int
}

func (p uniformPicker) Pick() int { return p.rng.IntN(p.n) }

type zipfPicker struct{ z *rand.Zipf }

func (p zipfPicker) Pick() int { return int(p.z.Uint64()) }
