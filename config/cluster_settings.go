package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Settings of a node's part in a cluster (KRaft roles, the controller
// quorum, listeners by name) and of replication between brokers. They are
// appended to brokerSettings; defaults are Kafka's (KRaftConfigs,
// QuorumConfig, ReplicationConfigs, SocketServerConfigs, QuotaConfig) unless
// the doc says otherwise. The rules that involve several of them are in
// cluster.go.
var clusterSettings = []Setting{
	// Roles and the controller quorum.
	{Name: "process.roles", Type: TypeList, Nullable: true, Enum: []string{"broker", "controller"}, Check: checkRoles,
		Doc: "What this node runs: broker, controller, or broker,controller. Unset with no controller.quorum.voters is a single-node cluster in which the node is broker and its own controller (what `make run` starts); a node of a multi-node cluster must set it."},
	{Name: "controller.quorum.voters", Type: TypeList, Nullable: true, Check: checkVoters,
		Doc: "The controllers, as id@host:port,... (host:port being each controller's controller listener). Setting it makes the node part of a multi-node cluster; every node lists the same voters."},
	{Name: "controller.quorum.bootstrap.servers", Type: TypeList, Nullable: true, Check: checkBootstrapServers,
		Doc: "host:port,... of controllers to find the quorum through (KIP-853 dynamic quorum). Sluice takes it only on a single node that is its own controller, as in Kafka's sample server.properties; a cluster lists its controllers in controller.quorum.voters."},
	{Name: "controller.quorum.fetch.timeout.ms", Type: TypeDurationMs, Default: "2000", Min: atLeast(100),
		Doc: "In a controller quorum, how long a voter waits without seeing the active controller renew its lease before it takes over (if it holds every committed metadata record). The active controller's lease is two thirds of it: it stops acting as controller before another voter may start. A longer timeout rides out longer stalls (fsync, CPU starvation) at the cost of a slower failover."},
	{Name: "metadata.log.max.record.bytes.between.snapshots", Type: TypeLong, Default: "20971520", Min: atLeast(1),
		Doc: "In a controller quorum, the active controller appends a checkpoint of the whole metadata to the metadata log after this many bytes of records since the last one; once it is committed, every voter drops the log below it. Kafka writes a snapshot file at this point; Sluice keeps the snapshot in the log."},
	{Name: "metadata.log.max.snapshot.interval.ms", Type: TypeDurationMs, Default: "3600000", Min: atLeast(0),
		Doc: "In a controller quorum, the longest the active controller goes without a metadata checkpoint when records were appended since the last one. 0 checkpoints by size only (metadata.log.max.record.bytes.between.snapshots)."},
	{Name: "controller.listener.names", Type: TypeList, Nullable: true,
		Doc: "Names of the listeners the controller serves, which clients never see. A controller node lists one of them in listeners; brokers reach the controllers through the first name."},
	{Name: "listener.security.protocol.map", Type: TypeList, Default: defaultProtocolMapValue, Check: checkProtocolMap,
		Doc: "NAME:PROTOCOL pairs giving each listener name its security protocol. When not configured, the names in controller.listener.names are also mapped to PLAINTEXT, as Kafka does. Only PLAINTEXT listeners are served so far; a listener mapped to another protocol is refused at start."},
	{Name: "inter.broker.listener.name", Type: TypeString, Nullable: true,
		Doc: "The listener other brokers use to reach this one (follower fetches). Unset means PLAINTEXT. Must be one of the broker's advertised listeners, and not a controller listener."},
	{Name: "broker.rack", Type: TypeString, Nullable: true,
		Doc: "Rack (or zone) of this broker. Replica placement spreads a partition's replicas across racks, and replica.selector.class may send consumers to a replica in their own rack."},
	{Name: "broker.heartbeat.interval.ms", Type: TypeInt, Default: "2000", Min: atLeast(1),
		Doc: "How often a broker heartbeats to the controller. Must be below broker.session.timeout.ms."},
	{Name: "broker.session.timeout.ms", Type: TypeInt, Default: "9000", Min: atLeast(1),
		Doc: "A broker the controller has not heard from for this long is fenced and its partitions get new leaders."},
	{Name: "controlled.shutdown.enable", Type: TypeBool, Default: "true",
		Doc: "On SIGTERM, have the controller move leadership off this broker before it stops, so that producers see no failed request."},

	// Replication.
	{Name: "replica.lag.time.max.ms", Type: TypeDurationMs, Default: "30000", Min: atLeast(1),
		Doc: "A follower that has not caught up with the leader's log end for this long is removed from the ISR."},
	{Name: "replica.fetch.max.bytes", Type: TypeInt, Default: "1048576", Min: atLeast(0),
		Doc: "Bytes a follower asks for per partition in one fetch; a first batch larger than this is still returned whole."},
	{Name: "replica.fetch.response.max.bytes", Type: TypeInt, Default: "10485760", Min: atLeast(0),
		Doc: "Bytes a follower asks for in one whole fetch response; a first batch larger than this is still returned whole."},
	{Name: "replica.fetch.wait.max.ms", Type: TypeInt, Default: "500", Min: atLeast(0),
		Doc: "Longest a leader holds a follower's fetch waiting for replica.fetch.min.bytes. At most replica.lag.time.max.ms, or followers would drop out of the ISR while waiting."},
	{Name: "replica.fetch.min.bytes", Type: TypeInt, Default: "1", Min: atLeast(0),
		Doc: "Bytes a leader waits to have for a follower before answering its fetch (up to replica.fetch.wait.max.ms)."},
	{Name: "replica.fetch.backoff.ms", Type: TypeInt, Default: "1000", Min: atLeast(0),
		Doc: "Pause of a follower's fetcher after a fetch error before it tries again."},
	{Name: "num.replica.fetchers", Type: TypeInt, Default: "1", Min: atLeast(1),
		Doc: "Fetcher connections a follower opens to each leader broker; partitions are spread across them."},
	{Name: "replica.high.watermark.checkpoint.interval.ms", Type: TypeDurationMs, Default: "5000", Min: atLeast(1),
		Doc: "How often each partition's high watermark is written to disk, so a restarted broker does not serve consumers past what was committed."},
	{Name: "replica.selector.class", Type: TypeString, Nullable: true, Check: checkReplicaSelector,
		Doc: "How consumers that send their rack (client.rack) are pointed at a replica to fetch from (KIP-392). Unset: always the leader. " + rackAwareSelector + ": an in-sync replica in the consumer's rack."},
	{Name: "unclean.leader.election.enable", Type: TypeBool, Default: "false",
		Doc: "Allow a replica that is not in sync to become leader, trading lost writes for availability."},
	{Name: "auto.leader.rebalance.enable", Type: TypeBool, Default: "true",
		Doc: "Have the controller move leadership back to each partition's preferred (first) replica when a broker leads too few of its preferred partitions."},
	{Name: "leader.imbalance.check.interval.seconds", Type: TypeLong, Default: "300", Min: atLeast(1),
		Doc: "How often the controller checks whether leadership needs rebalancing."},
	{Name: "leader.imbalance.per.broker.percentage", Type: TypeInt, Default: "10", Min: atLeast(0),
		Doc: "Share of a broker's preferred partitions it may fail to lead, in percent, before the controller rebalances leadership."},
	{Name: "leader.replication.throttled.rate", Type: TypeLong, Default: maxLong, Min: atLeast(0),
		Doc: "Bytes per second a leader sends to followers of the replicas a topic lists in leader.replication.throttled.replicas (used while reassigning). The default means unthrottled."},
	{Name: "follower.replication.throttled.rate", Type: TypeLong, Default: maxLong, Min: atLeast(0),
		Doc: "Bytes per second a follower fetches for the replicas a topic lists in follower.replication.throttled.replicas (used while reassigning). The default means unthrottled."},
}

// rackAwareSelector is the only replica selector Sluice has: Kafka's class
// name, so that a Kafka configuration carries over.
const rackAwareSelector = "org.apache.kafka.common.replica.RackAwareReplicaSelector"

// defaultProtocolMapValue is Kafka's listener.security.protocol.map default:
// every security protocol mapped to itself.
const defaultProtocolMapValue = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"

var defaultProtocolMap, _ = parseProtocolMap(defaultProtocolMapValue)

func checkRoles(v string) error {
	seen := map[string]bool{}
	for _, r := range splitList(v) {
		if seen[r] {
			return fmt.Errorf("%q names %s twice", v, r)
		}
		seen[r] = true
	}
	return nil
}

func checkVoters(v string) error {
	_, err := ParseVoters(v)
	return err
}

func checkBootstrapServers(v string) error {
	for _, s := range splitList(v) {
		host, port, err := splitHostPort(s)
		if err != nil {
			return fmt.Errorf("%q: %v", v, err)
		}
		if host == "" || port == 0 {
			return fmt.Errorf("%q: %q needs a host and a non-zero port", v, s)
		}
	}
	return nil
}

func checkProtocolMap(v string) error {
	_, err := parseProtocolMap(v)
	return err
}

// parseProtocolMap parses listener.security.protocol.map: NAME:PROTOCOL
// pairs, names upper-cased, protocols one of Kafka's.
func parseProtocolMap(v string) (map[string]string, error) {
	out := map[string]string{}
	for _, it := range splitList(v) {
		name, proto, ok := strings.Cut(it, ":")
		name, proto = strings.ToUpper(strings.TrimSpace(name)), strings.ToUpper(strings.TrimSpace(proto))
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: %q is not of the form NAME:PROTOCOL", v, it)
		}
		if !contains(securityProtocols, proto) {
			return nil, fmt.Errorf("%q: %q is not a security protocol (%s)", v, proto, strings.Join(securityProtocols, ", "))
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%q: listener %s is mapped twice", v, name)
		}
		out[name] = proto
	}
	return out, nil
}

func checkReplicaSelector(v string) error {
	if strings.TrimSpace(v) != rackAwareSelector {
		return fmt.Errorf("%q is not a replica selector Sluice has; the one it has is %s (or leave it unset for leader-only fetching)", v, rackAwareSelector)
	}
	return nil
}

// throttledReplicasPattern is one entry of a *.replication.throttled.replicas
// list: partition:broker.
var throttledReplicasPattern = regexp.MustCompile(`^[0-9]+:[0-9]+$`)

func checkThrottledReplicas(v string) error {
	_, err := ParseThrottledReplicas(v)
	return err
}
