package postgres

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/abacus-dev/abacus"
)

// checkText refuses what a PostgreSQL text column cannot hold: a NUL byte or
// invalid UTF-8 (the database encoding is UTF8). The API refuses both long
// before they reach a store, so only a direct caller can meet this.
func checkText(what, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return abacus.Errorf(abacus.InvalidArgument, "%s %q contains a NUL byte", what, s)
	}
	if !utf8.ValidString(s) {
		return abacus.Errorf(abacus.InvalidArgument, "%s %q is not valid UTF-8", what, s)
	}
	return nil
}

func checkCounter(counter string) error {
	if counter == "" {
		return abacus.Errorf(abacus.InvalidArgument, "counter name is required")
	}
	return checkText("counter name", counter)
}

func checkNamespaceCounter(ns *abacus.Namespace, counter string) error {
	if ns == nil {
		return abacus.Errorf(abacus.InvalidArgument, "namespace is required")
	}
	return checkCounter(counter)
}

func nanosTime(n int64) time.Time { return time.Unix(0, n).UTC() }
