package cli

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// auditState is what the fake's audit methods serve: each counter's events
// in rollup order and its checkpoint.
type auditState struct {
	events      map[string][]*abacusv1.Event // "ns/counter" → events, in rollup order
	checkpoints map[string]fakeCheckpoint    // "ns/counter" → checkpoint
	// retainedFrom is each namespace's retained_from, if set.
	retainedFrom map[string]time.Time
	// maxPage caps the page sizes of ListEvents and ListCounters (0: none),
	// so that tests see several pages.
	maxPage int
	// chunk is the number of events per ExportEvents message (default 3).
	chunk int
	// exportFaults break the next ExportEvents streams, one each.
	exportFaults []exportFault
}

type fakeCheckpoint struct {
	count int64
	time  time.Time
}

// exportFault makes an ExportEvents stream fail with code, or hang until
// the caller gives up, after sending chunks chunks.
type exportFault struct {
	chunks int
	code   codes.Code
	hang   bool
}

// fail is how a stream with fault f ends after sent chunks.
func (ef *exportFault) fail(ctx context.Context, sent int) error {
	if ef.hang {
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}
	return status.Errorf(ef.code, "injected %s after %d chunks", codeName(ef.code), sent)
}

// addEvents stores events of a counter (keeping rollup order) and returns
// them.
func (f *fake) addEvents(ns, counter string, events ...*abacusv1.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.audit.events == nil {
		f.audit.events = map[string][]*abacusv1.Event{}
	}
	key := ns + "/" + counter
	f.audit.events[key] = append(f.audit.events[key], events...)
	slices.SortFunc(f.audit.events[key], compareEvents)
}

// setCheckpoint sets a counter's checkpoint.
func (f *fake) setCheckpoint(ns, counter string, count int64, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.audit.checkpoints == nil {
		f.audit.checkpoints = map[string]fakeCheckpoint{}
	}
	f.audit.checkpoints[ns+"/"+counter] = fakeCheckpoint{count, at}
}

func (f *fake) checkpoint(ns, counter string) fakeCheckpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.audit.checkpoints[ns+"/"+counter]
}

// scriptExport queues faults for the next ExportEvents streams.
func (f *fake) scriptExport(faults ...exportFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audit.exportFaults = append(f.audit.exportFaults, faults...)
}

func deltaEvent(id string, at time.Time, delta int64) *abacusv1.Event {
	return &abacusv1.Event{EventId: id, GenerationTime: timestamppb.New(at), Kind: &abacusv1.Event_Delta{Delta: delta}}
}

func clearEvent(id string, at time.Time) *abacusv1.Event {
	return &abacusv1.Event{EventId: id, GenerationTime: timestamppb.New(at), Kind: &abacusv1.Event_Clear{Clear: true}}
}

// compareEvents orders one counter's events as rollups apply them: by
// time; at one time deltas before clears; then by event id.
func compareEvents(a, b *abacusv1.Event) int {
	return cmp.Or(
		a.GetGenerationTime().AsTime().Compare(b.GetGenerationTime().AsTime()),
		cmp.Compare(boolInt(a.GetClear()), boolInt(b.GetClear())),
		strings.Compare(a.GetEventId(), b.GetEventId()),
	)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// durable checks that ns exists and keeps events.
func (f *fake) durable(ns string) error {
	n, ok := f.namespaces[ns]
	if !ok {
		return status.Errorf(codes.NotFound, "namespace %q not found", ns)
	}
	if n.GetCounterType() == abacusv1.CounterType_BEST_EFFORT {
		return status.Errorf(codes.FailedPrecondition, "namespace %q is BEST_EFFORT: it keeps no events", ns)
	}
	return nil
}

// inRange reports whether e lies in [start, end).
func inRange(e *abacusv1.Event, start, end *timestamppb.Timestamp) bool {
	t := e.GetGenerationTime().AsTime()
	return (start == nil || !t.Before(start.AsTime())) && (end == nil || t.Before(end.AsTime()))
}

func (f *fake) retained(ns string) *timestamppb.Timestamp {
	if t, ok := f.audit.retainedFrom[ns]; ok {
		return timestamppb.New(t)
	}
	return nil
}

func (f *fake) pageSize(asked int32) int {
	n := int(cmp.Or(asked, 100))
	if f.audit.maxPage > 0 {
		n = min(n, f.audit.maxPage)
	}
	return n
}

func (f *fake) ListEvents(ctx context.Context, req *abacusv1.ListEventsRequest) (*abacusv1.ListEventsResponse, error) {
	return serve(ctx, f, "ListEvents", req, func() (*abacusv1.ListEventsResponse, error) {
		if err := f.durable(req.GetNamespace()); err != nil {
			return nil, err
		}
		if req.GetPageSize() < 0 || req.GetPageSize() > 10000 {
			return nil, status.Errorf(codes.InvalidArgument, "page_size %d", req.GetPageSize())
		}
		var list []*abacusv1.Event
		for _, e := range f.audit.events[req.GetNamespace()+"/"+req.GetCounterName()] {
			if inRange(e, req.GetStartTime(), req.GetEndTime()) {
				list = append(list, e)
			}
		}
		if req.GetOrder() == abacusv1.EventOrder_NEWEST_FIRST {
			list = slices.Clone(list)
			slices.Reverse(list)
		}
		from := 0
		if tok := req.GetPageToken(); tok != "" {
			var err error
			if from, err = strconv.Atoi(tok); err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "bad page_token %q", tok)
			}
		}
		to := min(from+f.pageSize(req.GetPageSize()), len(list))
		resp := &abacusv1.ListEventsResponse{RetainedFrom: f.retained(req.GetNamespace())}
		for _, e := range list[from:to] {
			resp.Events = append(resp.Events, proto.Clone(e).(*abacusv1.Event))
		}
		if to < len(list) {
			resp.NextPageToken = strconv.Itoa(to)
		}
		return resp, nil
	})
}

// counterNames returns the counters of ns with events or a checkpoint, in
// name order.
func (f *fake) counterNames(ns string) []string {
	var names []string
	for _, m := range []map[string]bool{keysOf(f.audit.events), keysOf(f.audit.checkpoints)} {
		for k := range m {
			if c, ok := strings.CutPrefix(k, ns+"/"); ok && !slices.Contains(names, c) {
				names = append(names, c)
			}
		}
	}
	slices.Sort(names)
	return names
}

func keysOf[V any](m map[string]V) map[string]bool {
	keys := map[string]bool{}
	for k := range m {
		keys[k] = true
	}
	return keys
}

func (f *fake) ExportEvents(req *abacusv1.ExportEventsRequest, stream grpc.ServerStreamingServer[abacusv1.ExportEventsResponse]) error {
	type chunk = *abacusv1.ExportEventsResponse
	var fault *exportFault
	chunks, err := serve(stream.Context(), f, "ExportEvents", req, func() ([]chunk, error) {
		if q := f.audit.exportFaults; len(q) > 0 {
			fault, f.audit.exportFaults = &q[0], q[1:]
		}
		if err := f.durable(req.GetNamespace()); err != nil {
			return nil, err
		}
		names := []string{req.GetCounterName()}
		if req.GetCounterName() == "" {
			names = f.counterNames(req.GetNamespace())
		}
		after := req.GetResumeAfter()
		var all []*abacusv1.Event
		for _, name := range names {
			if after != nil && name < after.GetCounterName() {
				continue
			}
			for _, e := range f.audit.events[req.GetNamespace()+"/"+name] {
				if !inRange(e, req.GetStartTime(), req.GetEndTime()) {
					continue
				}
				if after != nil && name == after.GetCounterName() && compareEvents(e, after) <= 0 {
					continue
				}
				e = proto.Clone(e).(*abacusv1.Event)
				e.CounterName = name
				all = append(all, e)
			}
		}
		size := cmp.Or(f.audit.chunk, 3)
		var out []chunk
		for len(all) > 0 {
			n := min(size, len(all))
			out = append(out, &abacusv1.ExportEventsResponse{Events: all[:n]})
			all = all[n:]
		}
		if len(out) > 0 {
			out[0].RetainedFrom = f.retained(req.GetNamespace())
		}
		return out, nil
	})
	if err != nil {
		return err
	}
	for i, c := range chunks {
		if fault != nil && i == fault.chunks {
			return fault.fail(stream.Context(), i)
		}
		if err := stream.Send(c); err != nil {
			return err
		}
	}
	if fault != nil {
		return fault.fail(stream.Context(), len(chunks))
	}
	return nil
}

func (f *fake) Recount(ctx context.Context, req *abacusv1.RecountRequest) (*abacusv1.RecountResponse, error) {
	return serve(ctx, f, "Recount", req, func() (*abacusv1.RecountResponse, error) {
		if err := f.durable(req.GetNamespace()); err != nil {
			return nil, err
		}
		key := req.GetNamespace() + "/" + req.GetCounterName()
		cp := f.audit.checkpoints[key]
		resp := &abacusv1.RecountResponse{CheckpointCount: cp.count, RetainedFrom: f.retained(req.GetNamespace())}
		if !cp.time.IsZero() {
			resp.CheckpointTime = timestamppb.New(cp.time)
			for _, e := range f.audit.events[key] {
				if !e.GetGenerationTime().AsTime().Before(cp.time) {
					break
				}
				resp.EventsScanned++
				if e.GetClear() {
					resp.Recounted = 0
				} else {
					resp.Recounted += e.GetDelta()
				}
			}
		}
		resp.Match = resp.Recounted == resp.CheckpointCount
		if !resp.Match && req.GetRepair() {
			f.audit.checkpoints[key] = fakeCheckpoint{resp.Recounted, cp.time}
			resp.Repaired = true
		}
		return resp, nil
	})
}

func (f *fake) ListCounters(ctx context.Context, req *abacusv1.ListCountersRequest) (*abacusv1.ListCountersResponse, error) {
	return serve(ctx, f, "ListCounters", req, func() (*abacusv1.ListCountersResponse, error) {
		if _, ok := f.namespaces[req.GetNamespace()]; !ok {
			return nil, status.Errorf(codes.NotFound, "namespace %q not found", req.GetNamespace())
		}
		var names []string
		for _, n := range f.counterNames(req.GetNamespace()) {
			if strings.HasPrefix(n, req.GetPrefix()) && n > req.GetPageToken() {
				names = append(names, n)
			}
		}
		resp := &abacusv1.ListCountersResponse{}
		size := f.pageSize(req.GetPageSize())
		if len(names) > size {
			names = names[:size]
			resp.NextPageToken = names[size-1]
		}
		for _, n := range names {
			key := req.GetNamespace() + "/" + n
			info := &abacusv1.CounterInfo{CounterName: n, CheckpointCount: f.audit.checkpoints[key].count}
			if t := f.audit.checkpoints[key].time; !t.IsZero() {
				info.CheckpointTime = timestamppb.New(t)
			}
			if ev := f.audit.events[key]; len(ev) > 0 {
				info.LastWriteTime = ev[len(ev)-1].GetGenerationTime()
			}
			resp.Counters = append(resp.Counters, info)
		}
		return resp, nil
	})
}
