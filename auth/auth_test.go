package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func hashOf(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func testFile(t *testing.T) string {
	return `tokens:
  - name: ingest            # shown in logs and metrics, never the token
    sha256: ` + hashOf("ingest-secret") + `
    grants:
      - namespaces: ["views", "exp_*"]   # exact names or a trailing * prefix
        rights: [write]                  # read | write | admin
  - name: ops
    sha256: ` + hashOf("ops-secret") + `
    grants:
      - namespaces: ["*"]
        rights: [read, admin]
`
}

func TestAuthenticateAndRights(t *testing.T) {
	s, err := Parse([]byte(testFile(t)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		header  string
		err     error
		who     string
		ns      string
		rights  Right
		allOver Right
	}{
		{"no header", "", ErrMissing, "", "", 0, 0},
		{"basic auth", "Basic dXNlcjpwYXNz", ErrMalformed, "", "", 0, 0},
		{"bearer without token", "Bearer ", ErrMalformed, "", "", 0, 0},
		{"unknown token", "Bearer nope", ErrUnknown, "", "", 0, 0},
		{"exact name", "Bearer ingest-secret", nil, "ingest", "views", Write, 0},
		{"prefix", "bearer ingest-secret", nil, "ingest", "exp_a", Write, 0},
		{"prefix is not a substring", "Bearer ingest-secret", nil, "ingest", "xexp_a", 0, 0},
		{"exact is not a prefix", "Bearer ingest-secret", nil, "ingest", "views2", 0, 0},
		{"star", "Bearer ops-secret", nil, "ops", "anything", Read | Admin, Read | Admin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.Authenticate(tt.header)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Authenticate: %v, want %v", err, tt.err)
			}
			if err != nil {
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error %q shows the token", err)
				}
				return
			}
			if p.Name != tt.who {
				t.Errorf("name %q, want %q", p.Name, tt.who)
			}
			if got := p.Rights(tt.ns); got != tt.rights {
				t.Errorf("Rights(%q) = %v, want %v", tt.ns, got, tt.rights)
			}
			if !p.Can(tt.ns, tt.rights) || (tt.rights != Read|Write|Admin && p.Can(tt.ns, Read|Write|Admin)) {
				t.Errorf("Can disagrees with Rights %v", tt.rights)
			}
			if got := p.CanEverywhere(Read | Admin); got != (tt.allOver == Read|Admin) {
				t.Errorf("CanEverywhere(read+admin) = %v", got)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	good := hashOf("x")
	tests := []struct {
		name, file string
		want       []string // every one must be in the error
	}{
		{"unknown key", "tokens:\n  - name: a\n    sha256: " + good + "\n    token: x\n    grants: [{namespaces: [a], rights: [read]}]\n", []string{"field token not found"}},
		{"bad hash, bad right, bad pattern, all at once",
			"tokens:\n  - name: a\n    sha256: ABC\n    grants: [{namespaces: [\"a*b\"], rights: [root]}]\n",
			[]string{"tokens[0].sha256", "unknown right \"root\"", "may only end in *"}},
		{"upper-case hash", "tokens:\n  - name: a\n    sha256: " + strings.ToUpper(good) + "\n    grants: [{namespaces: [a], rights: [read]}]\n", []string{"lowercase hex"}},
		{"duplicates", "tokens:\n  - {name: a, sha256: " + good + ", grants: [{namespaces: [a], rights: [read]}]}\n  - {name: a, sha256: " + good + ", grants: [{namespaces: [a], rights: [read]}]}\n",
			[]string{"\"a\" is used twice", "same hash"}},
		{"no grants", "tokens:\n  - {name: a, sha256: " + good + "}\n", []string{"at least one grant"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.file))
			if err == nil {
				t.Fatal("parsed")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestParseJSONAndEmpty(t *testing.T) {
	s, err := Parse([]byte(`{"tokens":[{"name":"a","sha256":"` + hashOf("t") + `","grants":[{"namespaces":["n"],"rights":["read"]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := s.Authenticate("Bearer t"); err != nil || !p.Can("n", Read) {
		t.Fatalf("JSON file: %v", err)
	}
	s, err = Parse(nil)
	if err != nil || s.Len() != 0 {
		t.Fatalf("empty file: %v, %d tokens", err, s.Len())
	}
}

// TestNewTokenRoundTrip: a token made by NewToken, with the entry EntryYAML
// prints for it, authenticates with the rights of its grant.
func TestNewTokenRoundTrip(t *testing.T) {
	tok, hash := NewToken()
	if len(tok) < 32 {
		t.Fatalf("token %q too short for 128 bits", tok)
	}
	if tok2, _ := NewToken(); tok2 == tok {
		t.Fatal("two tokens alike")
	}
	g, err := ParseGrant("views,exp_*:read,write")
	if err != nil {
		t.Fatal(err)
	}
	entry, err := EntryYAML(Entry{Name: "ingest", SHA256: hash, Grants: []Grant{g}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse([]byte("tokens:\n" + entry))
	if err != nil {
		t.Fatalf("%v\n%s", err, entry)
	}
	p, err := s.Authenticate("Bearer " + tok)
	if err != nil || p.Name != "ingest" || !p.Can("exp_1", Read|Write) || p.Can("views", Admin) {
		t.Fatalf("%v %+v", err, p)
	}
	for _, bad := range []string{"views", "views:", ":read", "views:root", "a*b:read"} {
		if _, err := ParseGrant(bad); err == nil {
			t.Errorf("ParseGrant(%q) accepted", bad)
		}
	}
}

// TestKeeperReload: an edited file takes effect on Reload; a broken edit
// keeps the previous tokens.
func TestKeeperReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(testFile(t))
	k, err := NewKeeper(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Authenticate("Bearer ingest-secret"); err != nil {
		t.Fatal(err)
	}
	write("tokens:\n  - {name: new, sha256: " + hashOf("new-secret") + ", grants: [{namespaces: ['*'], rights: [read]}]}\n")
	if err := k.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Authenticate("Bearer ingest-secret"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("removed token: %v", err)
	}
	write("tokens: [broken")
	if err := k.Reload(); err == nil {
		t.Fatal("broken file reloaded")
	}
	if p, err := k.Authenticate("Bearer new-secret"); err != nil || p.Name != "new" {
		t.Fatalf("after a failed reload: %v", err)
	}
}
