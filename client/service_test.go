package client

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/abacus-dev/abacus"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// serviceWrites are the writes of Service, each with the RPC it makes
// alone: it returns the token the call reports.
var serviceWrites = []struct {
	method string
	call   func(s abacus.CounterService, tok abacus.Token) (abacus.Token, error)
}{
	{"AddCount", func(s abacus.CounterService, tok abacus.Token) (abacus.Token, error) {
		return s.Add(context.Background(), abacus.AddRequest{Namespace: "ns", Counter: "c", Delta: 2, Token: tok})
	}},
	{"AddAndGetCount", func(s abacus.CounterService, tok abacus.Token) (abacus.Token, error) {
		_, got, err := s.AddAndGet(context.Background(), abacus.AddRequest{Namespace: "ns", Counter: "c", Delta: 2, Token: tok})
		return got, err
	}},
	{"ClearCount", func(s abacus.CounterService, tok abacus.Token) (abacus.Token, error) {
		return s.Clear(context.Background(), abacus.Ref{Namespace: "ns", Counter: "c"}, tok)
	}},
	{"AddCounts", func(s abacus.CounterService, tok abacus.Token) (abacus.Token, error) {
		toks, err := s.AddBatch(context.Background(), []abacus.AddRequest{{Namespace: "ns", Counter: "c", Delta: 2, Token: tok}})
		if len(toks) != 1 {
			return abacus.Token{}, fmt.Errorf("%d tokens for 1 add (err %v)", len(toks), err)
		}
		return toks[0], err
	}},
}

// wireToken returns the token of a write request, whichever its method.
func wireToken(r rpc) *abacusv1.IdempotencyToken {
	if m, ok := r.req.(*abacusv1.AddCountsRequest); ok {
		return m.GetAdds()[0].GetIdempotencyToken()
	}
	return tokenOf(r)
}

// TestServiceTokens fails the first attempt of every write and checks that
// each attempt carries the caller's token exactly, or, without one, a token
// of the client's (a UUID and its clock's time), and that the call returns
// the token it sent.
func TestServiceTokens(t *testing.T) {
	mine := abacus.Token{ID: "evt-42", Time: time.Date(2024, 10, 5, 14, 48, 0, 500, time.UTC)}
	for _, batching := range []bool{true, false} {
		for _, w := range serviceWrites {
			for _, tok := range []abacus.Token{mine, {}} {
				t.Run(fmt.Sprintf("%s/batching=%v/token=%q", w.method, batching, tok.ID), func(t *testing.T) {
					f, addr := startFake(t)
					c := newClient(t, addr, WithClock(fixedClock), WithBatching(batching), WithBestEffortRetries(true))
					f.setHook(func(ctx context.Context, method string, n int) error {
						if n == 1 {
							return status.Error(codes.Unavailable, "apply, then fail")
						}
						return nil
					})
					got, err := w.call(c.Service(), tok)
					if err != nil {
						t.Fatal(err)
					}
					calls := f.calls(w.method)
					if len(calls) != 2 {
						t.Fatalf("%d attempts, want 2", len(calls))
					}
					for i, r := range calls {
						wt := wireToken(r)
						if wt.GetToken() != got.ID || !wt.GetGenerationTime().AsTime().Equal(got.Time) {
							t.Errorf("attempt %d sent (%q, %v), the call returned %+v", i+1, wt.GetToken(), wt.GetGenerationTime().AsTime(), got)
						}
					}
					switch {
					case tok != (abacus.Token{}):
						if got != tok {
							t.Errorf("token %+v, want the caller's %+v", got, tok)
						}
					case w.method == "AddCounts":
						if _, err := uuid.Parse(got.ID[:36]); err != nil || got.ID[36:] != "/0" || !got.Time.Equal(t0) {
							t.Errorf("token %+v, want a UUID/0 at %v", got, t0)
						}
					default:
						if _, err := uuid.Parse(got.ID); err != nil || !got.Time.Equal(t0) {
							t.Errorf("token %+v, want a UUID at %v", got, t0)
						}
					}
					if n := f.count("ns", "c"); w.method != "ClearCount" && n != 2 {
						t.Errorf("count %d, want 2 (applied once)", n)
					}
				})
			}
		}
	}
}

// TestServiceErrors checks the errors of Service: *abacus.Error values with
// the server's code and message, the wire status beneath, and an
// *AmbiguousError around them when a write may have been applied.
func TestServiceErrors(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "store down")
	tests := []struct {
		name      string
		opts      []Option
		answers   []error // per attempt; the last one repeats
		attempts  int
		code      abacus.Code
		msg       string
		wire      codes.Code
		ambiguous bool
	}{
		{"refused", nil, []error{status.Error(codes.NotFound, `namespace "ns" not found`)},
			1, abacus.NotFound, `namespace "ns" not found`, codes.NotFound, false},
		{"retries exhausted", []Option{WithRetries(2)}, []error{unavailable},
			3, abacus.Unavailable, "store down", codes.Unavailable, true},
		{"internal", nil, []error{status.Error(codes.Internal, "internal error (logged on the server)")},
			1, abacus.Internal, "internal error (logged on the server)", codes.Internal, true},
		{"a code abacus does not have", nil, []error{status.Error(codes.Unimplemented, "unknown method")},
			1, abacus.Internal, "unknown method", codes.Unimplemented, false},
		{"settled after an unknown attempt", nil, []error{unavailable, status.Error(codes.FailedPrecondition, "too late")},
			2, abacus.FailedPrecondition, "too late", codes.FailedPrecondition, false},
		{"kept ambiguous after an unknown attempt", []Option{WithKeepAmbiguous(true)}, []error{unavailable, status.Error(codes.FailedPrecondition, "too late")},
			2, abacus.FailedPrecondition, "too late", codes.FailedPrecondition, true},
		{"kept ambiguous, refused at once", []Option{WithKeepAmbiguous(true)}, []error{status.Error(codes.FailedPrecondition, "too late")},
			1, abacus.FailedPrecondition, "too late", codes.FailedPrecondition, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, addr := startFake(t)
			c := newClient(t, addr, append([]Option{WithClock(fixedClock), WithBatching(false), WithBestEffortRetries(true)}, tt.opts...)...)
			f.setHook(func(ctx context.Context, method string, n int) error {
				return tt.answers[min(n, len(tt.answers))-1]
			})
			tok := abacus.Token{ID: "t", Time: t0}
			_, err := c.Service().Add(context.Background(), abacus.AddRequest{Namespace: "ns", Counter: "c", Delta: 1, Token: tok})
			if n := len(f.calls("AddCount")); n != tt.attempts {
				t.Errorf("%d attempts, want %d", n, tt.attempts)
			}
			e, ok := errors.AsType[*abacus.Error](err)
			if !ok || e.Code != tt.code || e.Msg != tt.msg {
				t.Fatalf("err = %#v, want an *abacus.Error %v %q", err, tt.code, tt.msg)
			}
			if abacus.ErrorCode(err) != tt.code || abacus.ErrorMessage(err) != tt.msg {
				t.Errorf("ErrorCode, ErrorMessage = %v, %q", abacus.ErrorCode(err), abacus.ErrorMessage(err))
			}
			if status.Code(err) != tt.wire {
				t.Errorf("status.Code = %v, want %v", status.Code(err), tt.wire)
			}
			amb, isAmb := errors.AsType[*AmbiguousError](err)
			if isAmb != tt.ambiguous {
				t.Fatalf("err = %v (%T); ambiguous: want %v", err, err, tt.ambiguous)
			}
			if isAmb && (amb.Token != tok.ID || !amb.Time.Equal(tok.Time) || amb.Err != error(e)) {
				t.Errorf("AmbiguousError %+v, want the key %+v around the *abacus.Error", amb, tok)
			}
			if !isAmb && err != error(e) {
				t.Errorf("err is a %T, want the *abacus.Error itself", err)
			}
		})
	}
}

// TestServiceBestEffort checks that a write with a token of the caller's
// follows the client's BEST_EFFORT rule like any other: sent once unless
// WithBestEffortRetries is on.
func TestServiceBestEffort(t *testing.T) {
	for _, tt := range []struct {
		name      string
		opts      []Option
		attempts  int
		ambiguous bool
	}{
		{"sent once", nil, 1, true},
		{"retried when opted in", []Option{WithBestEffortRetries(true)}, 2, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, addr := startFake(t)
			f.setType("be", abacusv1.CounterType_BEST_EFFORT)
			c := newClient(t, addr, append([]Option{WithBatching(false)}, tt.opts...)...)
			if c.types != nil {
				c.touch("be", time.Now())
				eventually(t, "the lookup of be", func() bool { return typesSettled(c, "be") })
			}
			f.setHook(func(ctx context.Context, method string, n int) error {
				if n == 1 {
					return status.Error(codes.Unavailable, "down")
				}
				return nil
			})
			tok := abacus.Token{ID: "t", Time: time.Now()}
			_, err := c.Service().Add(context.Background(), abacus.AddRequest{Namespace: "be", Counter: "c", Delta: 1, Token: tok})
			if n := len(f.calls("AddCount")); n != tt.attempts {
				t.Errorf("%d attempts, want %d", n, tt.attempts)
			}
			if _, ok := errors.AsType[*AmbiguousError](err); ok != tt.ambiguous {
				t.Errorf("err = %v; ambiguous: want %v", err, tt.ambiguous)
			}
		})
	}
}

// TestServiceBatches checks that AddBatch and GetBatch are one RPC each,
// beyond WithMaxBatch too (AddBatch is all or none), that AddBatch keeps the
// tokens callers gave and assigns the others, and that it returns every
// token beside an ambiguous error.
func TestServiceBatches(t *testing.T) {
	f, addr := startFake(t)
	c := newClient(t, addr, WithClock(fixedClock), WithMaxBatch(2))
	s := c.Service()
	ctx := context.Background()
	mine := abacus.Token{ID: "mine", Time: t0.Add(-time.Second)}
	adds := []abacus.AddRequest{
		{Namespace: "ns", Counter: "a", Delta: 1},
		{Namespace: "ns", Counter: "b", Delta: 2, Token: mine},
		{Namespace: "ns", Counter: "c", Delta: 3},
	}
	toks, err := s.AddBatch(ctx, adds)
	if err != nil {
		t.Fatal(err)
	}
	calls := f.calls("AddCounts")
	if len(calls) != 1 {
		t.Fatalf("%d AddCounts RPCs, want 1", len(calls))
	}
	sent := calls[0].req.(*abacusv1.AddCountsRequest).GetAdds()
	for i, a := range sent {
		if a.GetIdempotencyToken().GetToken() != toks[i].ID || !a.GetIdempotencyToken().GetGenerationTime().AsTime().Equal(toks[i].Time) {
			t.Errorf("item %d sent %v, returned %+v", i, a.GetIdempotencyToken(), toks[i])
		}
	}
	if toks[1] != mine || toks[0].ID[:36] != toks[2].ID[:36] || toks[0].ID[36:] != "/0" || toks[2].ID[36:] != "/2" || !toks[0].Time.Equal(t0) {
		t.Errorf("tokens %+v: want the caller's for item 1, and PREFIX/i at %v for the others", toks, t0)
	}

	counts, err := s.GetBatch(ctx, []abacus.Ref{{Namespace: "ns", Counter: "c"}, {Namespace: "ns", Counter: "never"}, {Namespace: "ns", Counter: "a"}})
	if err != nil || fmt.Sprint(counts) != "[3 0 1]" {
		t.Errorf("GetBatch = %v, %v; want [3 0 1]", counts, err)
	}
	if n := len(f.calls("GetCounts")); n != 1 {
		t.Errorf("%d GetCounts RPCs, want 1", n)
	}
	if _, err := s.GetBatch(ctx, []abacus.Ref{{Namespace: "missing", Counter: "c"}}); abacus.ErrorCode(err) != abacus.NotFound {
		t.Errorf("GetBatch of a missing namespace: %v, want NotFound", err)
	}

	f.setHook(func(ctx context.Context, method string, n int) error { return status.Error(codes.Internal, "lost") })
	toks, err = s.AddBatch(ctx, adds[1:])
	amb, ok := errors.AsType[*AmbiguousError](err)
	if !ok || len(toks) != 2 || toks[0] != mine || amb.Token != mine.ID || !amb.Time.Equal(mine.Time) {
		t.Errorf("AddBatch after a lost answer: %+v, %v; want both tokens and an *AmbiguousError with the first", toks, err)
	}
}

// TestServiceChecks checks where an invalid request is refused: by the
// client, with the server's own check, when it would join a natural batch,
// and by the server otherwise.
func TestServiceChecks(t *testing.T) {
	for _, tt := range []struct {
		name   string
		call   func(s abacus.CounterService) error
		method string
	}{
		{"zero delta", func(s abacus.CounterService) error {
			_, err := s.Add(context.Background(), abacus.AddRequest{Namespace: "ns", Counter: "c"})
			return err
		}, "AddCount"},
		{"token without a time", func(s abacus.CounterService) error {
			_, err := s.Add(context.Background(), abacus.AddRequest{Namespace: "ns", Counter: "c", Delta: 1, Token: abacus.Token{ID: "t"}})
			return err
		}, "AddCount"},
		{"bad namespace", func(s abacus.CounterService) error {
			_, err := s.Get(context.Background(), abacus.Ref{Namespace: "a b", Counter: "c"})
			return err
		}, "GetCount"},
	} {
		for _, batching := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/batching=%v", tt.name, batching), func(t *testing.T) {
				f, addr := startFake(t)
				c := newClient(t, addr, WithBatching(batching))
				f.setHook(func(ctx context.Context, method string, n int) error {
					return status.Error(codes.InvalidArgument, "refused by the server")
				})
				err := tt.call(c.Service())
				if abacus.ErrorCode(err) != abacus.InvalidArgument {
					t.Fatalf("err = %v, want InvalidArgument", err)
				}
				sent := len(f.calls(tt.method)) > 0
				if sent == batching {
					t.Errorf("sent to the server: %v, want %v (err %v)", sent, !batching, err)
				}
			})
		}
	}
}

// TestServiceClosed checks the error of calls made after Close.
func TestServiceClosed(t *testing.T) {
	_, addr := startFake(t)
	c := newClient(t, addr)
	c.Close()
	_, err := c.Service().Get(context.Background(), abacus.Ref{Namespace: "ns", Counter: "c"})
	if abacus.ErrorCode(err) != abacus.Canceled || !errors.Is(err, ErrClosed) {
		t.Errorf("err = %v, want Canceled wrapping ErrClosed", err)
	}
}

// TestNamespaces checks that Namespaces retries reads and sends writes once.
func TestNamespaces(t *testing.T) {
	ns := &abacusv1.Namespace{Name: "n", CounterType: abacusv1.CounterType_EVENTUAL}
	for _, tt := range []struct {
		method   string
		call     func(c abacusv1.NamespaceServiceClient) error
		attempts int
	}{
		{"ListNamespaces", func(c abacusv1.NamespaceServiceClient) error {
			_, err := c.ListNamespaces(context.Background(), &abacusv1.ListNamespacesRequest{})
			return err
		}, 2},
		{"CreateNamespace", func(c abacusv1.NamespaceServiceClient) error {
			_, err := c.CreateNamespace(context.Background(), &abacusv1.CreateNamespaceRequest{Namespace: ns})
			return err
		}, 1},
		{"UpdateNamespace", func(c abacusv1.NamespaceServiceClient) error {
			_, err := c.UpdateNamespace(context.Background(), &abacusv1.UpdateNamespaceRequest{Namespace: ns})
			return err
		}, 1},
		{"DeleteNamespace", func(c abacusv1.NamespaceServiceClient) error {
			_, err := c.DeleteNamespace(context.Background(), &abacusv1.DeleteNamespaceRequest{Name: "n"})
			return err
		}, 1},
	} {
		t.Run(tt.method, func(t *testing.T) {
			f, addr := startFake(t)
			c := newClient(t, addr, WithHedging(time.Millisecond))
			f.setHook(func(ctx context.Context, method string, n int) error {
				if n == 1 {
					return status.Error(codes.Unavailable, "down")
				}
				return nil
			})
			err := tt.call(c.Namespaces())
			if n := len(f.calls(tt.method)); n != tt.attempts {
				t.Errorf("%d attempts, want %d", n, tt.attempts)
			}
			want := codes.Unavailable // a write's one attempt failed
			if tt.attempts == 2 {
				want = codes.OK
			}
			if status.Code(err) != want {
				t.Errorf("err = %v, want %v", err, want)
			}
		})
	}
	_, addr := startFake(t)
	c := newClient(t, addr)
	c.Close()
	if _, err := c.Namespaces().ListNamespaces(context.Background(), &abacusv1.ListNamespacesRequest{}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}
