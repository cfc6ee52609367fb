package config

import "strings"

// Kafka broker settings that Sluice does not implement fall in two kinds,
// so that a server.properties brought over from Kafka starts, or fails
// once, saying why:
//
//   - kafkaIgnored: tuning of machinery Sluice does not have (thread pools,
//     socket buffers, the timers of KRaft's Raft log).
//     Ignoring them changes nothing a client can observe; the broker lists
//     them in one warning.
//   - kafkaUnsupported: features not built yet (TLS, SASL, ACLs,
//     transactions, ...). Ignoring these would be a lie (a broker that was
//     asked for TLS must not come up in plain text), so they stop the start
//     with "not supported yet".
//
// A key in neither list and not a Sluice setting is "unknown setting".
type kafkaKind int

const (
	sluiceSetting kafkaKind = iota
	kafkaIgnored
	kafkaUnsupported
)

var ignoredKafkaKeys = map[string]bool{}

func init() {
	for _, k := range []string{
		// threads and buffers: Go schedules goroutines, netio sizes buffers
		"num.network.threads", "num.io.threads", "background.threads",
		"num.recovery.threads.per.data.dir",
		"num.replica.alter.log.dirs.threads", "socket.send.buffer.bytes",
		"socket.receive.buffer.bytes", "socket.listen.backlog.size",
		"queued.max.request.bytes", "group.coordinator.threads",
		"offsets.load.buffer.size", "log.cleaner.io.buffer.size",
		"log.cleaner.io.buffer.load.factor", "log.flush.start.offset.checkpoint.interval.ms",
		"fetch.purgatory.purge.interval.requests",
		"producer.purgatory.purge.interval.requests",
		"replica.socket.timeout.ms", "replica.socket.receive.buffer.bytes",
		// KRaft's Raft log and timers: Sluice's controller keeps its
		// metadata its own way
		"metadata.log.dir", "metadata.log.segment.bytes",
		"metadata.max.retention.bytes", "metadata.max.retention.ms",
		"controller.quorum.election.timeout.ms",
		"controller.quorum.election.backoff.max.ms", "controller.quorum.append.linger.ms",
		"controller.quorum.request.timeout.ms", "controller.quorum.retry.backoff.ms",
		"initial.broker.registration.timeout.ms",
		// ZooKeeper-era controlled shutdown retries (KRaft ignores them too)
		"controlled.shutdown.max.retries", "controlled.shutdown.retry.backoff.ms",
		"share.coordinator.state.topic.replication.factor",
		"share.coordinator.state.topic.min.isr",
		"offsets.commit.timeout.ms", "offsets.topic.segment.bytes",
		// JMX-era metrics: Sluice exports Prometheus metrics instead
		"metric.reporters", "metrics.num.samples", "metrics.sample.window.ms",
		"metrics.recording.level", "log.message.downconversion.enable",
		"group.coordinator.rebalance.protocols",
	} {
		ignoredKafkaKeys[k] = true
	}
}

// unsupportedKafka maps a key, or a prefix ending in ".", to the feature it
// belongs to.
var unsupportedKafka = []struct{ key, feature string }{
	{"ssl.", "TLS"},
	{"sasl.", "SASL authentication"},
	{"listener.name.", "per-listener TLS and SASL settings"},
	{"security.inter.broker.protocol", "security protocols other than PLAINTEXT"},
	{"principal.builder.class", "authentication"},
	{"connections.max.reauth.ms", "SASL authentication"},
	{"delegation.token.", "delegation tokens"},
	{"authorizer.class.name", "ACLs"},
	{"super.users", "ACLs"},
	{"allow.everyone.if.no.acl.found", "ACLs"},
	{"transaction.", "transactions"},
	{"transactional.id.", "transactions"},
	{"remote.log.", "tiered storage"},
	{"zookeeper.", "ZooKeeper mode; Sluice needs no ZooKeeper"},
	{"client.quota.callback.class", "quotas"},
	{"quota.", "quotas"},
}

// kafkaOnly classifies a key that Load was given; reason names the missing
// feature of an unsupported key. Sluice's own settings always win.
func kafkaOnly(key string) (reason string, kind kafkaKind) {
	if _, ok := settingIndex[key]; ok {
		return "", sluiceSetting
	}
	if ignoredKafkaKeys[key] {
		return "", kafkaIgnored
	}
	for _, u := range unsupportedKafka {
		if key == u.key || strings.HasSuffix(u.key, ".") && strings.HasPrefix(key, u.key) {
			return u.feature, kafkaUnsupported
		}
	}
	return "", sluiceSetting
}
