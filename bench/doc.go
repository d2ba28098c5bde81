// Package bench is the load generator behind "abacus bench": it drives a
// target (abacus over gRPC three ways, or a peer a user would pick instead:
// Redis, memcached, PostgreSQL) with a number of concurrent callers, and
// reports throughput and latency percentiles.
//
// The pieces:
//
//   - Config describes a run: scenario (add, get, mixed, batch), callers,
//     duration or count, warmup, counters and their popularity (uniform or
//     Zipf), and an optional target rate.
//   - Target is one system under test; NewTarget builds one by name (see
//     TargetNames) and Spec adds per-target overrides.
//   - Run drives one target and returns a Result; Compare drives several with
//     interleaved repetitions and returns a Comparison.
//
// Latency is measured open-loop when a rate is given: op i is due at
// start + i/rate, and its latency runs from that due time, not from when a
// caller got round to sending it, so time spent queued behind slow ops is
// counted (the "coordinated omission" that closed-loop generators hide).
// Without a rate the callers run closed-loop, as fast as the target answers,
// which measures peak throughput; latency is then service time only.
//
// Results are plain structs with stable JSON field names (see Result and
// Comparison); the CLI prints them as text tables or as JSON.
package bench
