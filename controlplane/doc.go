// Package controlplane turns namespace configuration into complete, valid
// abacus.Namespace values [CP-1, CP-2].
//
// It knows three things:
//
//   - Defaults: every zero setting of a namespace takes a default derived from
//     its cardinality (see [Defaults] for the table).
//   - Validation: [Complete] fills the defaults and checks every rule, and
//     [CheckUpdate] also refuses changes to settings that cannot change once
//     counters exist. Both report every problem at once, each with its field
//     name, in one abacus.InvalidArgument error, so a user fixes a
//     configuration in one round trip instead of one error at a time.
//   - Files: [ParseFile] reads a namespaces file in YAML or JSON, whose entries
//     are either in abacus's own flat format or in the control-plane shape of
//     Netflix's Distributed Counter article (a persistence_configuration list).
//
// Which storage types a namespace may name depends on the backends a binary is
// built with; [Supported] lists them and a [Validator] carries the list. The
// package-level functions use this build's set, [DefaultSupported].
//
// The package holds no state: it neither stores namespaces nor watches files.
package controlplane
