// Package runtime is Sluice's Kafka Connect worker: it runs connectors and
// their tasks as out-of-process plugins, moves records between them and the
// cluster over the Kafka protocol, and keeps configs, offsets and statuses
// where Kafka Connect keeps them, so that Kafka Connect's REST clients and
// tooling work against it unchanged.
package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/config"
)

// WorkerConfig is a worker's configuration under Kafka Connect's property
// names (WorkerConfig, DistributedConfig and StandaloneConfig), so Kafka's
// connect-distributed.properties and connect-standalone.properties start
// a worker with only bootstrap.servers changed.
type WorkerConfig struct {
	BootstrapServers []string
	GroupID          string // distributed: the workers' group
	Listeners        []string
	AdvertisedURL    string // the URL other workers forward to; from rest.advertised.*

	ConfigTopic, OffsetTopic, StatusTopic   string
	ConfigRF, OffsetRF, StatusRF            int16 // -1 = the broker's default
	OffsetPartitions, StatusPartitions      int32
	OffsetFile                              string // standalone: offset.storage.file.filename
	KeyConverter, ValueConverter            string
	HeaderConverter                         string
	PluginPath                              []string
	OffsetFlushIntervalMs                   int64
	OffsetFlushTimeoutMs                    int64
	TaskShutdownTimeoutMs                   int64
	ScheduledRebalanceMaxDelayMs            int64
	SessionTimeoutMs, HeartbeatIntervalMs   int64
	RebalanceTimeoutMs                      int64
	TopicTrackingEnable, TopicTrackingReset bool

	// Raw holds every property as given, so converter properties
	// (key.converter.schemas.enable) reach the converters.
	Raw map[string]string
	// Unknown lists keys the worker does not use; Kafka warns about them
	// and starts anyway, and so does Sluice.
	Unknown []string
}

// workerDefaults are Kafka's defaults, except: the internal topics' replication
// factors are -1 (the broker's default.replication.factor, as Kafka allows
// since 2.5), so a worker started without a config works against a
// single-node broker; listeners binds
// loopback: a worker started without a config must not listen on every
// interface, and plugin.path, which points at the plugins make build puts
// next to the sluice binary.
var workerDefaults = map[string]string{
	"bootstrap.servers":                       "127.0.0.1:9092",
	"group.id":                                "connect-cluster",
	"listeners":                               "http://127.0.0.1:8083",
	"config.storage.topic":                    "connect-configs",
	"offset.storage.topic":                    "connect-offsets",
	"status.storage.topic":                    "connect-status",
	"config.storage.replication.factor":       "-1",
	"offset.storage.replication.factor":       "-1",
	"status.storage.replication.factor":       "-1",
	"offset.storage.partitions":               "25",
	"status.storage.partitions":               "5",
	"offset.storage.file.filename":            "",
	"key.converter":                           "org.apache.kafka.connect.json.JsonConverter",
	"value.converter":                         "org.apache.kafka.connect.json.JsonConverter",
	"header.converter":                        "org.apache.kafka.connect.storage.SimpleHeaderConverter",
	"plugin.path":                             "",
	"offset.flush.interval.ms":                "60000",
	"offset.flush.timeout.ms":                 "5000",
	"task.shutdown.graceful.timeout.ms":       "5000",
	"scheduled.rebalance.max.delay.ms":        "300000",
	"session.timeout.ms":                      "10000",
	"heartbeat.interval.ms":                   "3000",
	"rebalance.timeout.ms":                    "60000",
	"rest.advertised.host.name":               "",
	"rest.advertised.port":                    "",
	"rest.advertised.listener":                "",
	"topic.tracking.enable":                   "true",
	"topic.tracking.allow.reset":              "true",
	"connect.protocol":                        "sessioned",
	"exactly.once.source.support":             "disabled",
	"client.id":                               "",
	"connector.client.config.override.policy": "All",
	// Sluice-specific: host:port of the HTTP endpoint serving /metrics
	// (as the broker's admin.listener); empty turns it off.
	"admin.listener": "127.0.0.1:9645",
	// Sluice-specific: resident memory limit of each plugin process in
	// bytes (0 = none); a plugin over it is killed and restarted.
	"plugin.memory.limit.bytes": "0",
}

// knownPrefixes are property families a worker accepts: converter
// settings, and client settings Kafka passes to its producers, consumers
// and admin client (Sluice's clients take the ones it maps and ignore
// the rest).
var knownPrefixes = []string{
	"key.converter.", "value.converter.", "header.converter.",
	"producer.", "consumer.", "admin.", "rest.extension.", "config.providers",
	"ssl.", "sasl.", "security.", "metric", "listeners.https.", "admin.listeners",
}

// LoadWorkerConfig reads a worker properties file (skipped when file is
// "") and then the overrides ("key=value", as given to --set). A
// malformed line or value is an error naming it; an unknown key is kept
// in Unknown.
func LoadWorkerConfig(file string, overrides []string) (*WorkerConfig, error) {
	raw := map[string]string{}
	for k, v := range workerDefaults {
		raw[k] = v
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("connect: worker config: %w", err)
		}
		props, err := config.ParseProperties(f)
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("connect: worker config %s: %w", file, err)
		}
		for k, v := range props {
			raw[k] = v
		}
	}
	for _, o := range overrides {
		k, v, ok := strings.Cut(o, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("connect: --set %q: want key=value", o)
		}
		raw[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return buildWorkerConfig(raw)
}

func buildWorkerConfig(raw map[string]string) (*WorkerConfig, error) {
	c := &WorkerConfig{Raw: raw}
	var errs []string
	integer := func(key string) int64 {
		n, err := strconv.ParseInt(strings.TrimSpace(raw[key]), 10, 64)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s=%q: not an integer", key, raw[key]))
		}
		return n
	}
	boolean := func(key string) bool {
		b, err := strconv.ParseBool(strings.TrimSpace(raw[key]))
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s=%q: want true or false", key, raw[key]))
		}
		return b
	}
	c.BootstrapServers = splitList(raw["bootstrap.servers"])
	if len(c.BootstrapServers) == 0 {
		errs = append(errs, "bootstrap.servers: empty")
	}
	c.GroupID = strings.TrimSpace(raw["group.id"])
	c.Listeners = splitList(raw["listeners"])
	for _, l := range c.Listeners {
		if !strings.HasPrefix(l, "http://") {
			errs = append(errs, fmt.Sprintf("listeners: %q: only http:// listeners are supported", l))
		}
	}
	c.ConfigTopic, c.OffsetTopic, c.StatusTopic = raw["config.storage.topic"], raw["offset.storage.topic"], raw["status.storage.topic"]
	c.ConfigRF = int16(integer("config.storage.replication.factor"))
	c.OffsetRF = int16(integer("offset.storage.replication.factor"))
	c.StatusRF = int16(integer("status.storage.replication.factor"))
	c.OffsetPartitions = int32(integer("offset.storage.partitions"))
	c.StatusPartitions = int32(integer("status.storage.partitions"))
	c.OffsetFile = raw["offset.storage.file.filename"]
	c.KeyConverter, c.ValueConverter, c.HeaderConverter = raw["key.converter"], raw["value.converter"], raw["header.converter"]
	c.PluginPath = splitList(raw["plugin.path"])
	if len(c.PluginPath) == 0 {
		c.PluginPath = []string{DefaultPluginDir()}
	}
	c.OffsetFlushIntervalMs = integer("offset.flush.interval.ms")
	c.OffsetFlushTimeoutMs = integer("offset.flush.timeout.ms")
	c.TaskShutdownTimeoutMs = integer("task.shutdown.graceful.timeout.ms")
	c.ScheduledRebalanceMaxDelayMs = integer("scheduled.rebalance.max.delay.ms")
	c.SessionTimeoutMs = integer("session.timeout.ms")
	c.HeartbeatIntervalMs = integer("heartbeat.interval.ms")
	c.RebalanceTimeoutMs = integer("rebalance.timeout.ms")
	c.TopicTrackingEnable = boolean("topic.tracking.enable")
	c.TopicTrackingReset = boolean("topic.tracking.allow.reset")
	if c.OffsetFlushIntervalMs <= 0 {
		errs = append(errs, "offset.flush.interval.ms: must be positive")
	}
	c.AdvertisedURL = advertisedURL(raw, c.Listeners)
	for k := range raw {
		if _, ok := workerDefaults[k]; ok || hasKnownPrefix(k) {
			continue
		}
		c.Unknown = append(c.Unknown, k)
	}
	sort.Strings(c.Unknown)
	if len(errs) > 0 {
		sort.Strings(errs)
		return nil, fmt.Errorf("connect: worker config: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// advertisedURL is the URL other workers reach this one at: the
// rest.advertised.* settings when given, else the first listener.
func advertisedURL(raw map[string]string, listeners []string) string {
	first := "http://127.0.0.1:8083"
	if len(listeners) > 0 {
		first = listeners[0]
	}
	host, port := raw["rest.advertised.host.name"], raw["rest.advertised.port"]
	if host == "" && port == "" {
		return strings.TrimSuffix(first, "/")
	}
	h, p, _ := strings.Cut(strings.TrimPrefix(first, "http://"), ":")
	if host == "" {
		host = h
	}
	if port == "" {
		port = strings.TrimSuffix(p, "/")
	}
	return "http://" + host + ":" + port
}

// DefaultPluginDir is where make build puts the plugin binaries: the
// plugins directory beside the sluice executable (bin/plugins).
func DefaultPluginDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "bin/plugins"
	}
	return filepath.Join(filepath.Dir(exe), "plugins")
}

func hasKnownPrefix(k string) bool {
	for _, p := range knownPrefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// ConverterProps returns the properties for one converter: the worker's
// "<prefix>.*" settings with the prefix removed, overlaid by the
// connector's, as Kafka passes them.
func ConverterProps(prefix string, worker, connector map[string]string) map[string]string {
	out := map[string]string{}
	for _, src := range []map[string]string{worker, connector} {
		for k, v := range src {
			if rest, ok := strings.CutPrefix(k, prefix+"."); ok {
				out[rest] = v
			}
		}
	}
	return out
}
