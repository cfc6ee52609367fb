// Package connectors holds Sluice's connector plugins. Each subdirectory is
// one plugin: a command built by make build into bin/plugins/, which a
// Connect worker (sluice connect) runs as a separate process through
// connect/sdk. Connectors reach the cluster only through the worker, which
// speaks the Kafka protocol; the broker imports none of this.
//
//   - filestream: Kafka's quickstart pair, FileStreamSource and FileStreamSink.
//   - filetail: tails log files (globs, rotation by rename or copytruncate,
//     multiline), files known by a checksum of their first line.
//   - syslog: RFC 5424 and 3164 over UDP, TCP and TLS.
//   - postgrescdc: PostgreSQL change data capture over pgoutput, with
//     Debezium's config names and change events.
//   - jdbcsource: PostgreSQL tables or queries polled into topics, as
//     Confluent's JDBC source.
//   - postgressink: topics into PostgreSQL tables (insert, upsert, delete),
//     exactly once, as Confluent's JDBC sink.
//   - httpsink: topics posted to an HTTP endpoint in batches, with retries
//     and idempotency keys.
//   - filesink: topics into files, exactly once by rename-on-commit.
//
// connectors/internal/pgjdbc is what the PostgreSQL connectors share: JDBC
// URLs, identifier quoting and the type mapping.
package connectors
