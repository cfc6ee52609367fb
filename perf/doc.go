// Package perf gathers Sluice's performance and compatibility harnesses:
// load generators and end-to-end benchmarks driven through real Kafka
// clients, and the conformance script (conformance.sh) that runs standard
// tools against a live broker.
//
// Benchmarks of single packages live next to their code; this package is for
// measurements of the whole broker.
package perf
