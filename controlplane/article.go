package controlplane

import (
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// The article's shape spreads one namespace over three persistence entries,
// one per store, each carrying the settings of the layer that uses it:
// COUNTER_ROLLUP the counter type and rollup queues, EVENT_STORAGE the time
// partitioning, accept limit and retention of the TimeSeries layer.

var (
	articleKeys    = []string{"name", "description", "ttl", "persistence_configuration"}
	persistenceIDs = "CACHE, COUNTER_ROLLUP or EVENT_STORAGE"
	roleKeys       = map[string][]string{
		"CACHE":          {"id", "scope", "physical_storage"},
		"COUNTER_ROLLUP": {"id", "scope", "physical_storage", "counter_cardinality", "counter_type", "config"},
		"EVENT_STORAGE":  {"id", "scope", "physical_storage", "config", "lifecycle_configs"},
	}
)

// article decodes an entry in the article's shape.
func (d *decoder) article(e *entry, pairs []pair) {
	for _, p := range pairs {
		path := join(e.path, p.key)
		switch p.name {
		case "name", "description", "ttl":
			d.common(e, p, path)
		case "persistence_configuration":
			d.persistence(e, p.val, path)
		default:
			if slices.Contains(nativeKeys, p.name) {
				d.errorf(path, "the native key cannot be mixed with persistence_configuration; "+
					"write the namespace in one shape or the other")
				continue
			}
			d.unknown(e.path, p, articleKeys)
		}
	}
	// The article's example has no name: the namespace is the dataset its
	// counter abstraction (COUNTER_ROLLUP) is configured for.
	if _, named := e.src["name"]; !named && e.ns.Storage.Rollup.Dataset != "" && !e.bad["name"] {
		e.ns.Name = e.ns.Storage.Rollup.Dataset
		e.src["name"] = e.src["storage.counter_rollup.dataset"]
	}
}

func (d *decoder) persistence(e *entry, n *yaml.Node, path string) {
	seen := make(map[string]string)
	for i, item := range d.items(n, path) {
		ip := index(path, i)
		if r := deref(item); r.Kind != yaml.MappingNode {
			d.errorf(ip, "expected a persistence entry (a mapping), got %s", kind(r))
			continue
		}
		pairs := d.fields(item, ip)
		j := slicesIndex(pairs, "id")
		if j < 0 {
			d.errorf(ip, "id is required: %s", persistenceIDs)
			continue
		}
		idPath := join(ip, pairs[j].key)
		id, ok := d.str(pairs[j].val, idPath)
		if !ok {
			continue
		}
		r := roleByID(id)
		if r == nil {
			d.errorf(idPath, "unknown id %s; want %s", quote(id), persistenceIDs)
			continue
		}
		if prev, dup := seen[id]; dup {
			d.errorf(idPath, "duplicate %s entry (also %s)", id, prev)
			continue
		}
		seen[id] = ip
		for _, p := range pairs {
			pp := join(ip, p.key)
			switch {
			case p.name == "id":
			case p.name == "scope":
				d.scope(r, p.val, pp)
			case p.name == "physical_storage":
				d.physical(e, r, p.val, pp)
			case r.id == "COUNTER_ROLLUP" && (p.name == "counter_type" || p.name == "counter_cardinality"):
				d.counterSetting(e, p, pp)
			case r.id == "COUNTER_ROLLUP" && p.name == "config":
				d.rollupConfig(e, p.val, pp)
			case r.id == "EVENT_STORAGE" && p.name == "config":
				d.eventConfig(e, p.val, pp)
			case r.id == "EVENT_STORAGE" && p.name == "lifecycle_configs":
				d.lifecycle(e, p.val, pp)
			default:
				d.unknown(ip, p, roleKeys[r.id])
			}
		}
	}
}

// scope checks an entry's scope: in the article each entry says which
// abstraction layer reads it (the counter layer reads CACHE and
// COUNTER_ROLLUP, the TimeSeries layer EVENT_STORAGE). abacus is both layers
// in one process, so the scope selects nothing; a scope naming another layer
// is refused, since the entry would not configure what its writer meant.
func (d *decoder) scope(r *role, n *yaml.Node, path string) {
	if isNull(n) {
		return
	}
	s, ok := d.str(n, path)
	if ok && s != r.scope {
		d.errorf(path, "scope %s is not the scope of %s; want %q", quote(s), r.id, r.scope)
	}
}

// counterSetting decodes counter_type or counter_cardinality, which the
// article shows in different places of the COUNTER_ROLLUP entry.
func (d *decoder) counterSetting(e *entry, p pair, path string) {
	if p.name == "counter_type" {
		set(d, e, "counter_type", path, p.val, (*decoder).counterType, &e.ns.Type)
	} else {
		set(d, e, "counter_cardinality", path, p.val, (*decoder).cardinality, &e.ns.Cardinality)
	}
}

// rollupConfig decodes COUNTER_ROLLUP's config:
// {counter_type, eventual_counter_config: {internal_config: {queue_config, rollup_batch_count}}}.
func (d *decoder) rollupConfig(e *entry, n *yaml.Node, path string) {
	for _, p := range d.fields(n, path) {
		pp := join(path, p.key)
		switch p.name {
		case "counter_type", "counter_cardinality":
			d.counterSetting(e, p, pp)
		case "eventual_counter_config":
			for _, q := range d.fields(p.val, pp) {
				qp := join(pp, q.key)
				if q.name != "internal_config" {
					d.unknown(pp, q, []string{"internal_config"})
					continue
				}
				for _, r := range d.fields(q.val, qp) {
					rp := join(qp, r.key)
					switch r.name {
					case "queue_config":
						d.queueConfig(e, r.val, rp)
					case "rollup_batch_count":
						set(d, e, "rollup_batch_count", rp, r.val, (*decoder).int, &e.ns.RollupBatchCount)
					default:
						d.unknown(qp, r, []string{"queue_config", "rollup_batch_count"})
					}
				}
			}
		default:
			d.unknown(path, p, []string{"counter_type", "counter_cardinality", "eventual_counter_config"})
		}
	}
}

// eventConfig decodes EVENT_STORAGE's config: {time_partition, accept_limit}.
func (d *decoder) eventConfig(e *entry, n *yaml.Node, path string) {
	for _, p := range d.fields(n, path) {
		pp := join(path, p.key)
		switch p.name {
		case "time_partition":
			d.timePartition(e, p.val, pp)
		case "accept_limit":
			set(d, e, "accept_limit", pp, p.val, (*decoder).duration, &e.ns.AcceptLimit)
		default:
			d.unknown(path, p, []string{"time_partition", "accept_limit"})
		}
	}
}

// lifecycle decodes EVENT_STORAGE's lifecycleConfigs:
// {lifecycleConfig: [{type: retention, config: {close_after, delete_after}}]}.
// Retention is the only lifecycle this build knows.
func (d *decoder) lifecycle(e *entry, n *yaml.Node, path string) {
	for _, p := range d.fields(n, path) {
		pp := join(path, p.key)
		if p.name != "lifecycle_config" {
			d.unknown(path, p, []string{"lifecycle_config"})
			continue
		}
		var seen string
		for i, item := range d.items(p.val, pp) {
			ip := index(pp, i)
			if r := deref(item); r.Kind != yaml.MappingNode {
				d.errorf(ip, "expected a lifecycle config (a mapping), got %s", kind(r))
				continue
			}
			pairs := d.fields(item, ip)
			j := slicesIndex(pairs, "type")
			if j < 0 {
				d.errorf(ip, "type is required: retention")
				continue
			}
			typePath := join(ip, pairs[j].key)
			typ, ok := d.str(pairs[j].val, typePath)
			if !ok {
				continue
			}
			if !strings.EqualFold(typ, "retention") {
				d.errorf(typePath, "unknown lifecycle type %s; want retention", quote(typ))
				continue
			}
			if seen != "" {
				d.errorf(typePath, "duplicate retention (also %s)", seen)
				continue
			}
			seen = ip
			for _, q := range pairs {
				switch q.name {
				case "type":
				case "config":
					d.retention(e, q.val, join(ip, q.key))
				default:
					d.unknown(ip, q, []string{"type", "config"})
				}
			}
		}
	}
}

// slicesIndex returns the index of the pair called name, or -1.
func slicesIndex(pairs []pair, name string) int {
	for i, p := range pairs {
		if p.name == name {
			return i
		}
	}
	return -1
}
