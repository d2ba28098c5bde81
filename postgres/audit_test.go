package postgres

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct {
		p, want string
		ok      bool
	}{
		{"", "", false},
		{"a", "b", true},
		{"ab", "ac", true},
		{"a\U0010FFFF", "b", true},
		{"a\U0010FFFF\U0010FFFF", "b", true},
		{"\U0010FFFF", "", false},
		{"\uD7FF", "\uE000", true}, // surrogates are skipped
		{"é", "ê", true},
		{"a\x7f", "a\u0080", true}, // one byte to two
	} {
		got, ok := prefixEnd(tc.p)
		if got != tc.want || ok != tc.ok {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q, %v", tc.p, got, ok, tc.want, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if !utf8.ValidString(got) || got <= tc.p {
			t.Errorf("prefixEnd(%q) = %q: not valid UTF-8 after the prefix", tc.p, got)
		}
		// Every extension of the prefix sorts before the end.
		for _, ext := range []string{"", "\x00", "z", "\U0010FFFF\U0010FFFF"} {
			if s := tc.p + ext; s >= got {
				t.Errorf("prefixEnd(%q) = %q, not after %q", tc.p, got, s)
			}
		}
		if strings.HasPrefix(got, tc.p) {
			t.Errorf("prefixEnd(%q) = %q starts with the prefix", tc.p, got)
		}
	}
}
