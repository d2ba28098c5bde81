package controlplane

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/abacus-dev/abacus"
)

// The file decoder walks yaml.v3's node tree by hand instead of unmarshaling
// into structs: that way it can report every problem with its path, accept a
// number or a numeric string alike (protobuf's JSON writes int64 as strings,
// and the article does), and refuse unknown keys, which catches typos that
// would otherwise silently leave a setting at its default.

// maxNodes bounds the nodes one file may expand to. YAML aliases let a small
// file name the same subtree many times; without a bound a few kilobytes could
// keep the decoder busy for minutes.
const maxNodes = 1 << 20

// maxProblems bounds the problems one file reports: past a hundred, more
// detail helps nobody, and a hostile file could otherwise build a huge message.
const maxProblems = 100

// decoder collects the problems of one file.
type decoder struct {
	probs []string
	// kept counts the problems kept in all of probs' incarnations (each
	// entry collects its own); dropped counts those past maxProblems.
	kept, dropped int
	nodes         int
	// tooBig is set once maxNodes is exceeded; decoding then stops quietly
	// and one problem says why.
	tooBig bool
}

func (d *decoder) errorf(path, format string, args ...any) {
	if d.kept >= maxProblems {
		d.dropped++
		return
	}
	d.kept++
	d.probs = append(d.probs, path+": "+fmt.Sprintf(format, args...))
}

// count charges n nodes against maxNodes and reports whether decoding may go on.
func (d *decoder) count(n int) bool {
	d.nodes += n
	if d.nodes > maxNodes {
		d.tooBig = true
	}
	return !d.tooBig
}

// pair is one key of a mapping. name is the key in snake_case, which is what
// the decoder matches: keys may also be written in lowerCamelCase, as
// protobuf's JSON mapping writes them ("bucketsPerId", "lifecycleConfigs").
type pair struct {
	key  string
	name string
	val  *yaml.Node
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// kind names the type of a node for messages.
func kind(n *yaml.Node) string {
	n = deref(n)
	switch {
	case n == nil || n.Kind == 0:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return "a boolean (" + n.Value + ")"
	case "!!int", "!!float":
		return "a number (" + n.Value + ")"
	case "!!str":
		return "a string (" + quote(n.Value) + ")"
	}
	return "a " + n.ShortTag() + " value"
}

// fields returns the keys of the mapping n at path in document order, with
// YAML merge keys ("<<: *defaults") expanded. A null n is an empty mapping.
// It reports a node that is not a mapping, keys that are not strings and
// duplicate keys.
func (d *decoder) fields(n *yaml.Node, path string) []pair {
	return d.mergeFields(n, path, 0)
}

func (d *decoder) mergeFields(n *yaml.Node, path string, depth int) []pair {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(path, "expected a mapping, got %s", kind(n))
		return nil
	}
	if !d.count(1 + len(n.Content)) {
		return nil
	}
	var pairs, merged []pair
	seen := make(map[string]string)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" && depth < 8 {
			merged = append(merged, d.merge(v, path, depth)...)
			continue
		}
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			d.errorf(path, "keys must be strings, got %s", kind(k))
			continue
		}
		p := pair{key: k.Value, name: snake(k.Value), val: v}
		if prev, dup := seen[p.name]; dup {
			d.errorf(join(path, p.key), "duplicate key (also given as %s)", quote(prev))
			continue
		}
		seen[p.name] = p.key
		pairs = append(pairs, p)
	}
	// Keys written in the mapping override merged ones; of two merged
	// mappings, the first wins.
	for _, p := range merged {
		if _, dup := seen[p.name]; !dup {
			seen[p.name] = p.key
			pairs = append(pairs, p)
		}
	}
	return pairs
}

// merge returns the pairs that a merge key's value (a mapping or a list of
// mappings) contributes.
func (d *decoder) merge(v *yaml.Node, path string, depth int) []pair {
	v = deref(v)
	if v.Kind == yaml.SequenceNode {
		if !d.count(len(v.Content)) {
			return nil
		}
		var out []pair
		for _, m := range v.Content {
			out = append(out, d.mergeFields(m, path, depth+1)...)
		}
		return out
	}
	return d.mergeFields(v, path, depth+1)
}

// items returns the elements of the list n at path; a null n is an empty list.
func (d *decoder) items(n *yaml.Node, path string) []*yaml.Node {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(path, "expected a list, got %s", kind(n))
		return nil
	}
	if !d.count(len(n.Content)) {
		return nil
	}
	return n.Content
}

// unknown reports key at path, suggesting the known key it most resembles.
func (d *decoder) unknown(path string, p pair, known []string) {
	best, bestDist := "", 3 // suggest only keys within two edits
	for _, k := range known {
		if dist := editDistance(p.name, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		d.errorf(join(path, p.key), "unknown key; did you mean %q?", best)
		return
	}
	d.errorf(join(path, p.key), "unknown key; expected one of %s", strings.Join(known, ", "))
}

// str decodes a scalar as a string; numbers are taken as written, so that
// `name: 2024` means "2024".
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		d.errorf(path, "expected a string, got %s", kind(n))
		return "", false
	}
	return n.Value, true
}

// int64 decodes an integer written as a YAML/JSON number or as a string of
// decimal digits ("600", as protobuf's JSON writes int64). A float with no
// fractional part (1e6) is accepted too, since JSON encoders may write one.
func (d *decoder) int64(n *yaml.Node, path string) (int64, bool) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!int":
			var v int64
			if err := n.Decode(&v); err == nil {
				return v, true
			}
			d.errorf(path, "invalid integer %s (out of range?)", quote(n.Value))
			return 0, false
		case "!!str":
			v, err := strconv.ParseInt(strings.TrimSpace(n.Value), 10, 64)
			if err == nil {
				return v, true
			}
			d.errorf(path, "invalid integer %s", quote(n.Value))
			return 0, false
		case "!!float":
			var f float64
			if err := n.Decode(&f); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<63 {
				return int64(f), true
			}
			d.errorf(path, "expected an integer, got %s", n.Value)
			return 0, false
		}
	}
	d.errorf(path, "expected an integer, got %s", kind(n))
	return 0, false
}

// float decodes a number.
func (d *decoder) float(n *yaml.Node, path string) (float64, bool) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err == nil {
				return f, true
			}
		case "!!str":
			if f, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64); err == nil {
				return f, true
			}
		}
		d.errorf(path, "expected a number, got %s", quote(n.Value))
		return 0, false
	}
	d.errorf(path, "expected a number, got %s", kind(n))
	return 0, false
}

// int decodes an integer that must fit in an int.
func (d *decoder) int(n *yaml.Node, path string) (int, bool) {
	v, ok := d.int64(n, path)
	if ok && int64(int(v)) != v {
		d.errorf(path, "integer %d out of range", v)
		return 0, false
	}
	return int(v), ok
}

// scaled decodes an integer count of unit (seconds, milliseconds) as a duration.
func (d *decoder) scaled(n *yaml.Node, path string, unit time.Duration) (time.Duration, bool) {
	v, ok := d.int64(n, path)
	if !ok {
		return 0, false
	}
	if v > math.MaxInt64/int64(unit) || v < math.MinInt64/int64(unit) {
		d.errorf(path, "%d is too large", v)
		return 0, false
	}
	return time.Duration(v) * unit, true
}

// duration decodes a duration: a Go or protobuf duration string ("5s",
// "1.5s", "10m", "1h30m", "518400s") or a number of seconds (5, 1.5, "5").
func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str":
			s := strings.TrimSpace(n.Value)
			if dur, err := time.ParseDuration(s); err == nil {
				return dur, true
			}
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				if dur, ok := secondsToDuration(f); ok {
					return dur, true
				}
			}
			d.errorf(path, "invalid duration %s; write e.g. \"5s\", \"1.5s\", \"10m\" or a number of seconds", quote(n.Value))
			return 0, false
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err == nil {
				if dur, ok := secondsToDuration(f); ok {
					return dur, true
				}
			}
			d.errorf(path, "invalid duration %s seconds", n.Value)
			return 0, false
		}
	}
	d.errorf(path, "expected a duration such as \"5s\", got %s", kind(n))
	return 0, false
}

func secondsToDuration(f float64) (time.Duration, bool) {
	ns := math.Round(f * float64(time.Second))
	if math.IsNaN(ns) || ns >= math.MaxInt64 || ns <= math.MinInt64 {
		return 0, false
	}
	return time.Duration(ns), true
}

var (
	counterTypes  = []abacus.CounterType{abacus.CounterTypeUnspecified, abacus.BestEffort, abacus.Eventual, abacus.Accurate}
	cardinalities = []abacus.Cardinality{abacus.CardinalityUnspecified, abacus.Low, abacus.High}
)

// counterType decodes a counter type by its protobuf enum name.
func (d *decoder) counterType(n *yaml.Node, path string) (abacus.CounterType, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return 0, false
	}
	for _, t := range counterTypes {
		if s == t.String() {
			return t, true
		}
	}
	d.errorf(path, "unknown counter type %s; want BEST_EFFORT, EVENTUAL or ACCURATE", quote(s))
	return 0, false
}

// cardinality decodes a cardinality by its protobuf enum name.
func (d *decoder) cardinality(n *yaml.Node, path string) (abacus.Cardinality, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return 0, false
	}
	for _, c := range cardinalities {
		if s == c.String() {
			return c, true
		}
	}
	d.errorf(path, "unknown cardinality %s; want LOW or HIGH", quote(s))
	return 0, false
}

// join appends key to path. Keys that are not plain words are quoted, so a
// path stays readable whatever a file's keys contain.
func join(path, key string) string {
	plain := key != ""
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return path + "[" + quote(key) + "]"
	case path == "":
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// snake converts a lowerCamelCase key to snake_case ("bucketsPerId" to
// "buckets_per_id"); other keys are returned unchanged.
func snake(key string) string {
	if strings.ToLower(key) == key {
		return key
	}
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'A' <= c && c <= 'Z' {
			b.WriteByte('_')
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// editDistance is the Levenshtein distance between a and b, for suggesting
// the key a typo meant.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// normalizeJSON rewrites the string literals of a JSON document so that
// yaml.v3 reads them as JSON does. JSON is YAML, except that yaml.v3 refuses
// some escapes JSON allows ("\/" and UTF-16 surrogate pairs such as
// "\ud83d\ude00") and some characters JSON allows raw in strings (DEL, C1
// controls, U+FFFE). Anything that is not valid JSON is returned unchanged.
func normalizeJSON(data []byte) []byte {
	if !json.Valid(data) {
		return data
	}
	out := make([]byte, 0, len(data))
	for i := 0; i < len(data); {
		if data[i] != '"' {
			out = append(out, data[i])
			i++
			continue
		}
		j := i + 1
		for data[j] != '"' {
			if data[j] == '\\' {
				j++
			}
			j++
		}
		lit := data[i : j+1]
		var s string
		if yamlSafe(lit) || json.Unmarshal(lit, &s) != nil {
			out = append(out, lit...)
		} else {
			out = appendYAMLString(out, s)
		}
		i = j + 1
	}
	return out
}

// yamlPrintable reports whether r stands for itself unescaped in a YAML
// double-quoted string: YAML's printable characters (YAML 1.2, section 5.1)
// less '"', '\\' and the characters yaml.v3 takes for line breaks, which it
// would fold into spaces (NEL, U+2028, U+2029).
func yamlPrintable(r rune) bool {
	switch {
	case r == '"' || r == '\\' || r == 0x85 || r == 0x2028 || r == 0x2029:
		return false
	case r == '\t' || 0x20 <= r && r <= 0x7e:
		return true
	case 0xa0 <= r && r <= 0xd7ff || 0xe000 <= r && r <= 0xfffd:
		return true
	}
	return 0x10000 <= r && r <= 0x10ffff
}

// yamlSafe reports whether a JSON string literal reads the same in YAML: it
// has no escapes and no character YAML refuses raw.
func yamlSafe(lit []byte) bool {
	for _, r := range string(lit[1 : len(lit)-1]) {
		if !yamlPrintable(r) {
			return false
		}
	}
	return true
}

// appendYAMLString appends s as a YAML double-quoted string.
func appendYAMLString(out []byte, s string) []byte {
	out = append(out, '"')
	for _, r := range s {
		switch {
		case yamlPrintable(r):
			out = utf8.AppendRune(out, r)
		case r == '"' || r == '\\':
			out = append(out, '\\', byte(r))
		case r == '\n':
			out = append(out, '\\', 'n')
		case r < 0x10000:
			out = fmt.Appendf(out, "\\u%04x", r)
		default:
			out = fmt.Appendf(out, "\\U%08x", r)
		}
	}
	return append(out, '"')
}
