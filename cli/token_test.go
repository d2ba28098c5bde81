package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestAccessTokenNeverInHelp: the token from $ABACUS_TOKEN is used, but
// help, which prints flag defaults, never shows it.
func TestAccessTokenNeverInHelp(t *testing.T) {
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.lookupEnv = func(k string) (string, bool) {
		if k == tokenEnv {
			return "abacus_SECRETSECRET", true
		}
		return "", false
	}
	if code := a.run(context.Background(), []string{"get", "--help"}); code != ExitOK {
		t.Fatalf("help: %d %s", code, errb.String())
	}
	if strings.Contains(out.String()+errb.String(), "SECRET") {
		t.Errorf("help shows the token:\n%s", out.String())
	}
	opts, err := a.securityOptions()
	if err != nil || len(opts) != 1 {
		t.Errorf("the token from $%s is not used: %d options, %v", tokenEnv, len(opts), err)
	}
}

// TestOldIdempotencyTokenFlag: "add ... --token T --time X", which named
// the idempotency token before --token became the access token, is refused
// instead of counting the write under a new idempotency token.
func TestOldIdempotencyTokenFlag(t *testing.T) {
	for _, args := range [][]string{
		{"add", "views", "home", "1", "--token", "evt-42", "--time", "2024-10-05T14:48:00Z"},
		{"clear", "views", "home", "--token", "evt-42", "--time", "2024-10-05T14:48:00Z"},
	} {
		r := runCLI(t, "127.0.0.1:1", "", args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, "--idempotency-token") {
			t.Errorf("%v: %d %q, want a usage error naming --idempotency-token", args, r.code, r.stderr)
		}
	}
}
