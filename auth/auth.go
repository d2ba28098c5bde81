// Package auth checks access tokens. A tokens file lists, for each token, a
// name (shown in logs and metrics), the SHA-256 of the token (never the
// token itself) and grants of rights on namespaces:
//
//	tokens:
//	  - name: ingest
//	    sha256: 9f86d0...          # lowercase hex of sha256(token)
//	    grants:
//	      - namespaces: ["views", "exp_*"]   # exact names or a trailing * prefix
//	        rights: [write]                  # read | write | admin
//
// Clients send the token as "Authorization: Bearer <token>". A Keeper holds
// the file's current contents and reloads them when the file changes, keeping
// the last good contents when a reload fails.
package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/abacus-dev/abacus"
)

// Right is a set of rights on a namespace.
type Right uint8

// The rights a grant can give.
const (
	// Read: GetCount, GetCounts.
	Read Right = 1 << iota
	// Write: AddCount, AddCounts, ClearCount (AddAndGetCount needs Read too).
	Write
	// Admin: the NamespaceService methods.
	Admin
)

var rightNames = []struct {
	r    Right
	name string
}{{Read, "read"}, {Write, "write"}, {Admin, "admin"}}

// String returns the rights as the file spells them, joined by "+".
func (r Right) String() string {
	var names []string
	for _, rn := range rightNames {
		if r&rn.r != 0 {
			names = append(names, rn.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "+")
}

// ParseRight parses one right as the file spells it.
func ParseRight(s string) (Right, error) {
	for _, rn := range rightNames {
		if s == rn.name {
			return rn.r, nil
		}
	}
	return 0, fmt.Errorf("unknown right %q: want read, write or admin", s)
}

// File is the tokens file, as YAML or JSON.
type File struct {
	Tokens []Entry `yaml:"tokens" json:"tokens"`
}

// Entry is one token of the file.
type Entry struct {
	// Name identifies the token in logs, metrics and error messages.
	Name string `yaml:"name" json:"name"`
	// SHA256 is the lowercase hex SHA-256 of the token.
	SHA256 string `yaml:"sha256" json:"sha256"`
	// Grants give the token its rights.
	Grants []Grant `yaml:"grants" json:"grants"`
}

// Grant gives Rights on the namespaces matched by Namespaces: exact names,
// or prefixes ending in "*" ("exp_*"; "*" alone matches every namespace).
type Grant struct {
	Namespaces []string `yaml:"namespaces,flow" json:"namespaces"`
	Rights     []string `yaml:"rights,flow" json:"rights"`
}

// Principal is an authenticated token: its name and what it may do.
type Principal struct {
	// Name is the token's name from the file.
	Name   string
	grants []grant
}

type grant struct {
	patterns []string // exact names, or prefixes ending in '*'
	rights   Right
}

func match(pattern, ns string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(ns, prefix)
	}
	return pattern == ns
}

// Rights returns every right p has on namespace ns.
func (p *Principal) Rights(ns string) Right {
	var r Right
	for _, g := range p.grants {
		for _, pat := range g.patterns {
			if match(pat, ns) {
				r |= g.rights
				break
			}
		}
	}
	return r
}

// Can reports whether p has every right in want on namespace ns.
func (p *Principal) Can(ns string, want Right) bool {
	return p.Rights(ns)&want == want
}

// CanEverywhere reports whether p has every right in want on every
// namespace, through a grant on "*": what node-wide operations (profiling)
// need.
func (p *Principal) CanEverywhere(want Right) bool {
	var r Right
	for _, g := range p.grants {
		if slices.Contains(g.patterns, "*") {
			r |= g.rights
		}
	}
	return r&want == want
}

// Set is the parsed contents of a tokens file.
type Set struct {
	hashes     [][sha256.Size]byte
	principals []*Principal
}

// Parse parses and validates a tokens file, YAML or JSON, reporting every
// problem at once. Unknown keys are refused, as are duplicate names and
// hashes, malformed hashes, unknown rights and patterns with a '*' anywhere
// but at the end.
func Parse(data []byte) (*Set, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	var probs []string
	s := &Set{}
	names := map[string]bool{}
	hashes := map[[sha256.Size]byte]bool{}
	for i, e := range f.Tokens {
		at := fmt.Sprintf("tokens[%d]", i)
		if e.Name == "" {
			probs = append(probs, at+".name: required")
		} else if names[e.Name] {
			probs = append(probs, fmt.Sprintf("%s.name: %q is used twice", at, e.Name))
		}
		names[e.Name] = true
		var h [sha256.Size]byte
		raw, err := hex.DecodeString(e.SHA256)
		switch {
		case err != nil || len(raw) != sha256.Size || strings.ToLower(e.SHA256) != e.SHA256:
			probs = append(probs, at+".sha256: want the 64 lowercase hex digits of sha256(token)")
		default:
			copy(h[:], raw)
			if hashes[h] {
				probs = append(probs, at+".sha256: the same hash is listed twice")
			}
			hashes[h] = true
		}
		p := &Principal{Name: e.Name}
		if len(e.Grants) == 0 {
			probs = append(probs, at+".grants: at least one grant is required")
		}
		for j, g := range e.Grants {
			gat := fmt.Sprintf("%s.grants[%d]", at, j)
			var gr grant
			if len(g.Namespaces) == 0 {
				probs = append(probs, gat+".namespaces: required")
			}
			for _, pat := range g.Namespaces {
				if msg := checkPattern(pat); msg != "" {
					probs = append(probs, fmt.Sprintf("%s.namespaces: %q %s", gat, pat, msg))
				}
				gr.patterns = append(gr.patterns, pat)
			}
			if len(g.Rights) == 0 {
				probs = append(probs, gat+".rights: required (read, write, admin)")
			}
			for _, r := range g.Rights {
				right, err := ParseRight(r)
				if err != nil {
					probs = append(probs, gat+".rights: "+err.Error())
				}
				gr.rights |= right
			}
			p.grants = append(p.grants, gr)
		}
		s.hashes = append(s.hashes, h)
		s.principals = append(s.principals, p)
	}
	if len(probs) > 0 {
		return nil, errors.New("tokens file: " + strings.Join(probs, "; "))
	}
	return s, nil
}

// checkPattern returns why pat is not a namespace pattern, or "".
func checkPattern(pat string) string {
	name, prefix := strings.CutSuffix(pat, "*")
	if strings.Contains(name, "*") {
		return "may only end in *"
	}
	if name == "" {
		if prefix {
			return "" // "*": every namespace
		}
		return "is empty"
	}
	if !prefix {
		if err := abacus.CheckNamespaceName(name); err != nil {
			return "is not a namespace name"
		}
	}
	return ""
}

// Load reads and parses a tokens file.
func Load(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Len returns the number of tokens in s.
func (s *Set) Len() int { return len(s.principals) }

// Errors of Authenticate. Their messages never include the token.
var (
	ErrMissing   = errors.New("no access token: send the header Authorization: Bearer <token>")
	ErrMalformed = errors.New("malformed Authorization header: want Bearer <token>")
	ErrUnknown   = errors.New("unknown access token")
)

// Authenticate returns the principal of the token in an Authorization
// header value ("Bearer <token>"). It compares the token's hash with every
// hash of the file, in constant time, without stopping at a match, so its
// timing says nothing of which tokens exist.
func (s *Set) Authenticate(header string) (*Principal, error) {
	if header == "" {
		return nil, ErrMissing
	}
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, ErrMalformed
	}
	h := sha256.Sum256([]byte(token))
	found := -1
	for i := range s.hashes {
		if subtle.ConstantTimeCompare(h[:], s.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil, ErrUnknown
	}
	return s.principals[found], nil
}

// NewToken returns a fresh random token (256 bits, base64url) and the
// lowercase hex of its SHA-256, as the file wants it.
func NewToken() (token, sha256Hex string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	token = "abacus_" + base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(h[:])
}

// ParseGrant parses a grant as the CLI spells it, "NAMESPACES:RIGHTS", each a
// comma-separated list: "views,exp_*:read,write".
func ParseGrant(s string) (Grant, error) {
	nss, rights, ok := strings.Cut(s, ":")
	if !ok {
		return Grant{}, fmt.Errorf("grant %q: want NAMESPACES:RIGHTS, e.g. 'views,exp_*:read,write'", s)
	}
	g := Grant{Namespaces: splitList(nss), Rights: splitList(rights)}
	if len(g.Namespaces) == 0 || len(g.Rights) == 0 {
		return Grant{}, fmt.Errorf("grant %q: want NAMESPACES:RIGHTS, e.g. 'views,exp_*:read,write'", s)
	}
	for _, pat := range g.Namespaces {
		if msg := checkPattern(pat); msg != "" {
			return Grant{}, fmt.Errorf("grant %q: namespace %q %s", s, pat, msg)
		}
	}
	for _, r := range g.Rights {
		if _, err := ParseRight(r); err != nil {
			return Grant{}, fmt.Errorf("grant %q: %w", s, err)
		}
	}
	return g, nil
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// EntryYAML renders e as an item of the file's tokens list, ready to paste
// under "tokens:".
func EntryYAML(e Entry) (string, error) {
	out, err := yaml.Marshal([]Entry{e})
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(string(out), "\n") {
		if line != "" {
			b.WriteString("  " + line)
		}
	}
	return b.String(), nil
}
