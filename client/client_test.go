package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// t0 is the fixed time of the tests' clock.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return t0 }

// writeCalls are the client's writes, each named by the RPC it makes when it
// is not batched with others.
var writeCalls = []struct {
	method string
	call   func(c *Client) error
}{
	{"AddCount", func(c *Client) error { return c.AddCount(context.Background(), "ns", "c", 2) }},
	{"AddAndGetCount", func(c *Client) error {
		_, err := c.AddAndGetCount(context.Background(), "ns", "c", 2)
		return err
	}},
	{"ClearCount", func(c *Client) error { return c.ClearCount(context.Background(), "ns", "c") }},
}

func tokenOf(r rpc) *abacusv1.IdempotencyToken {
	switch m := r.req.(type) {
	case *abacusv1.AddCountRequest:
		return m.GetIdempotencyToken()
	case *abacusv1.ClearCountRequest:
		return m.GetIdempotencyToken()
	}
	return nil
}

// TestTokensAcrossRetries fails every write twice with UNAVAILABLE and
// checks that all three attempts carry one token, a random UUID, and the
// generation time of the client's clock.
func TestTokensAcrossRetries(t *testing.T) {
	for _, batching := range []bool{true, false} {
		for _, w := range writeCalls {
			t.Run(fmt.Sprintf("%s/batching=%v", w.method, batching), func(t *testing.T) {
				f, addr := startFake(t)
				c := newClient(t, addr, WithClock(fixedClock), WithBatching(batching))
				f.setHook(func(ctx context.Context, method string, n int) error {
					if n <= 2 {
						return status.Error(codes.Unavailable, "try again")
					}
					return nil
				})
				if err := w.call(c); err != nil {
					t.Fatal(err)
				}
				if err := w.call(c); err != nil {
					t.Fatal(err)
				}
				calls := f.calls(w.method)
				if len(calls) != 4 {
					t.Fatalf("%d %s RPCs, want 3 attempts and 1 more call", len(calls), w.method)
				}
				first := tokenOf(calls[0])
				if u, err := uuid.Parse(first.GetToken()); err != nil || u.Version() != 4 {
					t.Errorf("token %q is not a random UUID: %v", first.GetToken(), err)
				}
				if !first.GetGenerationTime().AsTime().Equal(t0) {
					t.Errorf("generation time %v, want the clock's %v", first.GetGenerationTime().AsTime(), t0)
				}
				for _, r := range calls[1:3] {
					if tok := tokenOf(r); tok.GetToken() != first.GetToken() || !tok.GetGenerationTime().AsTime().Equal(t0) {
						t.Errorf("retry carries %v, first attempt %v", tok, first)
					}
				}
				if tokenOf(calls[3]).GetToken() == first.GetToken() {
					t.Errorf("two calls share the token %q", first.GetToken())
				}
				if got := c.Stats().Retries; got != 2 {
					t.Errorf("Stats().Retries = %d, want 2", got)
				}
			})
		}
	}
}

// steppingClock advances by step every time it is read, so that each retry
// sees a write older than the last.
func steppingClock(step time.Duration) func() time.Time {
	var mu sync.Mutex
	now := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := now
		now = now.Add(step)
		return t
	}
}

// TestRetryOutcomes checks when the client retries, when it stops, and which
// final errors are ambiguous.
func TestRetryOutcomes(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "store down")
	tests := []struct {
		name      string
		opts      []Option
		answers   []error // per attempt; the last one repeats
		attempts  int
		code      codes.Code
		ambiguous bool
	}{
		{"success after retries", nil, []error{unavailable, unavailable, nil}, 3, codes.OK, false},
		{"retries exhausted", []Option{WithRetries(2)}, []error{unavailable}, 3, codes.Unavailable, true},
		{"no retries", []Option{WithRetries(0)}, []error{unavailable}, 1, codes.Unavailable, true},
		{"refused at once", nil, []error{status.Error(codes.InvalidArgument, "bad")}, 1, codes.InvalidArgument, false},
		{"not retryable, unknown outcome", nil, []error{status.Error(codes.Internal, "oops")}, 1, codes.Internal, true},
		// The server answers a retry after the accept window from the
		// stored event: FAILED_PRECONDITION means that no attempt was
		// stored, and ALREADY_EXISTS that another payload was.
		{"not stored, after an unknown attempt", nil,
			[]error{status.Error(codes.DeadlineExceeded, "slow"), status.Error(codes.FailedPrecondition, "outside the accept window")},
			2, codes.FailedPrecondition, false},
		{"another payload, after an unknown attempt", nil,
			[]error{unavailable, status.Error(codes.AlreadyExists, "token reused")},
			2, codes.AlreadyExists, false},
		// The clock moves 1s per reading: retries go on after the write's
		// accept window (5s) has closed, since the server answers them from
		// the stored event.
		{"retries go on past the accept window", []Option{WithRetries(10), WithClock(steppingClock(time.Second))},
			[]error{unavailable}, 11, codes.Unavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, addr := startFake(t)
			c := newClient(t, addr, append([]Option{WithClock(fixedClock), WithBatching(false)}, tt.opts...)...)
			f.setHook(func(ctx context.Context, method string, n int) error {
				return tt.answers[min(n, len(tt.answers))-1]
			})
			err := c.AddCount(context.Background(), "ns", "c", 1)
			calls := f.calls("AddCount")
			if len(calls) != tt.attempts {
				t.Errorf("%d attempts, want %d", len(calls), tt.attempts)
			}
			if status.Code(err) != tt.code {
				t.Errorf("err = %v, want code %v", err, tt.code)
			}
			var amb *AmbiguousError
			if errors.As(err, &amb) != tt.ambiguous {
				t.Fatalf("err = %v (%T); ambiguous: want %v", err, err, tt.ambiguous)
			}
			if amb != nil {
				tok := tokenOf(calls[0])
				if amb.Token != tok.GetToken() || !amb.Time.Equal(t0) {
					t.Errorf("AmbiguousError key (%q, %v), want the request's (%q, %v)", amb.Token, amb.Time, tok.GetToken(), t0)
				}
				if !strings.Contains(amb.Error(), amb.Token) {
					t.Errorf("error message %q does not name the token", amb.Error())
				}
			}
		})
	}
}

// TestReadRetries checks that reads are retried too.
func TestReadRetries(t *testing.T) {
	f, addr := startFake(t)
	c := newClient(t, addr)
	if err := c.AddCount(context.Background(), "ns", "c", 5); err != nil {
		t.Fatal(err)
	}
	f.setHook(func(ctx context.Context, method string, n int) error {
		if n <= 2 {
			return status.Error(codes.Unavailable, "try again")
		}
		return nil
	})
	if n, err := c.GetCount(context.Background(), "ns", "c"); err != nil || n != 5 {
		t.Fatalf("GetCount = %d, %v; want 5", n, err)
	}
	if got := len(f.calls("GetCount")); got != 3 {
		t.Errorf("%d GetCount attempts, want 3", got)
	}
}

// TestHedging holds the first request until it is cancelled and checks that
// the hedge, identical to it, answers the call.
func TestHedging(t *testing.T) {
	calls := []struct {
		method string
		call   func(c *Client) (int64, error)
	}{
		{"AddCount", func(c *Client) (int64, error) { return 0, c.AddCount(context.Background(), "ns", "c", 3) }},
		{"AddAndGetCount", func(c *Client) (int64, error) { return c.AddAndGetCount(context.Background(), "ns", "c", 3) }},
		{"GetCount", func(c *Client) (int64, error) { return c.GetCount(context.Background(), "ns", "c") }},
	}
	for _, tt := range calls {
		t.Run(tt.method, func(t *testing.T) {
			f, addr := startFake(t)
			c := newClient(t, addr, WithHedging(time.Millisecond), WithConns(2))
			cancelled := make(chan struct{})
			f.setHook(func(ctx context.Context, method string, n int) error {
				if n == 1 {
					<-ctx.Done()
					close(cancelled)
					return ctx.Err()
				}
				return nil
			})
			if _, err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			<-cancelled // the loser is cancelled once the hedge has answered
			reqs := f.calls(tt.method)
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want the first and its hedge", len(reqs))
			}
			if a, b := tokenOf(reqs[0]), tokenOf(reqs[1]); a.GetToken() != b.GetToken() || !a.GetGenerationTime().AsTime().Equal(b.GetGenerationTime().AsTime()) {
				t.Errorf("hedge carries %v, first request %v", b, a)
			}
			if tt.method != "GetCount" && f.count("ns", "c") != 3 {
				t.Errorf("count %d after a hedged add of 3", f.count("ns", "c"))
			}
			if got := c.Stats().Hedges; got != 1 {
				t.Errorf("Stats().Hedges = %d, want 1", got)
			}
		})
	}
}

// TestLocalChecks checks that calls the server would refuse for sure fail
// without an RPC.
func TestLocalChecks(t *testing.T) {
	f, addr := startFake(t)
	c := newClient(t, addr)
	errs := []error{
		c.AddCount(context.Background(), "ns", "c", 0),
		c.AddCount(context.Background(), "", "c", 1),
		c.ClearCount(context.Background(), "ns", ""),
	}
	_, err := c.GetCount(context.Background(), "ns", "")
	errs = append(errs, err)
	for i, err := range errs {
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("call %d: %v, want INVALID_ARGUMENT", i, err)
		}
	}
	if n := len(f.calls("")); n != 0 {
		t.Errorf("%d RPCs for calls refused locally", n)
	}
}

// TestOptions checks that New reports every invalid option at once.
func TestOptions(t *testing.T) {
	_, err := New("127.0.0.1:1", WithRetries(-1), WithMaxBatch(0), WithConns(0))
	for _, want := range []string{"WithRetries", "WithMaxBatch", "WithConns"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New with bad options: %v; want it to name %s", err, want)
		}
	}
}

// TestUnary checks that the raw client reaches the server over every
// connection.
func TestUnary(t *testing.T) {
	f, addr := startFake(t)
	for _, conns := range []int{1, 3} {
		c := newClient(t, addr, WithConns(conns))
		for range 4 {
			if _, err := c.Unary().GetCount(context.Background(), &abacusv1.GetCountRequest{Namespace: "ns", CounterName: "c"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := len(f.calls("GetCount")); n != 8 {
		t.Errorf("%d GetCount RPCs, want 8", n)
	}
}

// TestAttemptTimeout checks that an attempt lost on the server is given up
// after the attempt timeout and retried with the same token, alone and in a
// natural batch (whose slot would otherwise stay taken).
func TestAttemptTimeout(t *testing.T) {
	f, addr := startFake(t)
	c := newClient(t, addr, WithAttemptTimeout(20*time.Millisecond), WithAcceptLimit(time.Minute),
		WithDialOptions(grpc.WithUserAgent("abacus-client-test")))
	lost := func(ctx context.Context, method string, n int) error {
		if n == 1 {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	f.setHook(lost)
	if err := c.AddCount(context.Background(), "ns", "lone", 1); err != nil {
		t.Fatal(err)
	}
	if r := f.calls("AddCount"); len(r) != 2 || tokenOf(r[0]).GetToken() != tokenOf(r[1]).GetToken() {
		t.Fatalf("want a lost attempt and its retry with the same token; got %d requests", len(r))
	}

	release := c.adds.occupy()
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- c.AddCount(context.Background(), "ns", "batched", 1) }()
	}
	eventually(t, "calls to queue", func() bool { return c.adds.queued() == 3 })
	release()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if r := f.calls("AddCounts"); len(r) != 2 || !proto.Equal(r[0].req, r[1].req) {
		t.Fatalf("want a lost batch and its identical retry; got %d AddCounts", len(r))
	}
	if got := f.count("ns", "batched"); got != 3 {
		t.Errorf("count %d, want 3", got)
	}
}
