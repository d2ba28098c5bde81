package memcached

import (
	"context"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/cache/cachetest"
)

// TestDeadServerUnavailable checks that an outage fails fast with Unavailable:
// a refused connection at once, a server that accepts and never answers after
// the short timeout. It needs no memcached.
func TestDeadServerUnavailable(t *testing.T) {
	servers := map[string]string{
		"refused": cachetest.ClosedAddr(t),
		"silent":  cachetest.SilentAddr(t),
	}
	for name, addr := range servers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := New([]string{addr}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cachetest.CheckUnavailable(t, c, 5*time.Second, c.Ping)
		})
	}
}

// TestCanceled checks that a canceled request is reported as Canceled, not as
// an outage.
func TestCanceled(t *testing.T) {
	c, err := New([]string{cachetest.SilentAddr(t)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Add(ctx, "k", 1, time.Minute); abacus.ErrorCode(err) != abacus.Canceled {
		t.Fatalf("Add with a canceled context: %v, want Canceled", err)
	}
}

// TestRecoversAfterRestart checks that the stale idle connections a server
// restart leaves behind fail one call, not one call each.
func TestRecoversAfterRestart(t *testing.T) {
	p := cachetest.NewProxy(t, cachetest.ServerAddr(t, envMemcached))
	c, err := New([]string{p.Addr()}, Options{Prefix: cachetest.KeyPrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cachetest.CheckRecovers(t, c, p)
}
