package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
)

// Broker is the effective, typed broker configuration. Build one with Load
// or Defaults; the zero value is not useful.
type Broker struct {
	NodeID int32
	// Listeners are the broker listeners: listeners without the ones
	// controller.listener.names names, in the order given.
	Listeners []Listener
	// AdvertisedListeners are the broker listeners as advertised to clients
	// and other brokers: advertised.listeners if set, else Listeners;
	// controller listeners are never among them.
	AdvertisedListeners []Listener
	AdminListener       string // host:port, "" = disabled
	// MetricsPartitionLevel exports per-partition series; false folds them
	// into one series per topic (partition="all").
	MetricsPartitionLevel bool
	NetioEngine           string // auto, uring or std
	NetioUringMode        string // auto or a ring mode (netio.RingModes)
	LogFormat             string // text or json
	LogLevel              string // debug, info, warn or error

	SocketRequestMaxBytes int32
	QueuedMaxRequests     int32
	ConnectionsMaxIdleMs  int64
	MaxConnections        int32

	LogDirs                  []string
	SegmentBytes             int64 // log.segment.bytes
	RollMs                   int64 // log.roll.ms, else log.roll.hours
	RollJitterMs             int64
	RetentionMs              int64 // log.retention.{ms,minutes,hours}; -1 = unlimited
	RetentionBytes           int64 // -1 = unlimited
	RetentionCheckIntervalMs int64
	SegmentDeleteDelayMs     int64
	IndexIntervalBytes       int32
	IndexSizeMaxBytes        int32
	FlushIntervalMessages    int64 // fsync after this many messages (MaxInt64 = never)
	FlushIntervalMs          int64 // -1 = unset; see FlushMs
	FlushSchedulerIntervalMs int64
	// OpenSegmentFilesMax caps the segment files open at once
	// (log.open.segment.files.max); 0 derives it from RLIMIT_NOFILE.
	OpenSegmentFilesMax int64
	// FlushOffsetCheckpointIntervalMs bounds how often a flush rewrites the
	// recovery-point checkpoint.
	FlushOffsetCheckpointIntervalMs int64
	Preallocate                     bool
	CleanupPolicy                   string // delete, compact or "compact,delete"
	DeleteRetentionMs               int64
	MinCompactionLagMs              int64
	MaxCompactionLagMs              int64
	// The log cleaner: log.cleaner.enable, .threads, .dedupe.buffer.size,
	// .io.max.bytes.per.second, .backoff.ms, .min.cleanable.ratio.
	LogCleanerEnable              bool
	LogCleanerThreads             int
	LogCleanerDedupeBufferSize    int64
	LogCleanerIOMaxBytesPerSecond float64
	LogCleanerBackoffMs           int64
	LogCleanerMinCleanableRatio   float64

	MessageMaxBytes                 int32
	MaxDecompressedMessageBytes     int32 // max.decompressed.message.bytes
	LogAppendTime                   bool  // log.message.timestamp.type=LogAppendTime
	MessageTimestampDifferenceMaxMs int64
	CompressionType                 string
	ProducerIDExpirationMs          int64

	NumPartitions            int32
	MaxBrokerPartitions      int32
	DefaultReplicationFactor int16
	AutoCreateTopics         bool
	DeleteTopicEnable        bool
	MinInsyncReplicas        int32
	UncleanLeaderElection    bool

	// The node's part in a cluster (cluster.go). With no voters it is a
	// single-node cluster, broker and its own controller.
	ProcessRoles           []string // process.roles as given; empty = unset
	Voters                 []Voter  // controller.quorum.voters; empty = single node
	QuorumBootstrapServers []string // controller.quorum.bootstrap.servers, host:port each
	// ControllerListenerNames is controller.listener.names, upper-cased.
	ControllerListenerNames []string
	// ControllerListeners are this node's listeners named in
	// controller.listener.names, in listeners order; bound only in cluster
	// mode on a controller (see ControllerListener).
	ControllerListeners []Listener
	// AdvertisedControllerListeners are, per controller listener name, its
	// advertised.listeners entry or else its listeners entry.
	AdvertisedControllerListeners []Listener
	// SecurityProtocolMap is the effective listener.security.protocol.map:
	// listener name -> security protocol.
	SecurityProtocolMap       map[string]string
	InterBrokerListenerName   string // "" on a controller-only node
	BrokerRack                string // "" = no rack
	BrokerHeartbeatIntervalMs int32
	BrokerSessionTimeoutMs    int32
	// QuorumFetchTimeoutMs is controller.quorum.fetch.timeout.ms: a
	// quorum voter's takeover timeout.
	QuorumFetchTimeoutMs int64
	// MetadataCheckpointBytes and MetadataCheckpointIntervalMs are
	// metadata.log.max.record.bytes.between.snapshots and
	// metadata.log.max.snapshot.interval.ms: when the active controller
	// checkpoints the metadata log.
	MetadataCheckpointBytes      int64
	MetadataCheckpointIntervalMs int64
	ControlledShutdownEnable     bool

	// Replication between brokers.
	ReplicaLagTimeMaxMs                      int64
	ReplicaFetchMaxBytes                     int32
	ReplicaFetchResponseMaxBytes             int32
	ReplicaFetchWaitMaxMs                    int32
	ReplicaFetchMinBytes                     int32
	ReplicaFetchBackoffMs                    int32
	NumReplicaFetchers                       int32
	ReplicaHighWatermarkCheckpointIntervalMs int64
	ReplicaSelectorClass                     string // "" = leader only
	AutoLeaderRebalanceEnable                bool
	LeaderImbalanceCheckIntervalSeconds      int64
	LeaderImbalancePerBrokerPercentage       int32
	LeaderReplicationThrottledRate           int64 // bytes/s; MaxInt64 = unthrottled
	FollowerReplicationThrottledRate         int64 // bytes/s; MaxInt64 = unthrottled

	OffsetsTopicNumPartitions     int32
	OffsetsTopicReplicationFactor int16
	OffsetsRetentionMinutes       int32
	GroupInitialRebalanceDelayMs  int32
	GroupMinSessionTimeoutMs      int32
	GroupMaxSessionTimeoutMs      int32
	GroupMaxSize                  int32
	OffsetsRetentionCheckMs       int64
	OffsetMetadataMaxBytes        int32
	ConsumerSessionTimeoutMs      int32 // group.consumer.session.timeout.ms
	ConsumerHeartbeatIntervalMs   int32 // group.consumer.heartbeat.interval.ms
	ConsumerGroupMaxSize          int32 // group.consumer.max.size
	ConsumerAssignors             []string

	// Raw holds the effective text value of every setting that has one
	// (defaults included). Settings without a value (Kafka's null, such as
	// log.retention.ms when unset) are absent.
	Raw map[string]string

	// Ignored lists the Kafka settings that were given but have no meaning
	// in Sluice (thread pools, socket buffers, the timers of KRaft's Raft
	// log), in the order given; the broker logs them in one warning.
	Ignored []string

	origin map[string]string // name -> file path or "--set"; absent = default
}

// Entry is one broker setting as DescribeConfigs reports it.
type Entry struct {
	Name      string
	Value     string // "" when Null
	Null      bool   // the setting has no value
	Default   string // built-in default ("" when it has none)
	Source    Source // where Value comes from (DescribeWith adds the dynamic sources)
	Origin    string // "default", the properties file path, or "--set"
	Type      Type
	ReadOnly  bool
	Sensitive bool
	Doc       string
	// Synonyms lists, most important first, every place the setting has
	// a value: dynamic (DescribeWith), the properties file, the default.
	Synonyms []Synonym
}

// Defaults returns the configuration made of built-in defaults only.
func Defaults() *Broker {
	b, err := Load("", nil)
	if err != nil {
		panic("config: defaults do not load: " + err.Error())
	}
	return b
}

// Load builds the broker configuration: built-in defaults, then the
// properties file (skipped when file is ""), then overrides, each "key=value"
// as given to --set. An unknown key, a malformed value or inconsistent
// settings fail with an error naming the setting and the value.
func Load(file string, overrides []string) (*Broker, error) {
	b := &Broker{Raw: map[string]string{}, origin: map[string]string{}}
	for _, s := range brokerSettings {
		if s.Default != "" || !s.Nullable {
			b.Raw[s.Name] = s.Default
		}
	}
	// Every problem of the file and the overrides is collected and reported
	// in one message: a Kafka server.properties brought over should not
	// take one start attempt per line Sluice does not take.
	entries, problems, err := readEntries(file, overrides)
	if err != nil {
		return nil, err
	}
	ignored := map[string]bool{}
	for _, e := range entries {
		switch reason, kind := kafkaOnly(e.key); kind {
		case kafkaIgnored:
			if !ignored[e.key] {
				ignored[e.key] = true
				b.Ignored = append(b.Ignored, e.key)
			}
			continue
		case kafkaUnsupported:
			problems = append(problems, problem{e.line, located(e.where, e.key, "not supported yet ("+reason+"); remove it")})
			continue
		}
		if err := b.set(e.key, e.value, e.origin); err != nil {
			problems = append(problems, problem{e.line, located(e.where, e.key, err.Error())})
		}
	}
	if err := problemsError(problems); err != nil {
		return nil, err
	}
	if err := b.build(); err != nil {
		return nil, err
	}
	return b, nil
}

// entry is one key=value of the properties file or of a --set, with where
// it came from: origin for Origin ("FILE" or "--set"), where for messages
// ("FILE:LINE" or "--set") and line to sort problems in file order
// (overrides come last).
type entry struct {
	key, value, origin, where string
	line                      int
}

// readEntries reads the properties file (if any) and the overrides in the
// order they apply. Malformed lines and overrides become problems; only a
// file that cannot be opened is an error.
func readEntries(file string, overrides []string) ([]entry, []problem, error) {
	var entries []entry
	var problems []problem
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, nil, fmt.Errorf("config: %w", err)
		}
		props, perrs := ParsePropertyLines(f)
		f.Close()
		for _, e := range perrs {
			var pe *ParseError
			if errors.As(e, &pe) {
				problems = append(problems, problem{pe.Line, fmt.Sprintf("%s:%d: %s", file, pe.Line, pe.Msg)})
			} else {
				problems = append(problems, problem{math.MaxInt - 1, fmt.Sprintf("%s: %v", file, e)})
			}
		}
		for _, p := range props {
			entries = append(entries, entry{p.Key, p.Value, file, fmt.Sprintf("%s:%d", file, p.Line), p.Line})
		}
	}
	for _, o := range overrides {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			problems = append(problems, problem{math.MaxInt, fmt.Sprintf("--set %q: expected key=value", o)})
			continue
		}
		entries = append(entries, entry{strings.TrimSpace(k), strings.TrimSpace(v), "--set", "--set", math.MaxInt})
	}
	return entries, problems, nil
}

// set validates and records one configured value. Its errors name neither
// the setting nor where it came from; Load adds those.
func (b *Broker) set(name, value, origin string) error {
	s, ok := settingIndex[name]
	if !ok {
		msg := "unknown setting"
		if g := suggest(name, settingNames()); g != "" {
			msg += fmt.Sprintf("; did you mean %q?", g)
		}
		return errors.New(msg)
	}
	if err := s.validate(value); err != nil {
		return err
	}
	if value == "" && s.Nullable {
		delete(b.Raw, name)
	} else {
		b.Raw[name] = value
	}
	b.origin[name] = origin
	return nil
}

// problem is one thing Load rejects, placed by its line in the file.
type problem struct {
	line int
	text string
}

// problemsError reports every problem in one error, in file order.
func problemsError(ps []problem) error {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].line < ps[j].line })
	switch len(ps) {
	case 0:
		return nil
	case 1:
		return invalid("config: %s", ps[0].text)
	}
	texts := make([]string, len(ps))
	for i, p := range ps {
		texts[i] = p.text
	}
	return invalid("config: %d problems:\n  %s", len(ps), strings.Join(texts, "\n  "))
}

// located words one problem of Load: "FILE:LINE: name: msg" for a line of
// the properties file, "name: msg (from --set)" for an override.
func located(where, name, msg string) string {
	if where == "--set" {
		if rest, ok := strings.CutPrefix(msg, "unknown setting"); ok {
			return fmt.Sprintf("unknown setting %q (from --set)%s", name, rest)
		}
		return fmt.Sprintf("%s: %s (from --set)", name, msg)
	}
	if rest, ok := strings.CutPrefix(msg, "unknown setting"); ok {
		return fmt.Sprintf("%s: unknown setting %q%s", where, name, rest)
	}
	return fmt.Sprintf("%s: %s: %s", where, name, msg)
}

// CheckValue validates one value of a broker setting without loading a
// configuration, for command-line flags that stand for a setting (the
// broker's --engine) so their errors can name the flag.
func CheckValue(name, value string) error {
	s, ok := settingIndex[name]
	if !ok {
		return fmt.Errorf("unknown setting %q", name)
	}
	if err := s.validate(value); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func settingNames() []string {
	out := make([]string, len(brokerSettings))
	for i, s := range brokerSettings {
		out[i] = s.Name
	}
	return out
}

func (b *Broker) has(name string) bool  { _, ok := b.Raw[name]; return ok }
func (b *Broker) int(name string) int64 { return mustInt(b.Raw[name]) }
func (b *Broker) bool(name string) bool {
	v, _ := parseBool(b.Raw[name])
	return v
}
func (b *Broker) configured(name string) bool { _, ok := b.origin[name]; return ok }

// build fills the typed fields from Raw and checks rules that involve more
// than one setting.
func (b *Broker) build() error {
	b.NodeID = int32(b.int("node.id"))
	if b.has("broker.id") {
		bid := int32(b.int("broker.id"))
		if b.configured("node.id") && bid != b.NodeID {
			return invalid("config: broker.id: %q differs from node.id %q; set only one", b.Raw["broker.id"], b.Raw["node.id"])
		}
		b.NodeID = bid
	}
	b.AdminListener = b.Raw["admin.listener"]
	b.MetricsPartitionLevel = b.bool("metrics.partition.level")
	b.NetioEngine = strings.TrimSpace(b.Raw["netio.engine"])
	b.NetioUringMode = strings.TrimSpace(b.Raw["netio.uring.mode"])
	b.LogFormat = strings.TrimSpace(b.Raw["log.format"])
	b.LogLevel = strings.TrimSpace(b.Raw["log.level"])
	b.SocketRequestMaxBytes = int32(b.int("socket.request.max.bytes"))
	b.QueuedMaxRequests = int32(b.int("queued.max.requests"))
	b.ConnectionsMaxIdleMs = b.int("connections.max.idle.ms")
	b.MaxConnections = int32(b.int("max.connections"))

	b.LogDirs = splitList(b.Raw["log.dirs"])
	if !b.configured("log.dirs") && b.has("log.dir") {
		b.LogDirs = []string{b.Raw["log.dir"]}
	}
	if len(b.LogDirs) == 0 {
		return invalid("config: log.dirs: %q names no directory", b.Raw["log.dirs"])
	}
	b.SegmentBytes = b.int("log.segment.bytes")
	b.RollMs, _ = b.rollMs()
	b.RollJitterMs = b.int("log.roll.jitter.ms")
	b.RetentionMs, _ = b.retentionMs()
	b.RetentionBytes = b.int("log.retention.bytes")
	b.RetentionCheckIntervalMs = b.int("log.retention.check.interval.ms")
	b.SegmentDeleteDelayMs = b.int("log.segment.delete.delay.ms")
	b.IndexIntervalBytes = int32(b.int("log.index.interval.bytes"))
	b.IndexSizeMaxBytes = int32(b.int("log.index.size.max.bytes"))
	b.FlushIntervalMessages = b.int("log.flush.interval.messages")
	b.FlushOffsetCheckpointIntervalMs = b.int("log.flush.offset.checkpoint.interval.ms")
	b.FlushIntervalMs = -1
	if b.has("log.flush.interval.ms") {
		b.FlushIntervalMs = b.int("log.flush.interval.ms")
	}
	b.FlushSchedulerIntervalMs = b.int("log.flush.scheduler.interval.ms")
	b.OpenSegmentFilesMax = b.int("log.open.segment.files.max")
	b.Preallocate = b.bool("log.preallocate")
	b.CleanupPolicy = normalizeCleanupPolicy(b.Raw["log.cleanup.policy"])
	b.DeleteRetentionMs = b.int("log.cleaner.delete.retention.ms")
	b.MinCompactionLagMs = b.int("log.cleaner.min.compaction.lag.ms")
	b.MaxCompactionLagMs = b.int("log.cleaner.max.compaction.lag.ms")
	b.LogCleanerEnable = b.bool("log.cleaner.enable")
	b.LogCleanerThreads = int(b.int("log.cleaner.threads"))
	b.LogCleanerDedupeBufferSize = b.int("log.cleaner.dedupe.buffer.size")
	b.LogCleanerIOMaxBytesPerSecond = mustFloat(b.Raw["log.cleaner.io.max.bytes.per.second"])
	b.LogCleanerBackoffMs = b.int("log.cleaner.backoff.ms")
	b.LogCleanerMinCleanableRatio = mustFloat(b.Raw["log.cleaner.min.cleanable.ratio"])

	b.MessageMaxBytes = int32(b.int("message.max.bytes"))
	b.MaxDecompressedMessageBytes = int32(b.int("max.decompressed.message.bytes"))
	b.LogAppendTime = strings.TrimSpace(b.Raw["log.message.timestamp.type"]) == "LogAppendTime"
	b.MessageTimestampDifferenceMaxMs = b.int("log.message.timestamp.difference.max.ms")
	b.CompressionType = strings.TrimSpace(b.Raw["compression.type"])
	b.ProducerIDExpirationMs = b.int("producer.id.expiration.ms")

	b.NumPartitions = int32(b.int("num.partitions"))
	b.MaxBrokerPartitions = int32(b.int("max.broker.partitions"))
	b.DefaultReplicationFactor = int16(b.int("default.replication.factor"))
	b.AutoCreateTopics = b.bool("auto.create.topics.enable")
	b.DeleteTopicEnable = b.bool("delete.topic.enable")
	b.MinInsyncReplicas = int32(b.int("min.insync.replicas"))
	b.UncleanLeaderElection = b.bool("unclean.leader.election.enable")

	b.OffsetsTopicNumPartitions = int32(b.int("offsets.topic.num.partitions"))
	b.OffsetsTopicReplicationFactor = int16(b.int("offsets.topic.replication.factor"))
	b.OffsetsRetentionMinutes = int32(b.int("offsets.retention.minutes"))
	b.GroupInitialRebalanceDelayMs = int32(b.int("group.initial.rebalance.delay.ms"))
	b.GroupMinSessionTimeoutMs = int32(b.int("group.min.session.timeout.ms"))
	b.GroupMaxSessionTimeoutMs = int32(b.int("group.max.session.timeout.ms"))
	b.GroupMaxSize = int32(b.int("group.max.size"))
	b.OffsetsRetentionCheckMs = b.int("offsets.retention.check.interval.ms")
	b.OffsetMetadataMaxBytes = int32(b.int("offset.metadata.max.bytes"))
	b.ConsumerSessionTimeoutMs = int32(b.int("group.consumer.session.timeout.ms"))
	b.ConsumerHeartbeatIntervalMs = int32(b.int("group.consumer.heartbeat.interval.ms"))
	b.ConsumerGroupMaxSize = int32(b.int("group.consumer.max.size"))
	b.ConsumerAssignors = splitList(b.Raw["group.consumer.assignors"])
	if b.GroupMinSessionTimeoutMs > b.GroupMaxSessionTimeoutMs {
		return invalid("config: group.min.session.timeout.ms: %q is above group.max.session.timeout.ms %q",
			b.Raw["group.min.session.timeout.ms"], b.Raw["group.max.session.timeout.ms"])
	}
	return b.buildCluster()
}

// retentionMs applies Kafka's precedence log.retention.ms > .minutes > .hours
// and maps any negative result to -1 (unlimited). It also returns the name of
// the setting that decided.
func (b *Broker) retentionMs() (int64, string) {
	var ms int64
	var from string
	switch {
	case b.has("log.retention.ms"):
		ms, from = b.int("log.retention.ms"), "log.retention.ms"
	case b.has("log.retention.minutes"):
		ms, from = b.int("log.retention.minutes")*60_000, "log.retention.minutes"
	default:
		ms, from = b.int("log.retention.hours")*3_600_000, "log.retention.hours"
	}
	if ms < 0 {
		ms = -1
	}
	return ms, from
}

// rollMs applies log.roll.ms > log.roll.hours.
func (b *Broker) rollMs() (int64, string) {
	if b.has("log.roll.ms") {
		return b.int("log.roll.ms"), "log.roll.ms"
	}
	return b.int("log.roll.hours") * 3_600_000, "log.roll.hours"
}

// FlushMs is the effective time-based flush interval: log.flush.interval.ms
// when set, else log.flush.scheduler.interval.ms.
func (b *Broker) FlushMs() int64 {
	if b.FlushIntervalMs >= 0 {
		return b.FlushIntervalMs
	}
	return b.FlushSchedulerIntervalMs
}

// Get returns the effective text value of a broker setting; ok is false for
// unknown settings and for settings without a value.
func (b *Broker) Get(name string) (value string, ok bool) {
	v, ok := b.Raw[name]
	return v, ok
}

// Origin tells where a setting's value came from: "default", the properties
// file path, or "--set".
func (b *Broker) Origin(name string) string {
	if o, ok := b.origin[name]; ok {
		return o
	}
	return "default"
}

// Describe lists every broker setting, sorted by name, with its effective
// value and where it came from.
func (b *Broker) Describe() []Entry {
	out := make([]Entry, 0, len(brokerSettings))
	for _, s := range brokerSettings {
		v, ok := b.Raw[s.Name]
		if s.Sensitive {
			v, ok = "", false
		}
		src := SourceDefaultConfig
		if b.configured(s.Name) {
			src = SourceStaticBrokerConfig
		}
		e := Entry{
			Name: s.Name, Value: v, Null: !ok, Default: s.Default,
			Source: src, Origin: b.Origin(s.Name), Type: s.Type,
			ReadOnly: s.ReadOnly, Sensitive: s.Sensitive, Doc: s.Doc,
		}
		if ok && src == SourceStaticBrokerConfig {
			e.Synonyms = append(e.Synonyms, Synonym{Name: s.Name, Value: v, Source: src})
		}
		if !s.Sensitive && (s.Default != "" || !s.Nullable) {
			e.Synonyms = append(e.Synonyms, Synonym{Name: s.Name, Value: s.Default, Source: SourceDefaultConfig})
		}
		out = append(out, e)
	}
	return out
}
