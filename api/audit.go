package api

import (
	"context"
	"math"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/auth"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// timeRange converts start_time and end_time to a Range; unset bounds are
// open.
func timeRange(start, end *timestamppb.Timestamp) (abacus.Range, error) {
	var r abacus.Range
	for _, b := range []struct {
		field string
		ts    *timestamppb.Timestamp
		dst   *time.Time
	}{{"start_time", start, &r.From}, {"end_time", end, &r.To}} {
		if b.ts == nil {
			continue
		}
		if err := b.ts.CheckValid(); err != nil {
			return r, abacus.Errorf(abacus.InvalidArgument, "%s: %v", b.field, err)
		}
		*b.dst = b.ts.AsTime()
	}
	if !r.From.IsZero() && !r.To.IsZero() && !r.From.Before(r.To) {
		return r, abacus.Errorf(abacus.InvalidArgument, "start_time must be before end_time")
	}
	return r, nil
}

func optionalTime(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func eventToProto(e abacus.Event, withCounter bool) *abacusv1.Event {
	p := &abacusv1.Event{EventId: e.ID, GenerationTime: timestamppb.New(e.Time)}
	if e.Clear {
		p.Kind = &abacusv1.Event_Clear{Clear: true}
	} else {
		p.Kind = &abacusv1.Event_Delta{Delta: e.Delta}
	}
	if withCounter {
		p.CounterName = e.Counter
	}
	return p
}

func (o *ops) listEvents(ctx context.Context, r *abacusv1.ListEventsRequest) (*abacusv1.ListEventsResponse, error) {
	if err := o.allow(ctx, "ListEvents", auth.Read, r.GetNamespace()); err != nil {
		return nil, err
	}
	rg, err := timeRange(r.GetStartTime(), r.GetEndTime())
	if err != nil {
		return nil, err
	}
	rg.Reverse = r.GetOrder() == abacusv1.EventOrder_NEWEST_FIRST
	page, err := o.svc.ListEvents(ctx, abacus.EventQuery{
		Ref:   abacus.Ref{Namespace: r.GetNamespace(), Counter: r.GetCounterName()},
		Range: rg, PageSize: int(r.GetPageSize()), PageToken: r.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	res := &abacusv1.ListEventsResponse{
		Events:        make([]*abacusv1.Event, len(page.Events)),
		NextPageToken: page.NextPageToken,
		RetainedFrom:  optionalTime(page.RetainedFrom),
	}
	for i, e := range page.Events {
		res.Events[i] = eventToProto(e, false)
	}
	return res, nil
}

// exportEvents runs an export, calling send with each chunk as a response.
func (o *ops) exportEvents(ctx context.Context, r *abacusv1.ExportEventsRequest, send func(*abacusv1.ExportEventsResponse) error) error {
	if err := o.allow(ctx, "ExportEvents", auth.Read, r.GetNamespace()); err != nil {
		return err
	}
	rg, err := timeRange(r.GetStartTime(), r.GetEndTime())
	if err != nil {
		return err
	}
	q := abacus.ExportQuery{Namespace: r.GetNamespace(), Counter: r.GetCounterName(), Range: rg}
	if ra := r.GetResumeAfter(); ra != nil {
		if err := ra.GetGenerationTime().CheckValid(); err != nil {
			return abacus.Errorf(abacus.InvalidArgument, "resume_after.generation_time: %v", err)
		}
		q.ResumeAfter = &abacus.Event{Counter: ra.GetCounterName(), ID: ra.GetEventId(),
			Time: ra.GetGenerationTime().AsTime(), Clear: ra.GetClear(), Delta: ra.GetDelta()}
	}
	first := true
	return o.svc.ExportEvents(ctx, q, func(kept time.Time, events []abacus.Event) error {
		res := &abacusv1.ExportEventsResponse{Events: make([]*abacusv1.Event, len(events))}
		for i, e := range events {
			res.Events[i] = eventToProto(e, true)
		}
		if first {
			res.RetainedFrom, first = optionalTime(kept), false
		}
		return send(res)
	})
}

func (o *ops) recount(ctx context.Context, r *abacusv1.RecountRequest) (_ *abacusv1.RecountResponse, err error) {
	need := auth.Read
	if r.GetRepair() {
		need |= auth.Admin
		defer func() { o.audit(ctx, "Recount(repair)", r.GetNamespace(), err) }()
	}
	if err := o.allow(ctx, "Recount", need, r.GetNamespace()); err != nil {
		return nil, err
	}
	res, err := o.svc.Recount(ctx, abacus.Ref{Namespace: r.GetNamespace(), Counter: r.GetCounterName()}, r.GetRepair())
	if err != nil {
		return nil, err
	}
	n, ok := res.Checkpoint.Count.Int64()
	if !ok {
		return nil, abacus.Errorf(abacus.OutOfRange, "the checkpoint of %q does not fit in int64", r.GetCounterName())
	}
	return &abacusv1.RecountResponse{
		CheckpointCount: n, Recounted: res.Recounted, EventsScanned: res.EventsScanned,
		CheckpointTime: optionalTime(res.Checkpoint.Through), Match: res.Match, Repaired: res.Repaired,
		RetainedFrom: optionalTime(res.RetainedFrom),
	}, nil
}

func (o *ops) listCounters(ctx context.Context, r *abacusv1.ListCountersRequest) (*abacusv1.ListCountersResponse, error) {
	if err := o.allow(ctx, "ListCounters", auth.Read, r.GetNamespace()); err != nil {
		return nil, err
	}
	page, err := o.svc.ListCounters(ctx, abacus.CounterQuery{Namespace: r.GetNamespace(), Prefix: r.GetPrefix(),
		PageSize: int(r.GetPageSize()), PageToken: r.GetPageToken()})
	if err != nil {
		return nil, err
	}
	res := &abacusv1.ListCountersResponse{Counters: make([]*abacusv1.CounterInfo, len(page.Counters)), NextPageToken: page.NextPageToken}
	for i, c := range page.Counters {
		n := saturated(c.Count)
		res.Counters[i] = &abacusv1.CounterInfo{CounterName: c.Counter, CheckpointCount: n,
			CheckpointTime: optionalTime(c.Through), LastWriteTime: optionalTime(c.LastWrite)}
	}
	return res, nil
}

// saturated is s clamped to int64: one counter whose checkpoint left the
// int64 range (writes refuse to take it there) must not fail a listing.
func saturated(s abacus.Sum) int64 {
	if n, ok := s.Int64(); ok {
		return n
	}
	if s.Hi < 0 {
		return math.MinInt64
	}
	return math.MaxInt64
}
