package embedded

import "github.com/abacus-dev/abacus"

// lastWriteGrid is the resolution of stored last-write times
// (abacus.LastWriteResolution): a counter's 'w' key holds its latest event
// time rounded up to it. The keys are written when the in-memory event log
// is written out, one merge per counter per write-out (memTable.lastWrites),
// and RollupState takes the later of the stored time and the one in memory.
const lastWriteGrid = int64(abacus.LastWriteResolution)

// ceilGrid rounds nanos up to the grid.
func ceilGrid(nanos int64) int64 {
	r := nanos % lastWriteGrid
	switch {
	case r == 0:
		return nanos
	case r < 0:
		return nanos - r
	case nanos > (1<<63-1)-lastWriteGrid:
		return 1<<63 - 1
	default:
		return nanos - r + lastWriteGrid
	}
}
