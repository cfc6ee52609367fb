package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Topic is the effective configuration of one topic: the broker's defaults
// with the topic's own overrides applied.
type Topic struct {
	SegmentBytes       int64  // segment.bytes
	SegmentMs          int64  // segment.ms
	SegmentJitterMs    int64  // segment.jitter.ms
	SegmentIndexBytes  int    // segment.index.bytes
	IndexIntervalBytes int    // index.interval.bytes
	RetentionMs        int64  // retention.ms; -1 = unlimited
	RetentionBytes     int64  // retention.bytes; -1 = unlimited
	FlushMessages      int64  // flush.messages
	FlushMs            int64  // flush.ms
	FileDeleteDelayMs  int64  // file.delete.delay.ms
	Preallocate        bool   // preallocate
	MaxMessageBytes    int32  // max.message.bytes
	LogAppendTime      bool   // message.timestamp.type=LogAppendTime
	CompressionType    string // compression.type
	// MessageTimestampDifferenceMaxMs is message.timestamp.difference.max.ms.
	MessageTimestampDifferenceMaxMs int64
	CleanupPolicy                   string  // "delete", "compact" or "compact,delete"
	DeleteRetentionMs               int64   // delete.retention.ms
	MinCompactionLagMs              int64   // min.compaction.lag.ms
	MaxCompactionLagMs              int64   // max.compaction.lag.ms
	MinCleanableDirtyRatio          float64 // min.cleanable.dirty.ratio
	MinInsyncReplicas               int     // min.insync.replicas
	UncleanLeaderElection           bool    // unclean.leader.election.enable
	// LeaderReplicationThrottledReplicas is leader.replication.throttled.replicas,
	// items joined by commas ("" = none, "*" = all); ParseThrottledReplicas
	// reads it.
	LeaderReplicationThrottledReplicas string
	// FollowerReplicationThrottledReplicas is follower.replication.throttled.replicas,
	// in the same form.
	FollowerReplicationThrottledReplicas string
}

// TopicSetting describes a setting a topic can override and the broker
// setting that supplies its value otherwise.
type TopicSetting struct {
	Setting
	// BrokerSynonym is the broker setting that gives the default. For
	// retention.ms, segment.ms and flush.ms the value is worked out from
	// several broker settings (see Broker.RetentionMs, RollMs, FlushMs).
	// "" means no broker setting: the default is Setting.Default.
	BrokerSynonym string
	apply         func(t *Topic, v string)
	brokerValue   func(b *Broker) (value, synonym string)
}

// TopicEntry is one topic setting as DescribeConfigs reports it.
type TopicEntry struct {
	Name      string
	Value     string
	Source    Source // DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG or DEFAULT_CONFIG
	Type      Type
	ReadOnly  bool
	Sensitive bool
	Doc       string
	// Synonyms lists, most important first, where the value could come
	// from: the topic override (if any), then the broker setting.
	Synonyms []Synonym
}

// Synonym is one candidate source of a topic setting's value.
type Synonym struct {
	Name   string
	Value  string
	Source Source
}

func i64(f func(*Topic, int64)) func(*Topic, string) {
	return func(t *Topic, v string) { f(t, mustInt(v)) }
}

func boolean(f func(*Topic, bool)) func(*Topic, string) {
	return func(t *Topic, v string) { x, _ := parseBool(v); f(t, x) }
}

var topicSettings = []TopicSetting{
	{Setting: Setting{Name: "cleanup.policy", Type: TypeList, Enum: []string{"delete", "compact"},
		Doc: "delete drops old segments by time and size; compact keeps the last record per key; both may be listed."},
		BrokerSynonym: "log.cleanup.policy", apply: func(t *Topic, v string) { t.CleanupPolicy = normalizeCleanupPolicy(v) }},
	{Setting: Setting{Name: "compression.type", Type: TypeEnum, Enum: compressionTypes,
		Doc: "Codec batches of this topic are stored with; producer keeps the producer's choice."},
		BrokerSynonym: "compression.type", apply: func(t *Topic, v string) { t.CompressionType = strings.TrimSpace(v) }},
	{Setting: Setting{Name: "delete.retention.ms", Type: TypeDurationMs, Min: atLeast(0),
		Doc: "How long compaction keeps tombstones."},
		BrokerSynonym: "log.cleaner.delete.retention.ms", apply: i64(func(t *Topic, n int64) { t.DeleteRetentionMs = n })},
	{Setting: Setting{Name: "file.delete.delay.ms", Type: TypeDurationMs, Min: atLeast(0),
		Doc: "Delay between removing a segment from the log and deleting its files."},
		BrokerSynonym: "log.segment.delete.delay.ms", apply: i64(func(t *Topic, n int64) { t.FileDeleteDelayMs = n })},
	{Setting: Setting{Name: "flush.messages", Type: TypeLong, Min: atLeast(1),
		Doc: "fsync after this many appended messages; 1 fsyncs before every acknowledgement."},
		BrokerSynonym: "log.flush.interval.messages", apply: i64(func(t *Topic, n int64) { t.FlushMessages = n })},
	{Setting: Setting{Name: "flush.ms", Type: TypeDurationMs, Min: atLeast(0),
		Doc: "fsync once the oldest unflushed message is this old."},
		BrokerSynonym: "log.flush.interval.ms", apply: i64(func(t *Topic, n int64) { t.FlushMs = n }),
		brokerValue: func(b *Broker) (string, string) {
			if b.has("log.flush.interval.ms") {
				return b.Raw["log.flush.interval.ms"], "log.flush.interval.ms"
			}
			return b.Raw["log.flush.scheduler.interval.ms"], "log.flush.scheduler.interval.ms"
		}},
	{Setting: Setting{Name: "index.interval.bytes", Type: TypeInt, Min: atLeast(0),
		Doc: "Bytes of log between two offset index entries."},
		BrokerSynonym: "log.index.interval.bytes", apply: i64(func(t *Topic, n int64) { t.IndexIntervalBytes = int(n) })},
	{Setting: Setting{Name: "max.compaction.lag.ms", Type: TypeDurationMs, Min: atLeast(1),
		Doc: "Oldest a record may get before compaction must consider it."},
		BrokerSynonym: "log.cleaner.max.compaction.lag.ms", apply: i64(func(t *Topic, n int64) { t.MaxCompactionLagMs = n })},
	{Setting: Setting{Name: "max.message.bytes", Type: TypeInt, Min: atLeast(0),
		Doc: "Largest record batch accepted for this topic, after compression."},
		BrokerSynonym: "message.max.bytes", apply: i64(func(t *Topic, n int64) { t.MaxMessageBytes = clamp32(n) })},
	{Setting: Setting{Name: "message.timestamp.difference.max.ms", Type: TypeDurationMs, Min: atLeast(0),
		Doc: "With CreateTime, the largest allowed gap between a batch's timestamp and the broker's clock."},
		BrokerSynonym: "log.message.timestamp.difference.max.ms", apply: i64(func(t *Topic, n int64) { t.MessageTimestampDifferenceMaxMs = n })},
	{Setting: Setting{Name: "message.timestamp.type", Type: TypeEnum, Enum: []string{"CreateTime", "LogAppendTime"},
		Doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the broker's clock."},
		BrokerSynonym: "log.message.timestamp.type", apply: func(t *Topic, v string) { t.LogAppendTime = strings.TrimSpace(v) == "LogAppendTime" }},
	{Setting: Setting{Name: "min.cleanable.dirty.ratio", Type: TypeDouble, Min: atLeast(0), Max: atMost(1),
		Doc: "Share of the log that must be dirty (written since the last cleaning) before the cleaner compacts it."},
		BrokerSynonym: "log.cleaner.min.cleanable.ratio", apply: func(t *Topic, v string) { t.MinCleanableDirtyRatio = mustFloat(v) }},
	{Setting: Setting{Name: "min.compaction.lag.ms", Type: TypeDurationMs, Min: atLeast(0),
		Doc: "Youngest a record may be and still be compacted."},
		BrokerSynonym: "log.cleaner.min.compaction.lag.ms", apply: i64(func(t *Topic, n int64) { t.MinCompactionLagMs = n })},
	{Setting: Setting{Name: "min.insync.replicas", Type: TypeInt, Min: atLeast(1),
		Doc: "With acks=all, the fewest in-sync replicas that must have a write before it is acknowledged."},
		BrokerSynonym: "min.insync.replicas", apply: i64(func(t *Topic, n int64) { t.MinInsyncReplicas = int(n) })},
	{Setting: Setting{Name: "preallocate", Type: TypeBool,
		Doc: "Reserve the full segment size on disk when a segment is created."},
		BrokerSynonym: "log.preallocate", apply: boolean(func(t *Topic, x bool) { t.Preallocate = x })},
	{Setting: Setting{Name: "retention.bytes", Type: TypeLong, Min: atLeast(-1),
		Doc: "Per-partition size above which the oldest segments are deleted; -1 = no limit."},
		BrokerSynonym: "log.retention.bytes", apply: i64(func(t *Topic, n int64) { t.RetentionBytes = n })},
	{Setting: Setting{Name: "retention.ms", Type: TypeDurationMs, Min: atLeast(-1),
		Doc: "How long closed segments are kept; -1 = forever."},
		BrokerSynonym: "log.retention.ms", apply: i64(func(t *Topic, n int64) { t.RetentionMs = n }),
		brokerValue: func(b *Broker) (string, string) {
			ms, from := b.retentionMs()
			return strconv.FormatInt(ms, 10), from
		}},
	{Setting: Setting{Name: "segment.bytes", Type: TypeInt, Min: atLeast(14),
		Doc: "Size at which the active segment is closed and a new one started."},
		BrokerSynonym: "log.segment.bytes", apply: i64(func(t *Topic, n int64) { t.SegmentBytes = n })},
	{Setting: Setting{Name: "segment.index.bytes", Type: TypeInt, Min: atLeast(4),
		Doc: "Largest size of a segment's offset index; a full index rolls the segment."},
		BrokerSynonym: "log.index.size.max.bytes", apply: i64(func(t *Topic, n int64) { t.SegmentIndexBytes = int(n) })},
	{Setting: Setting{Name: "segment.jitter.ms", Type: TypeDurationMs, Min: atLeast(0),
		Doc: "Random amount taken off segment.ms so partitions do not all roll together."},
		BrokerSynonym: "log.roll.jitter.ms", apply: i64(func(t *Topic, n int64) { t.SegmentJitterMs = n })},
	{Setting: Setting{Name: "segment.ms", Type: TypeDurationMs, Min: atLeast(1),
		Doc: "Age at which the active segment is closed and a new one started."},
		BrokerSynonym: "log.roll.ms", apply: i64(func(t *Topic, n int64) { t.SegmentMs = n }),
		brokerValue: func(b *Broker) (string, string) {
			ms, from := b.rollMs()
			return strconv.FormatInt(ms, 10), from
		}},
	{Setting: Setting{Name: "leader.replication.throttled.replicas", Type: TypeList, Check: checkThrottledReplicas,
		Doc: "Replicas whose leader side is throttled to the broker's leader.replication.throttled.rate, as partition:broker,... or * for all (set while reassigning)."},
		apply: func(t *Topic, v string) { t.LeaderReplicationThrottledReplicas = strings.Join(splitList(v), ",") }},
	{Setting: Setting{Name: "follower.replication.throttled.replicas", Type: TypeList, Check: checkThrottledReplicas,
		Doc: "Replicas whose follower side is throttled to the broker's follower.replication.throttled.rate, as partition:broker,... or * for all (set while reassigning)."},
		apply: func(t *Topic, v string) { t.FollowerReplicationThrottledReplicas = strings.Join(splitList(v), ",") }},
	{Setting: Setting{Name: "unclean.leader.election.enable", Type: TypeBool,
		Doc: "Let an out-of-sync replica become leader, accepting the loss of writes it missed."},
		BrokerSynonym: "unclean.leader.election.enable", apply: boolean(func(t *Topic, x bool) { t.UncleanLeaderElection = x })},
}

var topicIndex = map[string]*TopicSetting{}

func init() {
	sort.Slice(topicSettings, func(i, j int) bool { return topicSettings[i].Name < topicSettings[j].Name })
	for i := range topicSettings {
		t := &topicSettings[i]
		if _, ok := settingIndex[t.BrokerSynonym]; !ok && t.BrokerSynonym != "" {
			panic("config: topic setting " + t.Name + " has unknown broker synonym " + t.BrokerSynonym)
		}
		topicIndex[t.Name] = t
	}
}

// TopicSettings returns the table of topic-level settings, sorted by name.
func TopicSettings() []TopicSetting { return append([]TopicSetting(nil), topicSettings...) }

// IsTopicConfig reports whether name is a setting a topic can override.
func IsTopicConfig(name string) bool { _, ok := topicIndex[name]; return ok }

// ValidateTopicConfig checks one topic override. The error names the
// setting and, for bad values, the value.
func ValidateTopicConfig(name, value string) error {
	t, ok := topicIndex[name]
	if !ok {
		msg := fmt.Sprintf("config: unknown topic setting %q", name)
		names := make([]string, 0, len(topicSettings))
		for _, ts := range topicSettings {
			names = append(names, ts.Name)
		}
		if g := suggest(name, names); g != "" {
			msg += fmt.Sprintf("; did you mean %q?", g)
		}
		return invalid("%s", msg)
	}
	if err := t.validate(value); err != nil {
		return invalid("config: %s: %v", name, err)
	}
	return nil
}

// brokerDefault returns the value a topic gets from the broker for t, the
// broker setting it came from and that setting's source.
func (b *Broker) brokerDefault(t *TopicSetting) (value, synonym string, src Source) {
	switch {
	case t.BrokerSynonym == "":
		return t.Default, t.Name, SourceDefaultConfig
	case t.brokerValue != nil:
		value, synonym = t.brokerValue(b)
	default:
		value, synonym = b.Raw[t.BrokerSynonym], t.BrokerSynonym
	}
	src = SourceDefaultConfig
	if b.configured(synonym) {
		src = SourceStaticBrokerConfig
	}
	return value, synonym, src
}

// TopicConfig returns the effective configuration of a topic whose overrides
// are given (name -> value, as stored with the topic). Every override is
// validated; the first bad one, in name order, is returned as the error.
func (b *Broker) TopicConfig(overrides map[string]string) (Topic, error) {
	names := make([]string, 0, len(overrides))
	for k := range overrides {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := ValidateTopicConfig(k, overrides[k]); err != nil {
			return Topic{}, err
		}
	}
	var t Topic
	for i := range topicSettings {
		ts := &topicSettings[i]
		v, ok := overrides[ts.Name]
		if !ok {
			v, _, _ = b.brokerDefault(ts)
		}
		ts.apply(&t, v)
	}
	return t, nil
}

// DescribeTopicConfig lists every topic setting, sorted by name, with the
// value the topic gets and where it comes from. Unknown override names are
// ignored here; TopicConfig and ValidateTopicConfig report them.
func (b *Broker) DescribeTopicConfig(overrides map[string]string) []TopicEntry {
	out := make([]TopicEntry, 0, len(topicSettings))
	for i := range topicSettings {
		ts := &topicSettings[i]
		bv, syn, bsrc := b.brokerDefault(ts)
		e := TopicEntry{
			Name: ts.Name, Type: ts.Type, ReadOnly: ts.ReadOnly,
			Sensitive: ts.Sensitive, Doc: ts.Doc,
		}
		if v, ok := overrides[ts.Name]; ok {
			e.Value, e.Source = v, SourceDynamicTopicConfig
			e.Synonyms = append(e.Synonyms, Synonym{Name: ts.Name, Value: v, Source: SourceDynamicTopicConfig})
		} else {
			e.Value, e.Source = bv, bsrc
		}
		e.Synonyms = append(e.Synonyms, Synonym{Name: syn, Value: bv, Source: bsrc})
		out = append(out, e)
	}
	return out
}

// normalizeCleanupPolicy turns a validated cleanup.policy list into one of
// "delete", "compact" or "compact,delete".
func normalizeCleanupPolicy(v string) string {
	var del, comp bool
	for _, it := range splitList(v) {
		del = del || it == "delete"
		comp = comp || it == "compact"
	}
	switch {
	case del && comp:
		return "compact,delete"
	case comp:
		return "compact"
	default:
		return "delete"
	}
}
