package postgres

import "github.com/abacus-dev/abacus"

// committer group-commits Appends (see groupQueue): a lot holds at most
// MaxBatchEvents events and is written in one transaction (see
// Store.commitGroup).
type committer = groupQueue[[]pendingEvent]

// request is one Append waiting for its group.
type request = groupRequest[[]pendingEvent]

func newCommitter(s *Store) *committer {
	return &committer{s: s, what: "append", limit: s.opts.MaxBatchEvents,
		weight: func(evs []pendingEvent) int { return len(evs) },
		write:  s.commitGroup,
		abandoned: func() error {
			return abacus.Errorf(abacus.Unavailable,
				"postgres: append: not committed within %s (the store is overloaded or the server does not answer); nothing was written", s.opts.Timeout)
		}}
}
