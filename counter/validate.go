package counter

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/abacus-dev/abacus"
)

// Limits on names, chosen so that keys stay small in every store and a counter
// name can still carry a URL or a composite id.
const (
	// MaxNamespaceLen is the longest namespace name, in bytes.
	MaxNamespaceLen = 128
	// MaxCounterLen is the longest counter name, in bytes.
	MaxCounterLen = 1024
	// MaxTokenLen is the longest idempotency token, in bytes.
	MaxTokenLen = 256
	// MaxBatch is the most items one AddCounts or GetCounts call may carry.
	MaxBatch = 10000
)

func checkNamespaceName(name string) error {
	if name == "" {
		return abacus.Errorf(abacus.InvalidArgument, "namespace is required")
	}
	if len(name) > MaxNamespaceLen {
		return abacus.Errorf(abacus.InvalidArgument, "namespace is %d bytes long; the limit is %d", len(name), MaxNamespaceLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return abacus.Errorf(abacus.InvalidArgument, "namespace %q has character %q at byte %d; allowed are A-Z a-z 0-9 _ . -", name, rune(c), i)
		}
	}
	return nil
}

// checkText validates a counter name or token: non-empty, valid UTF-8, no
// control characters (they break logs and terminals, and 0x00 separates key
// parts in the stores), at most max bytes.
func checkText(field, s string, max int) error {
	if s == "" {
		return abacus.Errorf(abacus.InvalidArgument, "%s is required", field)
	}
	if len(s) > max {
		return abacus.Errorf(abacus.InvalidArgument, "%s is %d bytes long; the limit is %d", field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return abacus.Errorf(abacus.InvalidArgument, "%s is not valid UTF-8", field)
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return abacus.Errorf(abacus.InvalidArgument, "%s has control character %U at byte %d", field, r, i)
		}
	}
	return nil
}

func checkRef(r Ref) error {
	if err := checkNamespaceName(r.Namespace); err != nil {
		return err
	}
	return checkText("counter_name", r.Counter, MaxCounterLen)
}

// checkToken validates a token the client sent; a zero token is valid (the
// server assigns one).
func checkToken(t Token) error {
	if t == (Token{}) {
		return nil
	}
	if err := checkText("idempotency_token.token", t.ID, MaxTokenLen); err != nil {
		return err
	}
	if t.Time.IsZero() {
		return abacus.Errorf(abacus.InvalidArgument, "idempotency_token.generation_time is required when a token is given")
	}
	return nil
}

func checkAdd(r AddRequest) error {
	if err := checkRef(Ref{r.Namespace, r.Counter}); err != nil {
		return err
	}
	if r.Delta == 0 {
		return abacus.Errorf(abacus.InvalidArgument, "delta must not be zero: a zero add changes nothing (use GetCount to read)")
	}
	return checkToken(r.Token)
}

// indexed prefixes a batch item's error with its position, keeping its code.
func indexed(field string, i int, err error) error {
	return &abacus.Error{Code: abacus.ErrorCode(err), Msg: fmt.Sprintf("%s[%d]: %s", field, i, abacus.ErrorMessage(err)), Err: err}
}
