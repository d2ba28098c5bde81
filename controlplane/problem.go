package controlplane

import (
	"strconv"
	"strings"
	"time"

	"github.com/abacus-dev/abacus"
)

// problem is one rule a namespace breaks. field is the setting's name in the
// native format ("time_partition.seconds_per_slice"), so that ParseFile can
// point at the place in the file where the setting was written.
type problem struct {
	field string
	msg   string
}

func (p problem) String() string { return p.field + ": " + p.msg }

// problemsError returns the problems of the namespace called name as one
// InvalidArgument error, or nil if there are none.
func problemsError(name string, probs []problem) error {
	if len(probs) == 0 {
		return nil
	}
	msgs := make([]string, len(probs))
	for i, p := range probs {
		msgs[i] = p.String()
	}
	return invalid("namespace "+quote(name)+": ", msgs)
}

// invalid joins msgs behind prefix into one InvalidArgument error. The message
// is built here rather than with a %w verb: the list is the client-facing
// message and there is no underlying cause to keep.
func invalid(prefix string, msgs []string) error {
	return &abacus.Error{Code: abacus.InvalidArgument, Msg: prefix + strings.Join(msgs, "; ")}
}

// fmtDur formats d the way a user would write it in a file: "144h" rather
// than time.Duration's "144h0m0s". The result always parses with
// time.ParseDuration.
func fmtDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// protoDur formats d as protobuf's JSON mapping of google.protobuf.Duration
// does: seconds with an "s" suffix ("518400s", "1.5s"). It also parses with
// time.ParseDuration.
func protoDur(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign = "-"
	}
	sec := d / time.Second
	ns := d % time.Second
	if sec < 0 {
		sec = -sec
	}
	if ns < 0 {
		ns = -ns
	}
	s := sign + strconv.FormatInt(int64(sec), 10)
	if ns != 0 {
		frac := strconv.FormatInt(int64(ns)+int64(time.Second), 10)[1:]
		s += "." + strings.TrimRight(frac, "0")
	}
	return s + "s"
}

// quote quotes s for a message, cut short if long: a message must stay
// readable whatever a file or request contains.
func quote(s string) string {
	const max = 128
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

func itoa(i int) string { return strconv.Itoa(i) }
