package cli

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// seedAudit gives the fake's views namespace events and checkpoints:
//
//	home: +1 e1 at 14:48:01, +2 e2 at :02, clear c3 at :03, +4 e4 at
//	      :03.5, -1 e5 at :04; checkpoint 3 at :04.5 (the 5 events
//	      before it count 4 + -1 = 3 after the clear, a match)
//	about: +5 a1 at :01; checkpoint 9 at :02 (a mismatch: recount 5)
//	contact: +1 k1 at :01; no checkpoint (never rolled up)
func seedAudit(f *fake) {
	at := func(s float64) time.Time { return testEpoch.Add(time.Duration(s * float64(time.Second))) }
	f.addEvents("views", "home",
		deltaEvent("e1", at(1), 1), deltaEvent("e2", at(2), 2), clearEvent("c3", at(3)),
		deltaEvent("e4", at(3.5), 4), deltaEvent("e5", at(4), -1))
	f.setCheckpoint("views", "home", 3, at(4.5))
	f.addEvents("views", "about", deltaEvent("a1", at(1), 5))
	f.setCheckpoint("views", "about", 9, at(2))
	f.addEvents("views", "contact", deltaEvent("k1", at(1), 1))
}

// auditCase is one run of the CLI against a fake seeded by seedAudit.
type auditCase struct {
	name  string
	args  []string
	setup func(f *fake)
	code  int
	// stdout is matched exactly unless json is set, whose lines are matched
	// semantically, one document each.
	stdout string
	json   []string
	// stderr is a regexp; empty means stderr must be empty.
	stderr string
	check  func(t *testing.T, f *fake, r result)
}

func runAuditCases(t *testing.T, tests []auditCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			seedAudit(f)
			if tt.setup != nil {
				tt.setup(f)
			}
			addr := f.start(t)
			r := runCLI(t, addr, "", tt.args...)
			if r.code != tt.code {
				t.Errorf("exit status %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			if tt.stderr == "" && r.stderr != "" || tt.stderr != "" && !regexp.MustCompile(tt.stderr).MatchString(r.stderr) {
				t.Errorf("stderr:\n%s\nwant match of %q", r.stderr, tt.stderr)
			}
			if tt.json != nil {
				lines := strings.SplitAfter(r.stdout, "\n")
				lines = lines[:len(lines)-1]
				if len(lines) != len(tt.json) {
					t.Fatalf("stdout has %d lines, want %d:\n%s", len(lines), len(tt.json), r.stdout)
				}
				for i, l := range lines {
					checkJSON(t, l, tt.json[i])
				}
			} else if r.stdout != tt.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, tt.stdout)
			}
			if tt.check != nil {
				tt.check(t, f, r)
			}
		})
	}
}

func TestEvents(t *testing.T) {
	const all = `TIME                            EVENT_ID  DELTA
2024-10-05T14:48:01.000000000Z  e1        1
2024-10-05T14:48:02.000000000Z  e2        2
2024-10-05T14:48:03.000000000Z  c3        clear
2024-10-05T14:48:03.500000000Z  e4        4
2024-10-05T14:48:04.000000000Z  e5        -1
`
	sentPages := func(want ...int32) func(*testing.T, *fake, result) {
		return func(t *testing.T, f *fake, _ result) {
			t.Helper()
			var got []int32
			for _, m := range f.sent("ListEvents") {
				got = append(got, m.(*abacusv1.ListEventsRequest).GetPageSize())
			}
			if !slices.Equal(got, want) {
				t.Errorf("page sizes asked %v, want %v", got, want)
			}
		}
	}
	runAuditCases(t, []auditCase{
		{name: "all", args: []string{"events", "views", "home"}, stdout: all, check: sentPages(1000)},
		{
			name:   "pages",
			args:   []string{"events", "views", "home"},
			setup:  func(f *fake) { f.audit.maxPage = 2 },
			stdout: all,
			check:  sentPages(1000, 1000, 1000),
		},
		{
			name:  "newest first, limit across pages",
			args:  []string{"events", "views", "home", "--newest-first", "--limit", "3"},
			setup: func(f *fake) { f.audit.maxPage = 2 },
			stdout: `TIME                            EVENT_ID  DELTA
2024-10-05T14:48:04.000000000Z  e5        -1
2024-10-05T14:48:03.500000000Z  e4        4
2024-10-05T14:48:03.000000000Z  c3        clear
`,
			check: func(t *testing.T, f *fake, r result) {
				sentPages(3, 1)(t, f, r)
				if o := f.sent("ListEvents")[0].(*abacusv1.ListEventsRequest).GetOrder(); o != abacusv1.EventOrder_NEWEST_FIRST {
					t.Errorf("order %v", o)
				}
			},
		},
		{
			name: "range",
			args: []string{"events", "views", "home", "--from", "2024-10-05T14:48:02Z", "--to", "2024-10-05T16:48:03.5+02:00"},
			stdout: `TIME                            EVENT_ID  DELTA
2024-10-05T14:48:02.000000000Z  e2        2
2024-10-05T14:48:03.000000000Z  c3        clear
`,
			check: func(t *testing.T, f *fake, _ result) {
				req := f.sent("ListEvents")[0].(*abacusv1.ListEventsRequest)
				if !req.GetEndTime().AsTime().Equal(testEpoch.Add(3500 * time.Millisecond)) {
					t.Errorf("end_time %v", req.GetEndTime().AsTime())
				}
			},
		},
		{
			name:   "empty",
			args:   []string{"events", "views", "nothing"},
			stdout: "TIME  EVENT_ID  DELTA\n",
		},
		{
			name:   "retained_from noted on stderr",
			args:   []string{"events", "views", "about"},
			setup:  func(f *fake) { f.audit.retainedFrom = map[string]time.Time{"views": testEpoch} },
			stdout: "TIME                            EVENT_ID  DELTA\n2024-10-05T14:48:01.000000000Z  a1        5\n",
			stderr: `^abacus: note: retention keeps the events from 2024-10-05T14:48:00Z on \(retained_from\); earlier ones may have been deleted: their counts are kept in the checkpoints\n$`,
		},
		{
			name:   "retained_from not noted for a range after it",
			args:   []string{"events", "views", "about", "--from", t0},
			setup:  func(f *fake) { f.audit.retainedFrom = map[string]time.Time{"views": testEpoch} },
			stdout: "TIME                            EVENT_ID  DELTA\n2024-10-05T14:48:01.000000000Z  a1        5\n",
		},
		{
			name:  "json, a page a line, cut by --limit",
			args:  []string{"-o", "json", "events", "views", "home", "--limit", "3"},
			setup: func(f *fake) { f.audit.maxPage = 2; f.audit.retainedFrom = map[string]time.Time{"views": testEpoch} },
			json: []string{
				`{"events":[{"event_id":"e1","generation_time":"2024-10-05T14:48:01Z","delta":"1","counter_name":""},
				 {"event_id":"e2","generation_time":"2024-10-05T14:48:02Z","delta":"2","counter_name":""}],
				 "next_page_token":"2","retained_from":"2024-10-05T14:48:00Z"}`,
				`{"events":[{"event_id":"c3","generation_time":"2024-10-05T14:48:03Z","clear":true,"counter_name":""}],
				 "next_page_token":"","retained_from":"2024-10-05T14:48:00Z"}`,
			},
		},
		{name: "best effort", args: []string{"events", "clicks", "home"}, code: ExitServer,
			stdout: "", stderr: `^abacus: failed_precondition: namespace "clicks" is BEST_EFFORT: it keeps no events\n$`},
		{name: "missing counter", args: []string{"events", "views"}, code: ExitUsage, stderr: `accepts 2 arg\(s\), received 1\nusage: abacus events`},
		{name: "bad from", args: []string{"events", "views", "home", "--from", "yesterday"}, code: ExitUsage, stderr: `--from "yesterday" is not an RFC 3339 time`},
		{name: "empty range", args: []string{"events", "views", "home", "--from", t0, "--to", t0}, code: ExitUsage, stderr: `--from .* is not before --to`},
		{name: "negative limit", args: []string{"events", "views", "home", "--limit", "-1"}, code: ExitUsage, stderr: `--limit must be 0 \(all\) or more, not -1`},
	})
}

func TestCounters(t *testing.T) {
	runAuditCases(t, []auditCase{
		{
			name: "all",
			args: []string{"counters", "views"},
			stdout: `COUNTER  CHECKPOINT_COUNT  CHECKPOINT_TIME         LAST_WRITE_TIME
about    9                 2024-10-05T14:48:02Z    2024-10-05T14:48:01Z
contact  0                 -                       2024-10-05T14:48:01Z
home     3                 2024-10-05T14:48:04.5Z  2024-10-05T14:48:04Z
`,
		},
		{
			name:  "pages, prefix and limit",
			args:  []string{"counters", "views", "--prefix", "ho", "--limit", "1"},
			setup: func(f *fake) { f.addEvents("views", "hose", deltaEvent("h", testEpoch, 1)); f.audit.maxPage = 1 },
			stdout: `COUNTER  CHECKPOINT_COUNT  CHECKPOINT_TIME         LAST_WRITE_TIME
home     3                 2024-10-05T14:48:04.5Z  2024-10-05T14:48:04Z
`,
			check: func(t *testing.T, f *fake, _ result) {
				req := f.sent("ListCounters")[0].(*abacusv1.ListCountersRequest)
				if req.GetPrefix() != "ho" || len(f.sent("ListCounters")) != 1 {
					t.Errorf("sent %v", f.sent("ListCounters"))
				}
			},
		},
		{
			name:  "json, a page a line",
			args:  []string{"counters", "views", "-o", "json"},
			setup: func(f *fake) { f.audit.maxPage = 2 },
			json: []string{
				`{"counters":[{"counter_name":"about","checkpoint_count":"9","checkpoint_time":"2024-10-05T14:48:02Z","last_write_time":"2024-10-05T14:48:01Z"},
				 {"counter_name":"contact","checkpoint_count":"0","checkpoint_time":null,"last_write_time":"2024-10-05T14:48:01Z"}],"next_page_token":"contact"}`,
				`{"counters":[{"counter_name":"home","checkpoint_count":"3","checkpoint_time":"2024-10-05T14:48:04.500Z","last_write_time":"2024-10-05T14:48:04Z"}],"next_page_token":""}`,
			},
		},
		{name: "unknown namespace", args: []string{"counters", "nope"}, code: ExitServer,
			stderr: `^abacus: not_found: namespace "nope" not found\n$`},
		{name: "no namespace", args: []string{"counters"}, code: ExitUsage, stderr: `usage: abacus counters NAMESPACE`},
	})
}

func TestRecount(t *testing.T) {
	const header = "COUNTER  CHECKPOINT_COUNT  RECOUNTED  EVENTS_SCANNED  RESULT\n"
	repaired := func(counter string, want int64) func(*testing.T, *fake, result) {
		return func(t *testing.T, f *fake, _ result) {
			t.Helper()
			if got := f.checkpoint("views", counter).count; got != want {
				t.Errorf("checkpoint of %s is %d, want %d", counter, got, want)
			}
		}
	}
	runAuditCases(t, []auditCase{
		{
			name:   "match",
			args:   []string{"recount", "views", "home"},
			stdout: header + "home     3                 3          5               match\n",
		},
		{
			name:   "mismatch left",
			args:   []string{"recount", "views", "home", "about"},
			code:   ExitServer,
			stdout: header + "home     3                 3          5               match\nabout    9                 5          1               MISMATCH\n",
			stderr: `^abacus: data_loss: 1 counter does not match its events; rerun with --repair to rewrite their checkpoints\n$`,
			check:  repaired("about", 9),
		},
		{
			name:   "repair",
			args:   []string{"recount", "views", "about", "--repair"},
			stdout: "COUNTER  CHECKPOINT_COUNT  RECOUNTED  EVENTS_SCANNED  RESULT\nabout    9                 5          1               repaired\n",
			check: func(t *testing.T, f *fake, r result) {
				repaired("about", 5)(t, f, r)
				if !f.sent("Recount")[0].(*abacusv1.RecountRequest).GetRepair() {
					t.Error("repair not sent")
				}
			},
		},
		{
			name: "all",
			args: []string{"recount", "views", "--all"},
			code: ExitServer,
			setup: func(f *fake) {
				f.audit.maxPage = 1
				f.setCheckpoint("views", "zed", 2, testEpoch) // mismatch: no events
			},
			stdout: header +
				"about    9                 5          1               MISMATCH\n" +
				"contact  0                 0          0               match\n" +
				"home     3                 3          5               match\n" +
				"zed      2                 0          0               MISMATCH\n" +
				"counters checked: 4, mismatches: 2, repaired: 0\n",
			stderr: `^abacus: data_loss: 2 counters do not match their events; rerun with --repair`,
		},
		{
			name:  "all repaired",
			args:  []string{"recount", "views", "--all", "--repair"},
			setup: func(f *fake) { f.setCheckpoint("views", "zed", 2, testEpoch) },
			stdout: header +
				"about    9                 5          1               repaired\n" +
				"contact  0                 0          0               match\n" +
				"home     3                 3          5               match\n" +
				"zed      2                 0          0               repaired\n" +
				"counters checked: 4, mismatches: 2, repaired: 2\n",
			check: repaired("zed", 0),
		},
		{
			name: "all with prefix, json",
			args: []string{"-o", "json", "recount", "views", "--all", "--prefix", "h"},
			json: []string{`{"counter_name":"home","checkpoint_count":"3","recounted":"3","events_scanned":"5","checkpoint_time":"2024-10-05T14:48:04.500Z","match":true,"repaired":false,"retained_from":null}`, `{"counters_checked":1,"mismatches":0,"repaired":0}`},
			check: func(t *testing.T, f *fake, _ result) {
				if p := f.sent("ListCounters")[0].(*abacusv1.ListCountersRequest).GetPrefix(); p != "h" {
					t.Errorf("prefix %q", p)
				}
			},
		},
		{
			name:   "all, empty namespace",
			args:   []string{"recount", "views", "--all", "--prefix", "nothing"},
			stdout: header + "counters checked: 0, mismatches: 0, repaired: 0\n",
		},
		{
			name:   "error stops the walk",
			args:   []string{"recount", "views", "--all", "--retries", "0"},
			setup:  func(f *fake) { f.script("Recount", fault{code: codes.PermissionDenied}) },
			code:   ExitServer,
			stderr: `^abacus: permission_denied: injected permission_denied\n$`,
		},
		{name: "no counter", args: []string{"recount", "views"}, code: ExitUsage, stderr: `give one or more COUNTER names, or --all`},
		{name: "both", args: []string{"recount", "views", "home", "--all"}, code: ExitUsage, stderr: `give COUNTER names or --all, not both`},
		{name: "prefix without all", args: []string{"recount", "views", "home", "--prefix", "h"}, code: ExitUsage, stderr: `--prefix goes with --all`},
		{name: "no namespace", args: []string{"recount"}, code: ExitUsage, stderr: `usage: abacus recount`},
	})
}

// TestAuditReadsRetry checks that the audit reads are retried after
// UNAVAILABLE, as the other reads are.
func TestAuditReadsRetry(t *testing.T) {
	for _, tt := range []struct {
		method string
		args   []string
	}{
		{"ListEvents", []string{"events", "views", "home"}},
		{"ListCounters", []string{"counters", "views"}},
		{"Recount", []string{"recount", "views", "home"}},
	} {
		t.Run(tt.method, func(t *testing.T) {
			f := newFake()
			seedAudit(f)
			addr := f.start(t)
			f.script(tt.method, fault{code: codes.Unavailable})
			r := runCLI(t, addr, "", tt.args...)
			sent := f.sent(tt.method)
			if r.code != ExitOK || len(sent) != 2 || !proto.Equal(sent[0], sent[1]) {
				t.Errorf("exit status %d, stderr %q, %d calls", r.code, r.stderr, len(sent))
			}
		})
	}
}

// TestRecountAllProgress checks that recount --all draws its bar on a
// terminal, and keeps it off stdout.
func TestRecountAllProgress(t *testing.T) {
	f := newFake()
	seedAudit(f)
	addr := f.start(t)
	r := runTerminal(t, addr, "recount", "views", "--all", "--repair")
	// The bar is redrawn at most every 100ms: the first update at least.
	if r.code != ExitOK || !regexp.MustCompile(`recount views: \d counters, \d mismatches, \d repaired`).MatchString(r.stderr) {
		t.Errorf("exit status %d, stderr %q", r.code, r.stderr)
	}
	if !strings.HasSuffix(r.stdout, "counters checked: 3, mismatches: 1, repaired: 1\n") {
		t.Errorf("stdout %q", r.stdout)
	}
	r = runTerminal(t, addr, "recount", "views", "--all", "--no-progress")
	if r.stderr != "" {
		t.Errorf("stderr with --no-progress: %q", r.stderr)
	}
}
