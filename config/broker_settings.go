package config

import (
	"fmt"
	"net"
	"sort"
	"strconv"
)

// maxLong is Java's Long.MAX_VALUE, Kafka's "never" for several settings.
const maxLong = "9223372036854775807"

// brokerSettings is the table of every setting a broker understands, sorted
// by name at init. Defaults follow Kafka unless the doc line says otherwise.
var brokerSettings = append([]Setting{
	// Identity and network.
	{Name: "node.id", Type: TypeInt, Default: "0", Min: atLeast(0),
		Doc: "Id of this node in the cluster. Kafka requires it to be set; Sluice defaults to 0 for a single node, and a node of a multi-node cluster (controller.quorum.voters set) must set it."},
	{Name: "broker.id", Type: TypeInt, Nullable: true, Min: atLeast(0),
		Doc: "Older name for node.id. Used when node.id is not configured; setting both to different values is an error."},
	{Name: "listeners", Type: TypeList, Default: "PLAINTEXT://127.0.0.1:9092", Check: checkListeners,
		Doc: "Comma-separated NAME://host:port addresses to listen on, each name once and mapped by listener.security.protocol.map (only PLAINTEXT is served so far). The listeners named in controller.listener.names serve the controller; the others serve Kafka clients and other brokers. An empty host binds every interface."},
	{Name: "advertised.listeners", Type: TypeList, Nullable: true, Check: checkListeners,
		Doc: "Addresses other nodes and clients are given for this node, in the same form as listeners. Unset means the same as listeners. Every name must also appear in listeners. A multi-node cluster may not advertise 0.0.0.0."},
	{Name: "admin.listener", Type: TypeString, Default: "127.0.0.1:9644", Check: checkHostPort,
		Doc: "host:port of the HTTP admin endpoint (health, metrics). Empty disables it. Sluice-specific."},
	{Name: "metrics.partition.level", Type: TypeBool, Default: "true",
		Doc: "Export per-partition series (log size, offsets, consumer lag) on /metrics. With thousands of partitions, false keeps one series per topic instead (partition=\"all\"). Sluice-specific."},
	{Name: "netio.engine", Type: TypeEnum, Default: "auto", Enum: []string{"auto", "uring", "std"},
		Doc: "Network engine: std uses Go's net package with sendfile, uring uses io_uring, auto picks uring when the kernel supports it and a self-test at start finds it answers an idle request as fast as std. Sluice-specific."},
	{Name: "netio.uring.mode", Type: TypeEnum, Default: "auto", Enum: []string{"auto", "defer", "defer-block", "coop", "plain"},
		Doc: "How io_uring rings wait for completions. auto measures each mode at start (the wake-up self-test, about half a second) and takes the fastest; naming a mode skips the self-test, and with netio.engine=auto also means io_uring in that mode, unmeasured. `sluice engines` prints what the self-test finds on this machine. Sluice-specific."},
	{Name: "socket.request.max.bytes", Type: TypeInt, Default: "104857600", Min: atLeast(1),
		Doc: "Largest request frame accepted from a client, in bytes; bigger frames close the connection."},
	{Name: "queued.max.requests", Type: TypeInt, Default: "500", Min: atLeast(1),
		Doc: "How many requests may wait for a handler before the network layer stops reading from sockets."},
	{Name: "connections.max.idle.ms", Type: TypeDurationMs, Default: "600000", Min: atLeast(0),
		Doc: "A connection with no traffic for this long is closed."},
	{Name: "max.connections", Type: TypeInt, Default: "2147483647", Min: atLeast(0),
		Doc: "Upper bound on open client connections across all listeners; new ones beyond it are refused."},

	// Storage.
	{Name: "log.dirs", Type: TypeList, Default: "./data",
		Doc: "Directories that hold partition data. Sluice defaults to ./data (Kafka uses /tmp/kafka-logs)."},
	{Name: "log.dir", Type: TypeString, Nullable: true,
		Doc: "Single data directory, used only when log.dirs is not configured."},
	{Name: "log.segment.bytes", Type: TypeInt, Default: "1073741824", Min: atLeast(14),
		Doc: "A new segment file is started once the active one would grow past this size."},
	{Name: "log.roll.ms", Type: TypeDurationMs, Nullable: true, Min: atLeast(1),
		Doc: "A new segment is started once the active one is this old. Takes precedence over log.roll.hours."},
	{Name: "log.roll.hours", Type: TypeInt, Default: "168", Min: atLeast(1),
		Doc: "Segment age limit in hours, used when log.roll.ms is not set."},
	{Name: "log.roll.jitter.ms", Type: TypeDurationMs, Default: "0", Min: atLeast(0),
		Doc: "Random amount subtracted from the roll age so that segments of many partitions do not roll at the same moment."},
	{Name: "log.retention.ms", Type: TypeDurationMs, Nullable: true, Min: atLeast(-1),
		Doc: "How long closed segments are kept; -1 keeps them forever. Beats log.retention.minutes and log.retention.hours."},
	{Name: "log.retention.minutes", Type: TypeInt, Nullable: true, Min: atLeast(-1),
		Doc: "Retention time in minutes, used when log.retention.ms is not set."},
	{Name: "log.retention.hours", Type: TypeInt, Default: "168", Min: atLeast(-1),
		Doc: "Retention time in hours, used when neither log.retention.ms nor log.retention.minutes is set."},
	{Name: "log.retention.bytes", Type: TypeLong, Default: "-1", Min: atLeast(-1),
		Doc: "Per-partition size above which the oldest segments are deleted; -1 means no size limit."},
	{Name: "log.retention.check.interval.ms", Type: TypeDurationMs, Default: "300000", Min: atLeast(1),
		Doc: "How often the retention task looks for segments to delete."},
	{Name: "log.segment.delete.delay.ms", Type: TypeDurationMs, Default: "60000", Min: atLeast(0),
		Doc: "Grace period between a segment leaving the log and its files being removed, so reads in flight can finish."},
	{Name: "log.index.interval.bytes", Type: TypeInt, Default: "4096", Min: atLeast(0),
		Doc: "Bytes of log between two entries of the sparse offset index."},
	{Name: "log.index.size.max.bytes", Type: TypeInt, Default: "10485760", Min: atLeast(4),
		Doc: "Largest size of one offset index file; a full index rolls the segment."},
	{Name: "log.flush.interval.messages", Type: TypeLong, Default: maxLong, Min: atLeast(1),
		Doc: "fsync a partition after this many messages were appended since the last fsync. 1 means fsync before every acknowledgement."},
	{Name: "log.flush.interval.ms", Type: TypeDurationMs, Nullable: true, Min: atLeast(0),
		Doc: "fsync a partition once its oldest unflushed message is this old. Unset means log.flush.scheduler.interval.ms applies."},
	{Name: "log.flush.scheduler.interval.ms", Type: TypeDurationMs, Default: maxLong, Min: atLeast(0),
		Doc: "How often the background flusher checks whether partitions are due for fsync; also the time flush policy when log.flush.interval.ms is unset."},
	{Name: "log.flush.offset.checkpoint.interval.ms", Type: TypeDurationMs, Default: "60000", Min: atLeast(0),
		Doc: "Least time between two writes of a partition's recovery-point checkpoint by a flush. The recovery point only says how much of the log a restart after a crash must re-validate; 0 rewrites it at every flush."},
	{Name: "log.open.segment.files.max", Type: TypeInt, Default: "0", Min: atLeast(0),
		Doc: "Most segment files (.log, .index, .timeindex of all partitions) kept open at once. Files open on first use; beyond this many the least recently used idle ones are closed and reopened when needed, so the number of partitions never makes the broker run out of file descriptors. 0 means half the process's limit (RLIMIT_NOFILE, systemd's LimitNOFILE), leaving the rest to connections. Sluice-specific."},
	{Name: "log.preallocate", Type: TypeBool, Default: "false",
		Doc: "Reserve the full segment size on disk when a segment is created."},
	{Name: "log.cleanup.policy", Type: TypeList, Default: "delete", Enum: []string{"delete", "compact"},
		Doc: "What happens to old segments: delete them by time/size, compact them by key (keep the last record of each key), or both."},
	{Name: "log.cleaner.enable", Type: TypeBool, Default: "true",
		Doc: "Run the log cleaner, which compacts topics whose cleanup.policy includes compact. Turning it off lets compacted topics (__consumer_offsets among them) grow without bound."},
	{Name: "log.cleaner.threads", Type: TypeInt, Default: "1", Min: atLeast(0),
		Doc: "Logs cleaned at the same time; each cleaning holds a share of log.cleaner.dedupe.buffer.size."},
	{Name: "log.cleaner.dedupe.buffer.size", Type: TypeLong, Default: "134217728", Min: atLeast(1 << 20),
		Doc: "Memory for the cleaners' key maps, shared by log.cleaner.threads. A log with more distinct keys in its dirty part than fit is cleaned in several passes."},
	{Name: "log.cleaner.io.max.bytes.per.second", Type: TypeDouble, Default: "1.7976931348623157E308", Min: atLeast(1),
		Doc: "Bytes per second all cleaners together may read and write, so cleaning does not starve producers and consumers of disk bandwidth."},
	{Name: "log.cleaner.backoff.ms", Type: TypeDurationMs, Default: "15000", Min: atLeast(0),
		Doc: "How long a cleaner sleeps when no log needs cleaning."},
	{Name: "log.cleaner.min.cleanable.ratio", Type: TypeDouble, Default: "0.5", Min: atLeast(0), Max: atMost(1),
		Doc: "Share of a log's bytes that must be dirty (written since its last cleaning) before it is cleaned."},
	{Name: "log.cleaner.delete.retention.ms", Type: TypeDurationMs, Default: "86400000", Min: atLeast(0),
		Doc: "How long compaction keeps delete markers (tombstones)."},
	{Name: "log.cleaner.min.compaction.lag.ms", Type: TypeDurationMs, Default: "0", Min: atLeast(0),
		Doc: "Youngest a message can be and still be compacted."},
	{Name: "log.cleaner.max.compaction.lag.ms", Type: TypeDurationMs, Default: maxLong, Min: atLeast(1),
		Doc: "Oldest a message can get before its segment must be compacted."},

	// Messages.
	{Name: "message.max.bytes", Type: TypeInt, Default: "1048588", Min: atLeast(0),
		Doc: "Largest record batch the broker accepts, in bytes after compression."},
	{Name: "max.decompressed.message.bytes", Type: TypeInt, Default: "134217728", Min: atLeast(1),
		Doc: "Most bytes the records of one compressed batch may inflate to; a bigger batch is refused with MESSAGE_TOO_LARGE. Validation and timestamp lookups stream, so this bounds work, not memory."},
	{Name: "log.message.timestamp.type", Type: TypeEnum, Default: "CreateTime", Enum: []string{"CreateTime", "LogAppendTime"},
		Doc: "Which timestamp records carry: the producer's (CreateTime) or the broker's clock at append (LogAppendTime)."},
	{Name: "log.message.timestamp.difference.max.ms", Type: TypeDurationMs, Default: maxLong, Min: atLeast(0),
		Doc: "With CreateTime, batches whose timestamp is further than this from the broker's clock are rejected."},
	{Name: "compression.type", Type: TypeEnum, Default: "producer", Enum: compressionTypes,
		Doc: "Codec batches are stored with: producer keeps whatever the producer used. Other values are accepted but not acted on yet (no recompression)."},
	{Name: "producer.id.expiration.ms", Type: TypeInt, Default: "86400000", Min: atLeast(1),
		Doc: "A producer id with no writes for this long is forgotten, together with its sequence state."},

	// Topics and replication.
	{Name: "num.partitions", Type: TypeInt, Default: "1", Min: atLeast(1),
		Doc: "Partition count for topics created without one (including auto-created topics)."},
	{Name: "max.broker.partitions", Type: TypeInt, Default: "100000", Min: atLeast(1),
		Doc: "Most partitions this broker holds, all topics together; CreateTopics and CreatePartitions beyond it are refused with POLICY_VIOLATION. Each partition costs memory; its files count against log.open.segment.files.max. Sluice-specific; the name is the one KIP-578 proposed."},
	{Name: "default.replication.factor", Type: TypeInt, Default: "1", Min: atLeast(1), Max: atMost(32767),
		Doc: "Replica count for topics created without one."},
	{Name: "auto.create.topics.enable", Type: TypeBool, Default: "true",
		Doc: "Create a topic with default settings when a client asks for metadata of, or produces to, a topic that does not exist."},
	{Name: "delete.topic.enable", Type: TypeBool, Default: "true",
		Doc: "Allow DeleteTopics; when false those requests are refused."},
	{Name: "min.insync.replicas", Type: TypeInt, Default: "1", Min: atLeast(1),
		Doc: "With acks=all, the fewest in-sync replicas that must hold a write before it is acknowledged."},

	// Consumer groups.
	{Name: "offsets.topic.num.partitions", Type: TypeInt, Default: "50", Min: atLeast(1),
		Doc: "Partition count of the internal topic that stores committed offsets."},
	{Name: "offsets.topic.replication.factor", Type: TypeInt, Default: "1", Min: atLeast(1), Max: atMost(32767),
		Doc: "Replica count of the committed-offsets topic. Sluice defaults to 1 (Kafka: 3) so that a single node needs no configuration; a cluster should set 3. Capped at the registered brokers; while fewer of them are unfenced than that (a cluster still starting) the topic is not created and group clients get COORDINATOR_NOT_AVAILABLE, which they retry, as with Kafka."},
	{Name: "offsets.retention.minutes", Type: TypeInt, Default: "10080", Min: atLeast(1),
		Doc: "Committed offsets of a group that has been empty this long are dropped."},
	{Name: "group.initial.rebalance.delay.ms", Type: TypeInt, Default: "3000", Min: atLeast(0),
		Doc: "How long the first rebalance of a new group waits for more members to join."},
	{Name: "group.min.session.timeout.ms", Type: TypeInt, Default: "6000", Min: atLeast(0),
		Doc: "Smallest session timeout a consumer may ask for."},
	{Name: "group.max.session.timeout.ms", Type: TypeInt, Default: "1800000", Min: atLeast(0),
		Doc: "Largest session timeout a consumer may ask for."},
	{Name: "group.max.size", Type: TypeInt, Default: "2147483647", Min: atLeast(1),
		Doc: "Most members a classic group may have; joins beyond it get GROUP_MAX_SIZE_REACHED."},
	{Name: "offsets.retention.check.interval.ms", Type: TypeLong, Default: "600000", Min: atLeast(1),
		Doc: "How often expired committed offsets are looked for."},
	{Name: "offset.metadata.max.bytes", Type: TypeInt, Default: "4096", Min: atLeast(0),
		Doc: "Largest metadata string a consumer may commit with an offset; longer ones get OFFSET_METADATA_TOO_LARGE."},
	{Name: "group.consumer.session.timeout.ms", Type: TypeInt, Default: "45000", Min: atLeast(1),
		Doc: "Session timeout of members of groups using the consumer protocol (KIP-848); the broker sets it, not the client."},
	{Name: "group.consumer.heartbeat.interval.ms", Type: TypeInt, Default: "5000", Min: atLeast(1),
		Doc: "How often members of consumer-protocol groups (KIP-848) are told to heartbeat."},
	{Name: "group.consumer.max.size", Type: TypeInt, Default: "2147483647", Min: atLeast(1),
		Doc: "Most members a consumer-protocol group (KIP-848) may have."},
	{Name: "group.consumer.assignors", Type: TypeList, Default: "uniform,range", Enum: []string{"uniform", "range"},
		Doc: "Server-side assignors of consumer-protocol groups (KIP-848), by name: uniform, range. The first is used when a member names none."},

	// Operations.
	{Name: "log.format", Type: TypeEnum, Default: "text", Enum: []string{"text", "json"},
		Doc: "Format of the broker's own log lines on stderr. Sluice-specific."},
	{Name: "log.level", Type: TypeEnum, Default: "info", Enum: []string{"debug", "info", "warn", "error"},
		Doc: "Least severe level of the broker's own log lines that is written. Sluice-specific."},
}, clusterSettings...)

var compressionTypes = []string{"producer", "uncompressed", "none", "gzip", "snappy", "lz4", "zstd"}

var settingIndex = map[string]*Setting{}

func init() {
	sort.Slice(brokerSettings, func(i, j int) bool { return brokerSettings[i].Name < brokerSettings[j].Name })
	for i := range brokerSettings {
		s := &brokerSettings[i]
		s.ReadOnly = !IsDynamicBrokerSetting(s.Name)
		if _, dup := settingIndex[s.Name]; dup {
			panic("config: duplicate setting " + s.Name)
		}
		if !s.Nullable || s.Default != "" {
			if err := s.validate(s.Default); err != nil {
				panic(fmt.Sprintf("config: default of %s: %v", s.Name, err))
			}
		}
		settingIndex[s.Name] = s
	}
}

// Settings returns the table of broker settings, sorted by name. The slice is
// a copy; the Setting values share Enum slices and bounds with the table.
func Settings() []Setting { return append([]Setting(nil), brokerSettings...) }

// Lookup returns the broker setting called name.
func Lookup(name string) (Setting, bool) {
	s, ok := settingIndex[name]
	if !ok {
		return Setting{}, false
	}
	return *s, true
}

// checkListeners checks the syntax of a listeners value; the names'
// protocols depend on listener.security.protocol.map and are checked
// once every setting is known (Broker.buildCluster).
func checkListeners(v string) error {
	_, err := parseListenerList(v)
	return err
}

func checkHostPort(v string) error {
	if v == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not host:port", v)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q has an invalid port", v)
	}
	return nil
}
