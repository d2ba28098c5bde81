package controlplane

import (
	"strings"
	"testing"

	"github.com/abacus-dev/abacus"
)

func TestRateLimitFile(t *testing.T) {
	head := "namespaces:\n  - name: views\n    counter_type: EVENTUAL\n"
	tests := []struct {
		name, body string
		want       *abacus.RateLimit
		err        string
	}{
		{"absent", "", nil, ""},
		{"all three", "    rate_limit: {requests_per_second: 100, increments_per_second: 2.5e3, burst: 50}\n",
			&abacus.RateLimit{RequestsPerSecond: 100, IncrementsPerSecond: 2500, Burst: 50}, ""},
		{"empty is no limit", "    rate_limit: {}\n", nil, ""},
		{"negative", "    rate_limit: {requests_per_second: -1}\n", nil, "rate_limit.requests_per_second: must be a number ≥ 0"},
		{"burst alone", "    rate_limit: {burst: 5}\n", nil, "rate_limit.burst: needs requests_per_second or increments_per_second"},
		{"unknown key", "    rate_limit: {rps: 5}\n", nil, "expected one of requests_per_second, increments_per_second, burst"},
		{"not a number", "    rate_limit: {requests_per_second: fast}\n", nil, "expected a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nss, err := ParseFile([]byte(head + tt.body))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := nss[0].RateLimit
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Fatalf("RateLimit %+v, want %+v", got, tt.want)
			}
			back, err := ParseFile(MarshalFile(nss))
			if err != nil {
				t.Fatal(err)
			}
			if b := back[0].RateLimit; (b == nil) != (got == nil) || b != nil && *b != *got {
				t.Fatalf("after MarshalFile: %+v, want %+v", b, got)
			}
		})
	}
}

// TestRateLimitUpdate: an update that leaves rate_limit unset keeps it; one
// that sets it replaces it; {} removes it.
func TestRateLimitUpdate(t *testing.T) {
	old := Defaults(abacus.Low)
	old.Name, old.Type = "views", abacus.Eventual
	old.RateLimit = &abacus.RateLimit{RequestsPerSecond: 10}
	if err := Complete(&old); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		set  *abacus.RateLimit
		want *abacus.RateLimit
	}{
		{"unset keeps", nil, &abacus.RateLimit{RequestsPerSecond: 10}},
		{"set replaces", &abacus.RateLimit{IncrementsPerSecond: 5}, &abacus.RateLimit{IncrementsPerSecond: 5}},
		{"{} removes", &abacus.RateLimit{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := abacus.Namespace{Name: "views", RateLimit: tt.set}
			if err := CheckUpdate(&old, &u); err != nil {
				t.Fatal(err)
			}
			if (u.RateLimit == nil) != (tt.want == nil) || u.RateLimit != nil && *u.RateLimit != *tt.want {
				t.Fatalf("RateLimit %+v, want %+v", u.RateLimit, tt.want)
			}
		})
	}
}
