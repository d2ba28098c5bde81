package auth

import (
	"crypto/sha256"
	"strings"
	"testing"
)

// FuzzParse: no tokens file or Authorization header makes the parser or
// Authenticate panic, and every parsed file authenticates only its own
// tokens' hashes.
func FuzzParse(f *testing.F) {
	f.Add([]byte("tokens:\n  - {name: a, sha256: "+hashOf("t")+", grants: [{namespaces: ['*'], rights: [read]}]}\n"), "Bearer t")
	f.Add([]byte(`{"tokens":[]}`), "bearer  x ")
	f.Add([]byte("tokens: [{name: b, grants: [{namespaces: [a*b], rights: [x]}]}]"), "Basic x")
	f.Fuzz(func(t *testing.T, file []byte, header string) {
		s, err := Parse(file)
		if err != nil {
			return
		}
		p, err := s.Authenticate(header)
		if err != nil {
			return
		}
		_, tok, _ := strings.Cut(header, " ")
		tok = strings.TrimSpace(tok)
		found := false
		for i, pr := range s.principals {
			if pr == p && s.hashes[i] == sha256.Sum256([]byte(tok)) {
				found = true
			}
		}
		if !found {
			t.Fatalf("header %q authenticated as %q without its hash", header, p.Name)
		}
	})
}
