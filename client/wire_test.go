package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// wireItems are adds that cover every branch of the hand-written encoding:
// the client's tokens and callers' ones, empty and long strings, negative
// and extreme numbers, zero seconds or nanoseconds, no time at all.
func wireItems() []item {
	var tk tokens
	long := strings.Repeat("ü", 100) // a length that takes two bytes
	return []item{
		{ns: "ns", counter: "c", delta: 1, own: true, uuid: tk.nextUUID(), sec: 1_700_000_000, nanos: 123_456_789},
		{ns: "ns", counter: "c", delta: -5, own: true, uuid: tk.nextUUID(), sec: 1_700_000_000},
		{ns: "ns", counter: "c", delta: math.MaxInt64, own: true, uuid: tk.nextUUID(), nanos: 1},
		{ns: long, counter: long, delta: math.MinInt64, own: true, uuid: tk.nextUUID(), sec: -62135596800, nanos: 999_999_999},
		{ns: "ns", counter: "c", delta: 2, id: "my-event/7", sec: 1, nanos: 2},
		{ns: "ns", counter: "c", delta: 3, id: "no-time", noTime: true},
		{ns: "ns", counter: "c", delta: 4, sec: 1_700_000_000}, // a time and no token
		{ns: "ns", counter: "c", delta: 5, noTime: true},       // an empty token
		{ns: "", counter: "", delta: 0, own: true, uuid: tk.nextUUID()},
	}
}

// TestWireEncoding checks that an addsMsg is written byte for byte as the
// generated code writes the same request, alone (AddCount) and in a batch
// (AddCounts).
func TestWireEncoding(t *testing.T) {
	items := wireItems()
	slots := make([]*slot, len(items))
	for i := range items {
		slots[i] = &slot{it: items[i]}
		m := &addsMsg{one: &items[i]}
		want, err := proto.Marshal(items[i].request())
		if err != nil {
			t.Fatal(err)
		}
		if got := m.appendTo(nil); !bytes.Equal(got, want) || m.size() != len(want) {
			t.Errorf("item %d: wrote %x (size %d), want %x", i, got, m.size(), want)
		}
	}
	m := &addsMsg{items: slots}
	want, err := proto.Marshal(m.message())
	if err != nil {
		t.Fatal(err)
	}
	if got := m.appendTo(nil); !bytes.Equal(got, want) || m.size() != len(want) {
		t.Errorf("batch: wrote %x (size %d), want %x", got, m.size(), want)
	}
	// What goes on the wire is the same, through the codec and a pooled
	// buffer.
	data, err := wireCodec{}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := data.Materialize(); !bytes.Equal(got, want) {
		t.Errorf("codec: wrote %x, want %x", got, want)
	}
	data.Free()

	// The request's key, as keyOf reads it from the message.
	for i := range items {
		tok, at := items[i].key()
		wantTok, wantAt := keyOf(items[i].request().GetIdempotencyToken())
		if tok != wantTok || !at.Equal(wantAt) || at.Location() != wantAt.Location() {
			t.Errorf("item %d: key %q %v, want %q %v", i, tok, at, wantTok, wantAt)
		}
	}
}

// TestWireFields fails when the messages that the client writes by hand
// gain a field: the encoding (item.appendAdd) must learn it first.
func TestWireFields(t *testing.T) {
	for _, tt := range []struct {
		msg    proto.Message
		fields string
	}{
		{&abacusv1.AddCountsRequest{}, "adds"},
		{&abacusv1.AddCountRequest{}, "namespace counter_name delta idempotency_token"},
		{&abacusv1.IdempotencyToken{}, "token generation_time"},
	} {
		fs := tt.msg.ProtoReflect().Descriptor().Fields()
		var names []string
		for i := range fs.Len() {
			names = append(names, string(fs.Get(i).Name()))
		}
		if got := strings.Join(names, " "); got != tt.fields {
			t.Errorf("%s has fields %q; the client writes %q (see item.appendAdd)", tt.msg.ProtoReflect().Descriptor().FullName(), got, tt.fields)
		}
	}
}

// TestWireInvalidUTF8 checks that a name that is not UTF-8 fails the call
// as the generated code's marshalling does.
func TestWireInvalidUTF8(t *testing.T) {
	_, addr := startFake(t)
	for _, batching := range []bool{true, false} {
		c := newClient(t, addr, WithBatching(batching))
		err := c.AddCount(context.Background(), "ns", "bad\xff", 1)
		if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("batching=%v: AddCount of an invalid name: %v; want INTERNAL about UTF-8", batching, err)
		}
	}
}

// TestInterceptorsSeeMessages checks that a caller's interceptors are given
// the generated messages, natural batches included, as before the client
// wrote them by hand.
func TestInterceptorsSeeMessages(t *testing.T) {
	f, addr := startFake(t)
	var mu sync.Mutex
	var seen []string
	record := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		mu.Lock()
		switch r := req.(type) {
		case *abacusv1.AddCountsRequest:
			seen = append(seen, fmt.Sprintf("AddCounts of %d", len(r.GetAdds())))
		case *abacusv1.AddCountRequest:
			seen = append(seen, "AddCount of "+r.GetCounterName())
		}
		mu.Unlock()
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	c := newClient(t, addr, WithBatchesInFlight(1), WithDialOptions(grpc.WithUnaryInterceptor(record)))
	release := c.adds.occupy()
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			if err := c.AddCount(context.Background(), "ns", fmt.Sprint("c", i), 1); err != nil {
				t.Error(err)
			}
		})
	}
	eventually(t, "calls to queue", func() bool { return c.adds.queued() == 3 })
	release()
	wg.Wait()
	if err := c.AddCount(context.Background(), "ns", "lone", 1); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(seen, ", "); got != "AddCounts of 3, AddCount of lone" {
		t.Errorf("the interceptor saw %s", got)
	}
	if n := len(f.calls("AddCounts")); n != 1 {
		t.Errorf("%d AddCounts RPCs, want 1", n)
	}
}

// TestBatchReuse drives many callers through natural batches, some of them
// leaving early and some requests hedged or failed, so that batches are
// recycled while others are in flight; each counter must count what its
// callers were told: the adds that succeeded, and at most the ambiguous
// ones besides. Run with -race, it also checks that no batch is touched
// after it was recycled.
func TestBatchReuse(t *testing.T) {
	f, addr := startFake(t)
	var n atomic.Int64
	f.setHook(func(ctx context.Context, method string, _ int) error {
		switch k := n.Add(1); {
		case k%7 == 0:
			time.Sleep(3 * time.Millisecond) // hedged
		case k%23 == 0:
			return status.Error(codes.Unavailable, "retry me")
		}
		return nil
	})
	c := newClient(t, addr, WithHedging(2*time.Millisecond), WithMaxBatch(16))
	const callers, calls = 32, 60
	var ok, ambiguous [callers]int64
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			for j := range calls {
				ctx, cancel := context.WithCancel(context.Background())
				if j%5 == 0 {
					time.AfterFunc(time.Duration(rand.IntN(400))*time.Microsecond, cancel)
				}
				err := c.AddCount(ctx, "ns", fmt.Sprint("c", i), 1)
				cancel()
				var amb *AmbiguousError
				switch {
				case err == nil:
					ok[i]++
				case errors.As(err, &amb):
					ambiguous[i]++
					if _, err := uuid.Parse(amb.Token); err != nil {
						t.Errorf("AmbiguousError.Token %q: %v", amb.Token, err)
					}
				case errors.Is(err, context.Canceled):
				default:
					t.Errorf("AddCount: %v", err)
				}
			}
		})
	}
	wg.Wait()
	// A request cancelled on the client may still be served: wait for the
	// batches to end, and for the server's held requests.
	eventually(t, "batches to end", func() bool {
		c.adds.mu.Lock()
		defer c.adds.mu.Unlock()
		return c.adds.inFlight == 0
	})
	time.Sleep(50 * time.Millisecond)
	for i := range callers {
		if got := f.count("ns", fmt.Sprint("c", i)); got < ok[i] || got > ok[i]+ambiguous[i] {
			t.Errorf("c%d: count %d, want %d succeeded and at most %d ambiguous besides", i, got, ok[i], ambiguous[i])
		}
	}
	if s := c.Stats(); s.Hedges == 0 || s.AddItems <= s.AddRPCs {
		t.Logf("no hedges or no batches: %+v", s)
	}
}

var _ protoreflect.ProtoMessage = (*addsMsg)(nil)
