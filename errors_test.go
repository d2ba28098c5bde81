package abacus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code Code
		msg  string
	}{
		{"plain", Errorf(NotFound, "namespace %q not found", "x"), NotFound, `namespace "x" not found`},
		{"wrapped cause once", Errorf(Unavailable, "read: %w", io.EOF), Unavailable, "read: EOF"},
		{"wrap", Wrap(Unavailable, io.ErrUnexpectedEOF, "event store"), Unavailable, "event store: unexpected EOF"},
		{"outer fmt wrap", fmt.Errorf("ctx: %w", Errorf(OutOfRange, "too big")), OutOfRange, "too big"},
		{"context", context.Canceled, Canceled, "context canceled"},
		{"unclassified", errors.New("boom"), Internal, "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorCode(tt.err); got != tt.code {
				t.Errorf("code = %v, want %v", got, tt.code)
			}
			if got := ErrorMessage(tt.err); got != tt.msg {
				t.Errorf("message = %q, want %q", got, tt.msg)
			}
		})
	}
	if !errors.Is(Errorf(Unavailable, "read: %w", io.EOF), io.EOF) {
		t.Error("cause lost")
	}
	if ErrorCode(nil) != -1 {
		t.Error("nil error has a code")
	}
}

func TestSum(t *testing.T) {
	const max, min = int64(^uint64(0) >> 1), -int64(^uint64(0)>>1) - 1
	tests := []struct {
		name   string
		deltas []int64
		want   int64
		fits   bool
	}{
		{"small", []int64{1, 2, -5}, -2, true},
		{"to max", []int64{max - 1, 1}, max, true},
		{"past max", []int64{max, 1}, 0, false},
		{"past and back", []int64{max, max, -max, -1}, max - 1, true},
		{"to min", []int64{min}, min, true},
		{"past min", []int64{min, -1}, 0, false},
		{"min and back", []int64{min, -1, 1}, min, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Sum
			for _, d := range tt.deltas {
				s = s.Add(d)
			}
			got, ok := s.Int64()
			if ok != tt.fits || (ok && got != tt.want) {
				t.Fatalf("Int64() = %d, %v; want %d, %v", got, ok, tt.want, tt.fits)
			}
		})
	}
}

func TestPartialThen(t *testing.T) {
	at := func(s int64) time.Time { return time.Unix(s, 0) }
	events := []Event{
		{Time: at(1), Delta: 5}, {Time: at(2), Delta: -2}, {Time: at(3), Clear: true},
		{Time: at(4), Delta: 7}, {Time: at(5), Delta: 1}, {Time: at(6), Clear: true}, {Time: at(7), Delta: 3},
	}
	base := SumOf(100)
	want := base.Fold(events)
	// Every split into two runs, and into single events, gives the same count.
	for cut := 0; cut <= len(events); cut++ {
		var a, b Partial
		for _, e := range events[:cut] {
			a = a.Apply(e)
		}
		for _, e := range events[cut:] {
			b = b.Apply(e)
		}
		if got := a.Then(b).On(base); got != want {
			t.Errorf("cut %d: %v, want %v", cut, got, want)
		}
	}
	var p Partial
	for _, e := range events {
		p = p.Then(Partial{}.Apply(e))
	}
	if got := p.On(base); got != want {
		t.Errorf("event by event: %v, want %v", got, want)
	}
}
