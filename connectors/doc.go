// Package connectors holds Sluice's connector plugins. Each subdirectory is
// one plugin: a command built by make build into bin/plugins/, which a
// Connect worker (sluice connect) runs as a separate process through
// connect/sdk. Connectors reach the cluster only through the worker, which
// speaks the Kafka protocol; the broker imports none of this.
//
//   - filestream: Kafka's quickstart pair, FileStreamSource and FileStreamSink.
package connectors
