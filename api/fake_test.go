package api_test

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/abacus-dev/abacus"
)

// fakeService is an in-memory api.Service: counts in a map, namespaces in a
// map, every request recorded, and a scripted error (or panic) that every
// method returns when set. It checks input like the real service does where
// the transports' behaviour depends on it (4xx for bad input in the fuzzers).
type fakeService struct {
	mu         sync.Mutex
	counts     map[abacus.Ref]int64
	namespaces map[string]*abacus.Namespace
	nextID     uint64
	now        time.Time

	err      error  // returned by every method when not nil
	panicMsg string // every method panics with it when not empty

	adds   []abacus.AddRequest // every add seen, batch items included
	clears []abacus.Token      // the token of every clear seen
	nsIn   []*abacus.Namespace // every namespace passed to Create or Update

	getDeadline time.Time // the deadline of the last Get's context, if any
}

func newFake() *fakeService {
	return &fakeService{
		counts:     map[abacus.Ref]int64{},
		namespaces: map[string]*abacus.Namespace{},
		now:        time.Date(2024, 10, 5, 14, 48, 0, 0, time.UTC),
	}
}

// script sets the error every method returns from now on.
func (f *fakeService) script(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// setPanic makes every method panic with msg; "" stops it.
func (f *fakeService) setPanic(msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.panicMsg = msg
}

func (f *fakeService) numAdds() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.adds)
}

func (f *fakeService) lastClear() abacus.Token {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.clears) == 0 {
		return abacus.Token{}
	}
	return f.clears[len(f.clears)-1]
}

func (f *fakeService) lastAdd() abacus.AddRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.adds) == 0 {
		return abacus.AddRequest{}
	}
	return f.adds[len(f.adds)-1]
}

func (f *fakeService) lastNamespace() *abacus.Namespace {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.nsIn) == 0 {
		return nil
	}
	return f.nsIn[len(f.nsIn)-1]
}

// enter is called with f.mu held at the start of every method.
func (f *fakeService) enter() error {
	if f.panicMsg != "" {
		panic(f.panicMsg)
	}
	return f.err
}

func checkAdd(r abacus.AddRequest) error {
	if err := checkRef(abacus.Ref{Namespace: r.Namespace, Counter: r.Counter}); err != nil {
		return err
	}
	if r.Delta == 0 {
		return abacus.Errorf(abacus.InvalidArgument, "delta must not be zero")
	}
	if r.Token.ID != "" && r.Token.Time.IsZero() {
		return abacus.Errorf(abacus.InvalidArgument, "idempotency_token.generation_time is required when a token is given")
	}
	return nil
}

func checkRef(r abacus.Ref) error {
	if r.Namespace == "" {
		return abacus.Errorf(abacus.InvalidArgument, "namespace is required")
	}
	if r.Counter == "" {
		return abacus.Errorf(abacus.InvalidArgument, "counter_name is required")
	}
	return nil
}

// apply adds one checked request, with f.mu held.
func (f *fakeService) apply(r abacus.AddRequest) (int64, abacus.Token, error) {
	ref := abacus.Ref{Namespace: r.Namespace, Counter: r.Counter}
	n := f.counts[ref]
	if (r.Delta > 0 && n > math.MaxInt64-r.Delta) || (r.Delta < 0 && n < math.MinInt64-r.Delta) {
		return 0, abacus.Token{}, abacus.Errorf(abacus.OutOfRange, "count of %s would overflow", r.Counter)
	}
	f.counts[ref] = n + r.Delta
	return n + r.Delta, f.token(r.Token), nil
}

// token returns t, or a server-assigned token for the zero Token.
func (f *fakeService) token(t abacus.Token) abacus.Token {
	if t != (abacus.Token{}) {
		return t
	}
	f.nextID++
	return abacus.Token{ID: fmt.Sprintf("server-%d", f.nextID), Time: f.now}
}

func (f *fakeService) Add(ctx context.Context, r abacus.AddRequest) (abacus.Token, error) {
	_, tok, err := f.AddAndGet(ctx, r)
	return tok, err
}

func (f *fakeService) AddAndGet(_ context.Context, r abacus.AddRequest) (int64, abacus.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.adds = append(f.adds, r)
	if err := f.enter(); err != nil {
		return 0, abacus.Token{}, err
	}
	if err := checkAdd(r); err != nil {
		return 0, abacus.Token{}, err
	}
	return f.apply(r)
}

func (f *fakeService) Get(ctx context.Context, r abacus.Ref) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.getDeadline, _ = ctx.Deadline()
	if err := f.enter(); err != nil {
		return 0, err
	}
	if err := checkRef(r); err != nil {
		return 0, err
	}
	return f.counts[r], nil
}

func (f *fakeService) Clear(_ context.Context, r abacus.Ref, tok abacus.Token) (abacus.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clears = append(f.clears, tok)
	if err := f.enter(); err != nil {
		return abacus.Token{}, err
	}
	if err := checkRef(r); err != nil {
		return abacus.Token{}, err
	}
	delete(f.counts, r)
	return f.token(tok), nil
}

func (f *fakeService) AddBatch(_ context.Context, rs []abacus.AddRequest) ([]abacus.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.adds = append(f.adds, rs...)
	if err := f.enter(); err != nil {
		return nil, err
	}
	for i, r := range rs {
		if err := checkAdd(r); err != nil {
			return nil, abacus.Errorf(abacus.ErrorCode(err), "adds[%d]: %s", i, abacus.ErrorMessage(err))
		}
	}
	toks := make([]abacus.Token, len(rs))
	for i, r := range rs {
		var err error
		if _, toks[i], err = f.apply(r); err != nil {
			return nil, err // not atomic, unlike the real service; no test needs it
		}
	}
	return toks, nil
}

func (f *fakeService) GetBatch(_ context.Context, rs []abacus.Ref) ([]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(); err != nil {
		return nil, err
	}
	out := make([]int64, len(rs))
	for i, r := range rs {
		if err := checkRef(r); err != nil {
			return nil, err
		}
		out[i] = f.counts[r]
	}
	return out, nil
}

func (f *fakeService) CreateNamespace(_ context.Context, ns *abacus.Namespace) (*abacus.Namespace, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nsIn = append(f.nsIn, ns)
	if err := f.enter(); err != nil {
		return nil, err
	}
	if ns.Name == "" {
		return nil, abacus.Errorf(abacus.InvalidArgument, "namespace name is required")
	}
	if _, ok := f.namespaces[ns.Name]; ok {
		return nil, abacus.Errorf(abacus.AlreadyExists, "namespace %q already exists", ns.Name)
	}
	c := *ns
	f.nextID++
	c.ID, c.Created, c.Updated = f.nextID, f.now, f.now
	f.namespaces[c.Name] = &c
	out := c
	return &out, nil
}

func (f *fakeService) GetNamespace(_ context.Context, name string) (*abacus.Namespace, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(); err != nil {
		return nil, err
	}
	ns, ok := f.namespaces[name]
	if !ok {
		return nil, abacus.Errorf(abacus.NotFound, "namespace %q not found", name)
	}
	out := *ns
	return &out, nil
}

func (f *fakeService) ListNamespaces(context.Context) ([]*abacus.Namespace, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(); err != nil {
		return nil, err
	}
	out := make([]*abacus.Namespace, 0, len(f.namespaces))
	for _, ns := range f.namespaces {
		c := *ns
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeService) UpdateNamespace(_ context.Context, ns *abacus.Namespace) (*abacus.Namespace, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nsIn = append(f.nsIn, ns)
	if err := f.enter(); err != nil {
		return nil, err
	}
	old, ok := f.namespaces[ns.Name]
	if !ok {
		return nil, abacus.Errorf(abacus.NotFound, "namespace %q not found", ns.Name)
	}
	c := *ns
	c.ID, c.Created, c.Updated = old.ID, old.Created, f.now.Add(time.Minute)
	f.namespaces[c.Name] = &c
	out := c
	return &out, nil
}

func (f *fakeService) DeleteNamespace(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(); err != nil {
		return err
	}
	if _, ok := f.namespaces[name]; !ok {
		return abacus.Errorf(abacus.NotFound, "namespace %q not found", name)
	}
	delete(f.namespaces, name)
	return nil
}

// The audit methods of the fake know no events: the API tests check the
// transports and rights; the audit itself is tested in package counter and
// against a built abacusd.

func (f *fakeService) ListEvents(context.Context, abacus.EventQuery) (abacus.EventPage, error) {
	return abacus.EventPage{}, nil
}

func (f *fakeService) ExportEvents(_ context.Context, q abacus.ExportQuery, fn func(time.Time, []abacus.Event) error) error {
	return fn(time.Time{}, []abacus.Event{{Counter: q.Counter, ID: "e1", Time: f.now, Delta: 1}})
}

func (f *fakeService) Recount(context.Context, abacus.Ref, bool) (abacus.RecountResult, error) {
	return abacus.RecountResult{Match: true}, nil
}

func (f *fakeService) ListCounters(context.Context, abacus.CounterQuery) (abacus.CounterPage, error) {
	return abacus.CounterPage{}, nil
}
