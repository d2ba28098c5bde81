package redis

import (
	"context"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/cache/cachetest"
)

// TestDeadServerUnavailable checks that an outage fails fast with Unavailable:
// a refused connection at once, a server that accepts and never answers after
// the short timeouts of Dial. It needs no Redis.
func TestDeadServerUnavailable(t *testing.T) {
	servers := map[string]string{
		"refused": cachetest.ClosedAddr(t),
		"silent":  cachetest.SilentAddr(t),
	}
	for name, addr := range servers {
		for _, cluster := range []bool{false, true} {
			mode := "single"
			if cluster {
				mode = "cluster"
			}
			t.Run(name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				c, err := Dial([]string{addr}, cluster, Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				cachetest.CheckUnavailable(t, c, 5*time.Second, c.Ping)
			})
		}
	}
}

// TestCanceled checks that a canceled request is reported as Canceled, not as
// an outage.
func TestCanceled(t *testing.T) {
	c, err := Dial([]string{cachetest.SilentAddr(t)}, false, Options{})
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

// TestRecoversAfterRestart checks that the stale pooled connections a server
// restart leaves behind fail at most one call.
func TestRecoversAfterRestart(t *testing.T) {
	p := cachetest.NewProxy(t, cachetest.ServerAddr(t, envRedis))
	cachetest.CheckRecovers(t, dialTest(t, []string{p.Addr()}, false), p)
}
