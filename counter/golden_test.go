package counter_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/abacus-dev/abacus"
)

var update = flag.Bool("update", false, "rewrite the .golden files of TestGolden")

// TestGolden replays the scripts in testdata/*.txt — windows and clears at
// their boundaries — and compares every command's result with the .golden
// file beside it. Run with -update to regenerate after an intended change, and
// review the diff.
//
// Script commands (times are offsets from the script's start clock):
//
//	add NS COUNTER DELTA @OFFSET TOKEN   add with a token at start+OFFSET
//	clear NS COUNTER @OFFSET TOKEN       clear with a token
//	get NS COUNTER                       GetCount
//	rollup NS COUNTER                    run one rollup, print caughtUp
//	checkpoint NS COUNTER                print the stored checkpoint
//	tick DURATION                        advance the clock
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			got := runScript(t, file)
			golden := strings.TrimSuffix(file, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func runScript(t *testing.T, file string) string {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fx := newFixture(t, t.TempDir(), testNamespace("acc", abacus.Accurate), testNamespace("ev", abacus.Eventual))
	start := fx.clk.t
	ctx := context.Background()
	var out strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			out.WriteString(sc.Text() + "\n")
			continue
		}
		fields := strings.Fields(line)
		result := func() string {
			at := func(s string) time.Time {
				d, err := time.ParseDuration(strings.TrimPrefix(s, "@"))
				if err != nil {
					t.Fatalf("%s: bad offset %q", line, s)
				}
				return start.Add(d)
			}
			switch fields[0] {
			case "add":
				delta, _ := strconv.ParseInt(fields[3], 10, 64)
				_, err := fx.svc.Add(ctx, abacus.AddRequest{Namespace: fields[1], Counter: fields[2], Delta: delta,
					Token: abacus.Token{ID: fields[5], Time: at(fields[4])}})
				return errString(err, "ok")
			case "clear":
				_, err := fx.svc.Clear(ctx, abacus.Ref{Namespace: fields[1], Counter: fields[2]},
					abacus.Token{ID: fields[4], Time: at(fields[3])})
				return errString(err, "ok")
			case "get":
				n, err := fx.svc.Get(ctx, abacus.Ref{Namespace: fields[1], Counter: fields[2]})
				return errString(err, strconv.FormatInt(n, 10))
			case "rollup":
				ns, _ := fx.svc.GetNamespace(ctx, fields[1])
				caught, err := fx.rollup(ctx, ns, fields[2])
				return errString(err, fmt.Sprintf("caught_up=%v", caught))
			case "checkpoint":
				ns, _ := fx.svc.GetNamespace(ctx, fields[1])
				st, err := fx.store.RollupState(ctx, ns, fields[2])
				n, _ := st.Count.Int64()
				through := "never"
				if !st.Through.IsZero() {
					through = "+" + st.Through.Sub(start).String()
				}
				return errString(err, fmt.Sprintf("count=%d through=%s", n, through))
			case "tick":
				d, err := time.ParseDuration(fields[1])
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				fx.clk.t = fx.clk.t.Add(d)
				return "now=+" + fx.clk.t.Sub(start).String()
			}
			t.Fatalf("unknown command %q", line)
			return ""
		}()
		fmt.Fprintf(&out, "%s\n  -> %s\n", line, result)
	}
	return out.String()
}

// errString renders an error by its code alone, so golden files do not depend
// on message wording or absolute times.
func errString(err error, ok string) string {
	if err != nil {
		return "error " + abacus.ErrorCode(err).String()
	}
	return ok
}
