// Package perf holds Sluice's whole-broker measurements: benchmarks driven
// through a real Kafka client (franz-go) against a running broker. Load
// generation tools (sluice perf) and the side-by-side comparison with other
// brokers come with their own issue.
//
// Benchmarks of single packages live next to their code; this package is for
// measurements of the whole broker.
package perf
