package controlplane

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tailscale/hujson"
	"gopkg.in/yaml.v3"

	"github.com/abacus-dev/abacus"
)

// ParseFile reads a namespaces file with this build's storage types; see
// [Validator.ParseFile].
func ParseFile(data []byte) ([]*abacus.Namespace, error) { return Validator{}.ParseFile(data) }

// ParseFileAt reads the namespaces file at path with this build's storage
// types; see [Validator.ParseFileAt].
func ParseFileAt(path string) ([]*abacus.Namespace, error) { return Validator{}.ParseFileAt(path) }

// ParseFileAt reads the namespaces file at path; see [Validator.ParseFile].
// Errors name the file.
func (v Validator) ParseFileAt(path string) ([]*abacus.Namespace, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, abacus.Wrap(abacus.InvalidArgument, err, "read namespaces file")
	}
	nss, probs := v.parse(data)
	if len(probs) > 0 {
		return nil, invalid("invalid namespaces file "+path+": ", probs)
	}
	return nss, nil
}

// ParseFile reads a namespaces file and returns its namespaces, completed and
// valid (see [Validator.Complete]), in the order of the file.
//
// The file is YAML or JSON (JSON is read as YAML), one document. It holds one key,
// namespaces, a list whose entries each take one of two shapes. (Top-level
// keys starting with "x-" are ignored, as in Compose files, to give YAML
// anchors shared by several namespaces a place to live.)
//
// The native shape is flat and uses the field names of the protobuf message
// abacus.v1.Namespace:
//
//	namespaces:
//	  - name: views
//	    counter_type: EVENTUAL          # BEST_EFFORT, EVENTUAL or ACCURATE (required)
//	    counter_cardinality: LOW        # LOW (default) or HIGH
//	    ttl: 24h
//	    accept_limit: 5s
//	    time_partition: {buckets_per_id: 4, seconds_per_bucket: 600, seconds_per_slice: 86400}
//	    queue_config: {num_queues: 8, coalesce_ms: 1000, capacity_bytes: 16777216}
//	    rollup_batch_count: 32
//	    retention: {close_after: 144h, delete_after: 168h}
//	    storage:
//	      cache: {type: MEMORY}
//	      counter_rollup: {type: EMBEDDED, cluster: local, dataset: views}
//	      event_storage: {type: EMBEDDED, cluster: local, dataset: views}
//	    description: video views
//
// The article's shape, which an entry takes when it has a
// persistence_configuration list, is the control-plane configuration of
// Netflix's Distributed Counter article:
//
//	{"name": "my_dataset",
//	 "persistence_configuration": [
//	   {"id": "CACHE", "physical_storage": {"type": "MEMORY"}},
//	   {"id": "COUNTER_ROLLUP",
//	    "physical_storage": {"type": "EMBEDDED", "cluster": "local", "dataset": "my_dataset"},
//	    "counter_cardinality": "LOW",
//	    "config": {"counter_type": "EVENTUAL",
//	      "eventual_counter_config": {"internal_config": {
//	        "queue_config": {"num_queues": 8, "coalesce_ms": 10000, "capacity_bytes": 16777216},
//	        "rollup_batch_count": 32}}}},
//	   {"id": "EVENT_STORAGE",
//	    "physical_storage": {"type": "EMBEDDED", "cluster": "local", "dataset": "my_dataset"},
//	    "config": {
//	      "time_partition": {"buckets_per_id": 4, "seconds_per_bucket": "600", "seconds_per_slice": "86400"},
//	      "accept_limit": "5s"},
//	    "lifecycleConfigs": {"lifecycleConfig": [
//	      {"type": "retention", "config": {"close_after": "518400s", "delete_after": "604800s"}}]}}]}
//
// In it counter_type and counter_cardinality may sit in the COUNTER_ROLLUP
// entry or in its config; ttl and description, which the article does not
// show, sit next to name. Any entry or setting may be left out for its default.
//
// In both shapes integers may be written as numbers or as strings of digits
// ("600"); durations as Go or protobuf duration strings ("5s", "1.5s", "10m",
// "518400s") or as a number of seconds; keys in snake_case or lowerCamelCase
// (bucketsPerId), as protobuf's JSON mapping allows; null means "not set".
// An unknown key is an error, so that a misspelt setting is not silently
// replaced by its default.
//
// ParseFile reports every problem of the file at once (up to a hundred, then
// their number), in one InvalidArgument error, each with its path in the file:
//
//	invalid namespaces file: namespaces[2].persistence_configuration[2].config.accept_limit: invalid duration "5x"; ...
//
// A setting that was left to its default and breaks a rule together with
// another one is named after its entry: `namespaces[0]: retention.close_after (default): ...`.
func (v Validator) ParseFile(data []byte) ([]*abacus.Namespace, error) {
	nss, probs := v.parse(data)
	if len(probs) > 0 {
		return nil, invalid("invalid namespaces file: ", probs)
	}
	return nss, nil
}

// entry is one namespace of a file while it is decoded.
type entry struct {
	ns   abacus.Namespace
	path string
	// src maps a setting's native field name to the path it was written at,
	// so that validation problems point into the file.
	src map[string]string
	// bad holds the fields whose values could not be decoded: they are
	// already reported, and validating their zero value would only add noise.
	bad   map[string]bool
	probs []string
	// skip: the entry is not a mapping, so there is nothing to validate.
	skip bool
}

// set stores the value parse decodes from n into *dst and records where it was
// written. A null n leaves the setting unset. The lenient shape of the article
// lets a few settings be written in two places: the same value twice is fine,
// two different values are a conflict.
func set[T comparable](d *decoder, e *entry, field, path string, n *yaml.Node,
	parse func(*decoder, *yaml.Node, string) (T, bool), dst *T) {
	if isNull(n) {
		return
	}
	v, ok := parse(d, n, path)
	if !ok {
		e.bad[field] = true
		return
	}
	if prev, dup := e.src[field]; dup {
		if v != *dst {
			d.errorf(path, "conflicts with the value given at %s", prev)
			e.bad[field] = true
		}
		return
	}
	e.src[field] = path
	*dst = v
}

func (v Validator) parse(data []byte) ([]*abacus.Namespace, []string) {
	doc, err := decodeYAML(normalizeJSON(standardJSON(data)))
	if err != nil {
		return nil, []string{err.Error()}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil // an empty file declares no namespaces
	}
	d := &decoder{}
	var entries []*entry
	root := doc.Content[0]
	if r := deref(root); r.Kind != yaml.MappingNode && !isNull(r) {
		return nil, []string{"expected a mapping with a namespaces list, got " + kind(r)}
	}
	if articleRoot(root) {
		// The article's example pasted on its own: one namespace.
		entries = append(entries, d.entry(root, ""))
	}
	for _, p := range d.fields(root, "") {
		if len(entries) > 0 {
			break
		}
		if strings.HasPrefix(p.key, "x-") {
			continue // an extension field, e.g. a home for YAML anchors
		}
		if p.name != "namespaces" {
			d.unknown("", p, []string{"namespaces"})
			continue
		}
		for i, n := range d.items(p.val, p.key) {
			entries = append(entries, d.entry(n, index(p.key, i)))
		}
	}
	if d.tooBig {
		return nil, []string{"file expands to more than " + itoa(maxNodes) + " YAML nodes (through aliases?)"}
	}

	probs := d.probs
	dropped := d.dropped
	kept := d.kept // problems kept, in probs or in entries' probs
	add := func(msg string) {
		if kept >= maxProblems {
			dropped++
			return
		}
		kept++
		probs = append(probs, msg)
	}
	names := make(map[string]string)
	for _, e := range entries {
		probs = append(probs, e.probs...) // at most maxProblems in all
		if e.skip {
			continue
		}
		if src, ok := e.src["name"]; ok {
			if prev, dup := names[e.ns.Name]; dup {
				add(src + ": duplicate namespace " + quote(e.ns.Name) + " (also " + prev + ")")
			} else {
				names[e.ns.Name] = e.where()
			}
		}
		for _, pr := range v.complete(&e.ns) {
			switch src, ok := e.src[pr.field]; {
			case e.bad[pr.field]:
			case ok:
				add(src + ": " + pr.msg)
			case pr.field == "name" || pr.field == "counter_type" || pr.field == "storage":
				add(e.where() + ": " + pr.String())
			default:
				add(e.where() + ": " + pr.field + " (default): " + pr.msg)
			}
		}
	}
	if dropped > 0 {
		probs = append(probs, "and "+itoa(dropped)+" more problems")
	}
	if len(probs) > 0 {
		return nil, probs
	}
	nss := make([]*abacus.Namespace, len(entries))
	for i, e := range entries {
		nss[i] = &e.ns
	}
	return nss, nil
}

// where names the entry in messages about it as a whole.
func (e *entry) where() string {
	if e.path == "" {
		if e.ns.Name != "" {
			return "namespace " + quote(e.ns.Name)
		}
		return "namespace"
	}
	return e.path
}

// articleRoot reports whether a file's root mapping is itself one namespace
// in the article's shape, as when the article's example is pasted alone.
func articleRoot(root *yaml.Node) bool {
	r := deref(root)
	if r.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i < len(r.Content); i += 2 {
		if k := deref(r.Content[i]); k.Kind == yaml.ScalarNode && snake(k.Value) == "persistence_configuration" {
			return true
		}
	}
	return false
}

// standardJSON returns data as standard JSON when it is JSON with comments
// and trailing commas, as the article prints its configuration (JWCC, read
// by tailscale/hujson), or when it is the bare member the article prints,
// `"persistence_configuration": [...]`, which it wraps in braces. Comments
// and commas become spaces, so positions in messages stay those of the
// file. Anything else, YAML included, is returned unchanged.
func standardJSON(data []byte) []byte {
	if v, err := hujson.Parse(data); err == nil {
		v.Standardize()
		return v.Pack()
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] == '{' || trimmed[0] == '[' {
		return data
	}
	wrapped := make([]byte, 0, len(data)+3)
	wrapped = append(append(append(wrapped, '{'), data...), "\n}"...)
	if v, err := hujson.Parse(wrapped); err == nil {
		v.Standardize()
		return v.Pack()
	}
	return data
}

// decodeYAML parses the single YAML document in data. A second document is
// an error rather than ignored, so that no namespace is silently dropped.
func decodeYAML(data []byte) (yaml.Node, error) {
	var doc, more yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return doc, err
	}
	switch err := dec.Decode(&more); {
	case err == io.EOF:
		return doc, nil
	case err != nil:
		return doc, err
	}
	return doc, errors.New("the file holds several YAML documents; put all namespaces in one")
}

// entry decodes one namespace in either shape.
func (d *decoder) entry(n *yaml.Node, path string) *entry {
	e := &entry{path: path, src: make(map[string]string), bad: make(map[string]bool)}
	outer := d.probs
	d.probs = nil
	defer func() { e.probs, d.probs = d.probs, outer }()

	if r := deref(n); r.Kind != yaml.MappingNode {
		d.errorf(path, "expected a namespace (a mapping), got %s", kind(r))
		e.skip = true
		return e
	}
	pairs := d.fields(n, path)
	if slices.ContainsFunc(pairs, func(p pair) bool { return p.name == "persistence_configuration" }) {
		d.article(e, pairs)
	} else {
		d.native(e, pairs)
	}
	return e
}

var nativeKeys = []string{"name", "counter_type", "counter_cardinality", "ttl", "accept_limit",
	"time_partition", "queue_config", "rollup_batch_count", "retention", "storage", "rate_limit", "description"}

// native decodes an entry in abacus's own shape.
func (d *decoder) native(e *entry, pairs []pair) {
	for _, p := range pairs {
		path := join(e.path, p.key)
		switch p.name {
		case "name", "description", "ttl":
			d.common(e, p, path)
		case "counter_type":
			set(d, e, "counter_type", path, p.val, (*decoder).counterType, &e.ns.Type)
		case "counter_cardinality":
			set(d, e, "counter_cardinality", path, p.val, (*decoder).cardinality, &e.ns.Cardinality)
		case "accept_limit":
			set(d, e, "accept_limit", path, p.val, (*decoder).duration, &e.ns.AcceptLimit)
		case "time_partition":
			d.timePartition(e, p.val, path)
		case "queue_config":
			d.queueConfig(e, p.val, path)
		case "rollup_batch_count":
			set(d, e, "rollup_batch_count", path, p.val, (*decoder).int, &e.ns.RollupBatchCount)
		case "retention":
			d.retention(e, p.val, path)
		case "rate_limit":
			d.rateLimit(e, p.val, path)
		case "storage":
			for _, q := range d.fields(p.val, path) {
				if r := roleByField(q.name); r != nil {
					d.physical(e, r, q.val, join(path, q.key))
				} else {
					d.unknown(path, q, []string{"cache", "counter_rollup", "event_storage"})
				}
			}
		case "create_time", "update_time":
			d.errorf(path, "is output only and cannot be set")
		default:
			d.unknown(e.path, p, nativeKeys)
		}
	}
}

// common decodes the settings both shapes write at the top of an entry.
func (d *decoder) common(e *entry, p pair, path string) {
	switch p.name {
	case "name":
		set(d, e, "name", path, p.val, (*decoder).str, &e.ns.Name)
	case "description":
		set(d, e, "description", path, p.val, (*decoder).str, &e.ns.Description)
	case "ttl":
		set(d, e, "ttl", path, p.val, (*decoder).duration, &e.ns.TTL)
	}
}

func (d *decoder) timePartition(e *entry, n *yaml.Node, path string) {
	p := &e.ns.Partition
	for _, q := range d.fields(n, path) {
		qp := join(path, q.key)
		switch q.name {
		case "buckets_per_id":
			set(d, e, "time_partition.buckets_per_id", qp, q.val, (*decoder).int, &p.BucketsPerID)
		case "seconds_per_bucket":
			set(d, e, "time_partition.seconds_per_bucket", qp, q.val, (*decoder).seconds, &p.BucketWidth)
		case "seconds_per_slice":
			set(d, e, "time_partition.seconds_per_slice", qp, q.val, (*decoder).seconds, &p.SliceWidth)
		default:
			d.unknown(path, q, []string{"buckets_per_id", "seconds_per_bucket", "seconds_per_slice"})
		}
	}
}

func (d *decoder) queueConfig(e *entry, n *yaml.Node, path string) {
	c := &e.ns.Queue
	for _, q := range d.fields(n, path) {
		qp := join(path, q.key)
		switch q.name {
		case "num_queues":
			set(d, e, "queue_config.num_queues", qp, q.val, (*decoder).int, &c.NumQueues)
		case "coalesce_ms":
			set(d, e, "queue_config.coalesce_ms", qp, q.val, (*decoder).millis, &c.Coalesce)
		case "capacity_bytes":
			set(d, e, "queue_config.capacity_bytes", qp, q.val, (*decoder).int64, &c.CapacityBytes)
		default:
			d.unknown(path, q, []string{"num_queues", "coalesce_ms", "capacity_bytes"})
		}
	}
}

// retention decodes {close_after, delete_after}: the native retention, and the
// config of the article's retention lifecycle entry.
func (d *decoder) retention(e *entry, n *yaml.Node, path string) {
	r := &e.ns.Retention
	for _, q := range d.fields(n, path) {
		qp := join(path, q.key)
		switch q.name {
		case "close_after":
			set(d, e, "retention.close_after", qp, q.val, (*decoder).duration, &r.CloseAfter)
		case "delete_after":
			set(d, e, "retention.delete_after", qp, q.val, (*decoder).duration, &r.DeleteAfter)
		default:
			d.unknown(path, q, []string{"close_after", "delete_after"})
		}
	}
}

// rateLimit decodes {requests_per_second, increments_per_second, burst}.
func (d *decoder) rateLimit(e *entry, n *yaml.Node, path string) {
	if isNull(n) {
		return
	}
	if e.ns.RateLimit == nil {
		e.ns.RateLimit = &abacus.RateLimit{}
	}
	r := e.ns.RateLimit
	for _, q := range d.fields(n, path) {
		qp := join(path, q.key)
		switch q.name {
		case "requests_per_second":
			set(d, e, "rate_limit.requests_per_second", qp, q.val, (*decoder).float, &r.RequestsPerSecond)
		case "increments_per_second":
			set(d, e, "rate_limit.increments_per_second", qp, q.val, (*decoder).float, &r.IncrementsPerSecond)
		case "burst":
			set(d, e, "rate_limit.burst", qp, q.val, (*decoder).int, &r.Burst)
		default:
			d.unknown(path, q, []string{"requests_per_second", "increments_per_second", "burst"})
		}
	}
}

// physical decodes {type, cluster, dataset} of the store of role r.
func (d *decoder) physical(e *entry, r *role, n *yaml.Node, path string) {
	ps := r.of(&e.ns.Storage)
	field := "storage." + r.field + "."
	for _, q := range d.fields(n, path) {
		qp := join(path, q.key)
		switch q.name {
		case "type":
			set(d, e, field+"type", qp, q.val, (*decoder).str, &ps.Type)
		case "cluster":
			set(d, e, field+"cluster", qp, q.val, (*decoder).str, &ps.Cluster)
		case "dataset":
			set(d, e, field+"dataset", qp, q.val, (*decoder).str, &ps.Dataset)
		default:
			d.unknown(path, q, []string{"type", "cluster", "dataset"})
		}
	}
}

func (d *decoder) seconds(n *yaml.Node, path string) (time.Duration, bool) {
	return d.scaled(n, path, time.Second)
}

func (d *decoder) millis(n *yaml.Node, path string) (time.Duration, bool) {
	return d.scaled(n, path, time.Millisecond)
}
