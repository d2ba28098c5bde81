package memory

import (
	"testing"

	"github.com/abacus-dev/abacus/cache/cachetest"
)

// TestConformance runs the cache conformance suite. The in-process cache has
// no documented limits beyond being local to one process.
func TestConformance(t *testing.T) {
	cachetest.Run(t, func(*testing.T) cachetest.Cache { return New(Options{}) }, cachetest.Capabilities{Local: true})
}
