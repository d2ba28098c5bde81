package client

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
)

// maxServerBatch is the most items the server accepts in one AddCounts or
// GetCounts call (abacus.MaxBatch); a larger WithMaxBatch could only fail.
const maxServerBatch = 10000

// Option configures a Client; see the With functions.
type Option func(*options)

// options holds every setting of a Client. Each field's default is set by
// defaultOptions and documented on its With function.
type options struct {
	retries        int
	hedge          time.Duration
	batching       bool
	maxBatch       int
	conns          int
	inFlight       int
	dial           []grpc.DialOption
	now            func() time.Time
	attemptTimeout time.Duration
	backoff        time.Duration
	maxBackoff     time.Duration
	directBatch    bool

	bestEffortRetries bool
	typeTTL           time.Duration
	keepAmbiguous     bool

	// dialAny is set when the caller passed dial options of its own
	// (WithDialOptions): they may install interceptors or stats handlers,
	// which see the requests, so natural batches then send the generated
	// messages (see Client.wire).
	dialAny bool
}

func defaultOptions() options {
	return options{
		retries:        3,
		batching:       true,
		maxBatch:       1000,
		conns:          1,
		now:            time.Now,
		attemptTimeout: 2 * time.Second,
		backoff:        20 * time.Millisecond,
		maxBackoff:     time.Second,
		typeTTL:        30 * time.Second,
	}
}

// validate reports every invalid setting at once, so that a caller fixes
// them in one go.
func (o *options) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(o.retries >= 0, "WithRetries(%d): must be ≥ 0", o.retries)
	check(o.hedge >= 0, "WithHedging(%v): must be ≥ 0", o.hedge)
	check(o.maxBatch >= 1 && o.maxBatch <= maxServerBatch, "WithMaxBatch(%d): must be in [1, %d]", o.maxBatch, maxServerBatch)
	check(o.conns >= 1, "WithConns(%d): must be ≥ 1", o.conns)
	check(o.inFlight >= 0, "WithBatchesInFlight(%d): must be ≥ 1", o.inFlight)
	check(o.now != nil, "WithClock(nil): a clock is required")
	check(o.attemptTimeout >= 0, "WithAttemptTimeout(%v): must be ≥ 0", o.attemptTimeout)
	check(o.backoff > 0 && o.maxBackoff >= o.backoff, "WithBackoff(%v, %v): need 0 < initial ≤ max", o.backoff, o.maxBackoff)
	check(o.typeTTL > 0, "WithCounterTypeTTL(%v): must be > 0", o.typeTTL)
	return errors.Join(errs...)
}

// WithRetries sets how many times a call is retried after a failure that
// says the request may not have been served (UNAVAILABLE, an attempt's
// DEADLINE_EXCEEDED, a broken connection). Reads are always retried; a write
// only if its namespace is known to be EVENTUAL or ACCURATE (see
// WithBestEffortRetries). Default 3; 0 disables retries.
func WithRetries(n int) Option { return func(o *options) { o.retries = n } }

// WithHedging sends a second, identical request on the next connection when
// the first has not answered after the given delay; the first answer wins
// and the other request is cancelled. It trades load for tail latency. Reads
// are hedged, and writes to namespaces known to be EVENTUAL or ACCURATE,
// where the shared idempotency token and generation time make the server
// apply the write at most once; writes to BEST_EFFORT namespaces (or of
// unknown type) are not, unless WithBestEffortRetries is on. Default 0: off.
func WithHedging(after time.Duration) Option { return func(o *options) { o.hedge = after } }

// WithBestEffortRetries(true) makes the client retry and hedge writes to
// BEST_EFFORT namespaces, and to namespaces whose type it does not know,
// like any other: the caller accepts that such a write may be counted twice
// (the server does not deduplicate BEST_EFFORT writes by token), for fewer
// failed calls. The client then does not look up counter types at all.
//
// Default false: the client looks up each namespace's counter type (see
// WithCounterTypeTTL) and sends a write to a namespace that is not known to
// be EVENTUAL or ACCURATE once only: no retry, no hedge. Such a write that
// fails after it may have been applied returns an *AmbiguousError.
func WithBestEffortRetries(on bool) Option { return func(o *options) { o.bestEffortRetries = on } }

// WithKeepAmbiguous(true) reports a write as an *AmbiguousError whenever
// an attempt of it may have been applied, even when a retry was then
// refused with ALREADY_EXISTS or FAILED_PRECONDITION. By default the client
// takes such a refusal as settling the outcome (the server answers a late
// retry from the stored event: see the package documentation). A caller
// that would rather have a person rerun the write with its key than trust a
// refusal, or that may talk to a server which refuses late retries without
// looking at the stored event, turns it on. Default false.
func WithKeepAmbiguous(on bool) Option { return func(o *options) { o.keepAmbiguous = on } }

// WithCounterTypeTTL sets how long the client trusts a namespace's counter
// type once it has looked it up (NamespaceService.GetNamespace, over the
// client's connections, in the background of the first write to the
// namespace). The first write after that looks it up again, in the
// background too: a write never waits for a lookup to be sent, and a lookup
// never fails a write. A write is retried or hedged only if its namespace is
// known to be EVENTUAL or ACCURATE; one whose attempt failed (or is due for a
// hedge) while a lookup of its namespace is under way waits for the lookup
// before it decides. A failed lookup keeps the type last known, if any, and
// is tried again after a second at most; a namespace that was not found is
// looked up again after the TTL. The TTL is measured with the clock of
// WithClock, read as writes are stamped. Default 30s.
func WithCounterTypeTTL(d time.Duration) Option { return func(o *options) { o.typeTTL = d } }

// WithBatching turns natural batching of AddCount and GetCount on or off;
// see the package documentation. Default true.
func WithBatching(on bool) Option { return func(o *options) { o.batching = on } }

// WithMaxBatch sets the most items one AddCounts or GetCounts RPC carries,
// for natural batches and for the batch methods alike. Default 1000; at most
// 10000 (the server's limit).
func WithMaxBatch(n int) Option { return func(o *options) { o.maxBatch = n } }

// WithConns sets how many gRPC connections the client opens to the server;
// calls take them in turn. One HTTP/2 connection is served by one reader on
// each side, so a few connections can raise throughput on a busy machine.
// Default 1.
func WithConns(n int) Option { return func(o *options) { o.conns = n } }

// WithBatchesInFlight sets how many natural batches of each kind (adds,
// reads) may be in flight at once. While they are, new calls queue and leave
// together when one returns. More than one keeps the connection busy while
// a batch is being answered, but each RPC costs CPU on both sides: on a
// 2-core machine running client and node, one in flight gave the largest
// batches and the highest throughput. Default: the number of connections.
func WithBatchesInFlight(n int) Option { return func(o *options) { o.inFlight = n } }

// WithDialOptions adds options to grpc.NewClient, after the client's own
// (insecure transport credentials), so that they override them: pass
// grpc.WithTransportCredentials for TLS. As such options may install
// interceptors or stats handlers, which are given the requests, a client
// with any of them sends AddCount and AddCounts requests as the generated
// messages; without, it writes them onto the wire from its own items, which
// costs less (see the package documentation). WithTLS and WithToken are not
// such options.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial, o.dialAny = append(o.dial, opts...), true }
}

// withDial adds dial options of the client's own making (credentials),
// which install no interceptor.
func withDial(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// WithClock sets the clock that stamps generation times, decides when a
// write has grown too old to retry and when a cached counter type expires.
// It is for tests. Default time.Now.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithAcceptLimit once bounded how long a write was retried: the server
// refused every retry after the write's accept window. It now answers such
// a retry from the stored event (see the package doc), so a late retry is
// worth sending and the client no longer stops at the window.
//
// Deprecated: it has no effect; the retries are bounded by WithRetries and
// the caller's context.
func WithAcceptLimit(time.Duration) Option { return func(*options) {} }

// WithAttemptTimeout bounds each attempt of a call, so that a request lost
// on a broken connection is retried instead of waiting for the caller's
// deadline. Natural batches, which no single caller's context bounds, rely
// on it. Default 2s; 0 means no bound besides the context.
func WithAttemptTimeout(d time.Duration) Option { return func(o *options) { o.attemptTimeout = d } }

// WithBackoff sets the pause before the first retry and its cap; the pause
// doubles after every retry, and a random part of it (jitter) spreads the
// retries of many clients. Default 20ms and 1s.
func WithBackoff(initial, max time.Duration) Option {
	return func(o *options) { o.backoff, o.maxBackoff = initial, max }
}

// withDirectBatch makes a lone AddCount or GetCount go out as a batch of one
// (AddCounts/GetCounts) instead of the unary RPC. It exists to measure the
// two against each other.
func withDirectBatch(on bool) Option { return func(o *options) { o.directBatch = on } }
