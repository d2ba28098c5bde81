package wirebuf

import (
	"bytes"
	"testing"
)

// Of holds exactly what appendTo wrote, for messages below and above the
// pooling threshold.
func TestOf(t *testing.T) {
	for _, size := range []int{0, 1, 100, 1 << 10, 64 << 10} {
		want := bytes.Repeat([]byte{0xab}, size)
		got := Of(size, func(b []byte) []byte { return append(b, want...) })
		if b := got.Materialize(); !bytes.Equal(b, want) {
			t.Errorf("size %d: got %d bytes, want %d", size, len(b), size)
		}
		got.Free()
	}
}
