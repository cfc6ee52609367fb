// Package connectors will hold Sluice's built-in source and sink connectors:
// small, in-process pipes that move records between a topic and an outside
// system (files, HTTP endpoints, other databases) without a separate Kafka
// Connect cluster.
//
// Nothing is built here yet; see the roadmap in README.md.
package connectors
