// Package perf measures whole brokers through the Kafka protocol. It holds
// two things:
//
// The load generator behind "sluice perf produce|consume|e2e|rtt" (Run). It
// works against any Kafka-compatible broker, drives franz-go (kgo) clients
// and records latencies in HDR histograms:
//
//   - produce sends pre-generated payloads (--record-size, with a chosen
//     --compressibility) as fast as the producer settings allow, and measures
//     throughput and the latency from the send call to the acknowledgement;
//   - consume reads a topic through kgo, or with --raw through Fetch
//     requests built here whose record batches are counted from their
//     headers and never decoded, which measures the broker rather than the
//     client;
//   - e2e produces on a fixed schedule (--rate) and consumes in the same
//     process. Latency runs from each record's scheduled send time, carried
//     in the first 8 bytes of its value, to its receipt, so a producer that
//     falls behind shows in the latencies instead of hiding them
//     (coordinated omission);
//   - rtt sends one request at a time on one client, a kind at a time
//     (Produce with acks=all, Fetch of a record that exists, Metadata,
//     OffsetCommit), and reports the round trip of each kind: the latency
//     of a broker that is otherwise idle, which throughput runs, keeping
//     the broker busy, never show.
//
// Each run ends with a human summary or, with --json, one line holding a
// Result, the interface of benchmark harnesses.
//
// The Go benchmarks (*_bench_test.go, "make bench-micro"): the same client
// workloads against a Sluice broker started in-process, or against
// SLUICE_BENCH_BROKERS, compared across network engines. Benchmarks of
// single packages live next to their code; this package is for
// measurements of the whole broker.
package perf
