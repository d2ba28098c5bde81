package abacus

import (
	"context"
	"time"
)

// AuditService lists, exports and recounts counters from their events
// [OPS-4]: the audit surface of an event log. The counter service implements
// it; its errors are *Error values as CounterService's are.
type AuditService interface {
	// ListEvents returns a page of one counter's events.
	ListEvents(ctx context.Context, q EventQuery) (EventPage, error)
	// ExportEvents calls fn with consecutive chunks of the events q selects,
	// in order, each with the earliest time whose events are all kept (see
	// EventPage.RetainedFrom); fn's error stops the export and is returned.
	ExportEvents(ctx context.Context, q ExportQuery, fn func(retainedFrom time.Time, events []Event) error) error
	// Recount recomputes a counter's count from its events up to its
	// checkpoint and compares; with repair it rewrites a wrong checkpoint.
	Recount(ctx context.Context, r Ref, repair bool) (RecountResult, error)
	// ListCounters returns a page of a namespace's counters.
	ListCounters(ctx context.Context, q CounterQuery) (CounterPage, error)
}

// Limits of the audit pages.
const (
	// DefaultPageSize is the page size of a query that sets none.
	DefaultPageSize = 100
	// MaxPageSize is the largest page a query may ask for.
	MaxPageSize = 10000
)

// EventQuery selects a page of one counter's events.
type EventQuery struct {
	Ref
	// Range bounds the events by time ([From, To); zero: unbounded), and
	// Reverse lists them newest first.
	Range Range
	// PageSize is the most events per page; 0 means DefaultPageSize.
	PageSize int
	// PageToken is the previous page's NextPageToken; "" for the first.
	PageToken string
}

// EventPage is one page of events.
type EventPage struct {
	Events []Event
	// NextPageToken is "" after the last page.
	NextPageToken string
	// RetainedFrom is the earliest time whose events are all still kept:
	// retention may have deleted earlier ones.
	RetainedFrom time.Time
}

// ExportQuery selects the events of an export.
type ExportQuery struct {
	// Namespace is required; Counter, if set, exports one counter, else
	// every counter of the namespace, by counter name.
	Namespace, Counter string
	// Range bounds the events by time; Reverse is not allowed.
	Range Range
	// ResumeAfter, if set (Counter and ID or Time not zero), is the last
	// event a previous export received: the export continues after it.
	ResumeAfter *Event
}

// RecountResult is what Recount found.
type RecountResult struct {
	// Checkpoint is the stored checkpoint the recount compared with (before
	// any repair).
	Checkpoint Checkpoint
	// Recounted is the count of the events before Checkpoint.Through, on top
	// of the count retention kept of the events it deleted.
	Recounted int64
	// EventsScanned is the number of events read.
	EventsScanned int64
	// Match reports Recounted == Checkpoint.Count.
	Match bool
	// Repaired reports that the checkpoint was rewritten to Recounted.
	Repaired bool
	// RetainedFrom: see EventPage.
	RetainedFrom time.Time
}

// CounterQuery selects a page of a namespace's counters.
type CounterQuery struct {
	Namespace string
	// Prefix, if set, selects the counters whose names start with it.
	Prefix string
	// PageSize is the most counters per page; 0 means DefaultPageSize.
	PageSize  int
	PageToken string
}

// CounterPage is one page of counters.
type CounterPage struct {
	Counters []CounterState
	// NextPageToken is "" after the last page.
	NextPageToken string
}
