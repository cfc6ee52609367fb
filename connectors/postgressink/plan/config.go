// Package plan is the I/O-free half of the PostgreSQL sink: it turns sink
// records into rows (primary-key modes, Debezium envelopes, tombstones,
// field filters), groups a batch into set-based statements, writes the
// SQL for them and for auto-create and auto-evolve, and keeps the
// exactly-once bookkeeping of the next offset per partition stored in the
// database. The plugin's task runs what it plans.
package plan

import (
	"fmt"
	"strconv"
	"strings"
)

// InsertMode is insert.mode.
type InsertMode string

// The insert modes of Confluent's JDBC sink.
const (
	Insert InsertMode = "insert"
	Upsert InsertMode = "upsert"
	Update InsertMode = "update"
)

// PKMode is pk.mode: where a row's primary key comes from.
type PKMode string

// The primary-key modes of Confluent's JDBC sink.
const (
	PKNone        PKMode = "none"
	PKKafka       PKMode = "kafka"
	PKRecordKey   PKMode = "record_key"
	PKRecordValue PKMode = "record_value"
)

// KafkaPKNames are the key columns of pk.mode=kafka unless pk.fields
// names three others, as Confluent's.
var KafkaPKNames = []string{"__connect_topic", "__connect_partition", "__connect_offset"}

// DefaultKeyColumn names a primitive record key's column when pk.fields
// is empty, as Confluent's.
const DefaultKeyColumn = "__connect_key"

// Config is the part of a connector config that shapes rows and
// statements.
type Config struct {
	InsertMode    InsertMode
	PKMode        PKMode
	PKFields      []string
	TableFormat   string          // table.name.format, ${topic} replaced
	Fields        map[string]bool // fields.include: value fields kept; nil = all
	DeleteEnabled bool
	AutoCreate    bool
	AutoEvolve    bool
	BatchSize     int // rows per COPY

	tables map[string]string // TableName's answers by topic
}

// ConfigError is one bad config key.
type ConfigError struct{ Key, Msg string }

func (e ConfigError) Error() string { return e.Key + ": " + e.Msg }

// ParseConfig reads the keys Config holds, with Confluent's defaults,
// and returns every problem found.
func ParseConfig(m map[string]string) (Config, []ConfigError) {
	var errs []ConfigError
	get := func(k, def string) string {
		if v, ok := m[k]; ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	boolean := func(k string, def bool) bool {
		v := get(k, strconv.FormatBool(def))
		b, err := strconv.ParseBool(strings.ToLower(v))
		if err != nil {
			errs = append(errs, ConfigError{k, fmt.Sprintf("%q is not true or false", v)})
		}
		return b
	}
	c := Config{
		InsertMode:    InsertMode(strings.ToLower(get("insert.mode", "insert"))),
		PKMode:        PKMode(strings.ToLower(get("pk.mode", "none"))),
		PKFields:      list(get("pk.fields", "")),
		TableFormat:   get("table.name.format", "${topic}"),
		DeleteEnabled: boolean("delete.enabled", false),
		AutoCreate:    boolean("auto.create", false),
		AutoEvolve:    boolean("auto.evolve", false),
	}
	switch c.InsertMode {
	case Insert, Upsert, Update:
	default:
		errs = append(errs, ConfigError{"insert.mode", fmt.Sprintf("%q is not insert, upsert or update", c.InsertMode)})
	}
	switch c.PKMode {
	case PKNone, PKKafka, PKRecordKey, PKRecordValue:
	default:
		errs = append(errs, ConfigError{"pk.mode", fmt.Sprintf("%q is not none, kafka, record_key or record_value", c.PKMode)})
	}
	if c.PKMode == PKNone && c.InsertMode != Insert {
		errs = append(errs, ConfigError{"pk.mode", fmt.Sprintf("insert.mode=%s needs a primary key: set pk.mode to record_key, record_value or kafka", c.InsertMode)})
	}
	if c.PKMode == PKNone && len(c.PKFields) > 0 {
		errs = append(errs, ConfigError{"pk.fields", "pk.fields is set but pk.mode is none"})
	}
	if c.PKMode == PKKafka && len(c.PKFields) != 0 && len(c.PKFields) != 3 {
		errs = append(errs, ConfigError{"pk.fields", "pk.mode=kafka takes three names (topic, partition, offset columns) or none"})
	}
	if c.DeleteEnabled && c.PKMode != PKRecordKey {
		errs = append(errs, ConfigError{"delete.enabled", "delete.enabled=true needs pk.mode=record_key"})
	}
	if !strings.Contains(c.TableFormat, "${topic}") && strings.TrimSpace(c.TableFormat) == "" {
		errs = append(errs, ConfigError{"table.name.format", "empty"})
	}
	inc := get("fields.include", get("fields.whitelist", ""))
	if f := list(inc); len(f) > 0 {
		c.Fields = map[string]bool{}
		for _, n := range f {
			c.Fields[n] = true
		}
	}
	c.BatchSize = 3000
	if v := get("batch.size", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, ConfigError{"batch.size", fmt.Sprintf("%q is not a positive number", v)})
		} else {
			c.BatchSize = n
		}
	}
	return c, errs
}

// TableName is table.name.format for a topic.
// A Config is used by one task at a time, which caches the answers.
func (c *Config) TableName(topic string) string {
	if t, ok := c.tables[topic]; ok {
		return t
	}
	if c.tables == nil || len(c.tables) > 1000 {
		c.tables = map[string]string{}
	}
	t := strings.ReplaceAll(c.TableFormat, "${topic}", topic)
	c.tables[topic] = t
	return t
}

func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
