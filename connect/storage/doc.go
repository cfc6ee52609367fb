// Package storage keeps a Connect worker's state where Kafka Connect keeps
// it, in Kafka Connect's record formats, so a Sluice worker can take over a
// Kafka Connect cluster's topics (and the other way round):
//
//   - ConfigStore: connector configs, task configs, target states and
//     restart requests in the single-partition compacted config topic
//     (connect-configs), as KafkaConfigBackingStore writes them.
//   - OffsetStore: source offsets, either in the compacted offsets topic
//     (connect-offsets, KafkaOffsetBackingStore's format) or, for standalone
//     workers, in a local file (FileOffsetBackingStore's Java-serialized
//     format, so the file moves between Kafka Connect and Sluice).
//   - StatusStore: connector, task and topic statuses in the compacted status
//     topic (connect-status, KafkaStatusBackingStore's format), or in memory
//     for standalone workers.
//   - Sink offsets, which are the consumer group connect-<name>:
//     SinkOffsets, AlterSinkOffsets, ResetSinkOffsets (ParseSinkOffsets
//     checks a PATCH body; ResetOffsets resets a source connector).
//
// Every store reaches the cluster only through the Kafka protocol
// (franz-go), so it works against Sluice, Apache Kafka or kfake. The rules
// that must be right (what a record does to the state) live in I/O-free
// types (configState, statusState, offsetState) that the topic-backed and
// in-memory stores share; the topic plumbing (create or verify the topic,
// read it to the end, follow it) is topicLog.
package storage
