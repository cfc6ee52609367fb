package main

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-io/sluice/connect/sdk"
)

// The connector's class and Debezium's, accepted as an alias so a Debezium
// PostgresConnector config posts unchanged.
const (
	connectorClass = "sluice.connect.PostgresCdcSource"
	debeziumClass  = "io.debezium.connector.postgresql.PostgresConnector"
	version        = "1.0.0"
)

// Snapshot modes (Debezium's snapshot.mode values).
const (
	snapInitial     = "initial"
	snapAlways      = "always"
	snapNever       = "never" // Debezium's deprecated name for no_data
	snapNoData      = "no_data"
	snapInitialOnly = "initial_only"
	snapWhenNeeded  = "when_needed"
)

// Publication autocreate modes (Debezium's publication.autocreate.mode).
const (
	pubAllTables = "all_tables"
	pubFiltered  = "filtered"
	pubDisabled  = "disabled"
)

func str(s string) *string { return &s }

// configKeys are the keys the connector reads, with Debezium's names and
// defaults.
var configKeys = []sdk.ConfigKey{
	{Name: "topic.prefix", Type: "STRING", Required: true, Importance: "HIGH",
		Documentation: "Prefix of every topic name (<prefix>.<schema>.<table>) and the source partition's server name"},
	{Name: "database.hostname", Type: "STRING", Required: true, Importance: "HIGH", Documentation: "PostgreSQL host"},
	{Name: "database.port", Type: "INT", Default: str("5432"), Importance: "HIGH", Documentation: "PostgreSQL port"},
	{Name: "database.user", Type: "STRING", Required: true, Importance: "HIGH", Documentation: "User with the REPLICATION attribute"},
	{Name: "database.password", Type: "PASSWORD", Default: str(""), Importance: "HIGH", Documentation: "Password of database.user"},
	{Name: "database.dbname", Type: "STRING", Required: true, Importance: "HIGH", Documentation: "Database to capture"},
	{Name: "database.sslmode", Type: "STRING", Default: str("prefer"), Importance: "MEDIUM", Documentation: "libpq sslmode: disable, allow, prefer, require, verify-ca, verify-full"},
	{Name: "plugin.name", Type: "STRING", Default: str("pgoutput"), Importance: "MEDIUM", Documentation: "Logical decoding plugin; only pgoutput is supported"},
	{Name: "slot.name", Type: "STRING", Default: str("debezium"), Importance: "MEDIUM", Documentation: "Logical replication slot"},
	{Name: "slot.drop.on.stop", Type: "BOOLEAN", Default: str("false"), Importance: "LOW", Documentation: "Drop the slot when the task stops (for development: changes made while stopped are lost)"},
	{Name: "publication.name", Type: "STRING", Default: str("dbz_publication"), Importance: "MEDIUM", Documentation: "Publication streamed"},
	{Name: "publication.autocreate.mode", Type: "STRING", Default: str(pubAllTables), Importance: "MEDIUM", Documentation: "all_tables, filtered or disabled"},
	{Name: "schema.include.list", Type: "LIST", Importance: "MEDIUM", Documentation: "Regular expressions matching schemas to capture"},
	{Name: "schema.exclude.list", Type: "LIST", Importance: "MEDIUM", Documentation: "Regular expressions matching schemas not to capture"},
	{Name: "table.include.list", Type: "LIST", Importance: "MEDIUM", Documentation: "Regular expressions matching schema.table names to capture"},
	{Name: "table.exclude.list", Type: "LIST", Importance: "MEDIUM", Documentation: "Regular expressions matching schema.table names not to capture"},
	{Name: "snapshot.mode", Type: "STRING", Default: str(snapInitial), Importance: "MEDIUM", Documentation: "initial, always, no_data (never), initial_only or when_needed"},
	{Name: "snapshot.fetch.size", Type: "INT", Default: str("10240"), Importance: "LOW", Documentation: "Rows read per round trip while snapshotting"},
	{Name: "tombstones.on.delete", Type: "BOOLEAN", Default: str("true"), Importance: "MEDIUM", Documentation: "Follow each delete event with a tombstone (null value)"},
	{Name: "heartbeat.interval.ms", Type: "INT", Default: str("0"), Importance: "MEDIUM", Documentation: "Emit a heartbeat record this often (0 = never) so offsets advance while captured tables are idle"},
	{Name: "heartbeat.topics.prefix", Type: "STRING", Default: str("__debezium-heartbeat"), Importance: "LOW", Documentation: "Heartbeat topic is <prefix>.<topic.prefix>"},
	{Name: "heartbeat.action.query", Type: "STRING", Importance: "LOW", Documentation: "SQL run at each heartbeat, e.g. an update of a heartbeat table, so an idle database produces WAL"},
	{Name: "status.update.interval.ms", Type: "INT", Default: str("10000"), Importance: "LOW", Documentation: "How often the flushed LSN is reported to PostgreSQL"},
	{Name: "slot.lag.log.interval.ms", Type: "INT", Default: str("60000"), Importance: "LOW", Documentation: "How often the slot's lag (bytes of WAL it holds) is logged (0 = never)"},
	{Name: "decimal.handling.mode", Type: "STRING", Default: str("precise"), Importance: "MEDIUM", Documentation: "precise, double or string"},
	{Name: "max.queue.size", Type: "INT", Default: str("8192"), Importance: "LOW", Documentation: "Records buffered before reading from PostgreSQL pauses"},
}

// config is a parsed, validated connector config.
type config struct {
	prefix                          string
	host, user, password, db, ssl   string
	port                            int
	slot, publication, pubMode      string
	dropSlotOnStop                  bool
	schemaInclude, schemaExclude    []*regexp.Regexp
	tableInclude, tableExclude      []*regexp.Regexp
	snapshotMode                    string
	fetchSize                       int
	tombstones                      bool
	heartbeat                       time.Duration
	heartbeatTopic, heartbeatAction string
	statusInterval, lagLogInterval  time.Duration
	decimalMode                     string
	queueSize                       int
}

// configError collects errors per key, for Validate and for Start.
type configError map[string][]string

func (e configError) add(key, format string, args ...any) {
	e[key] = append(e[key], fmt.Sprintf(format, args...))
}

func (e configError) Error() string {
	var b strings.Builder
	for _, k := range configKeys {
		for _, m := range e[k.Name] {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(k.Name + ": " + m)
		}
	}
	return b.String()
}

// parseConfig reads cfg with defaults; the error is a configError naming
// every bad key.
func parseConfig(cfg map[string]string) (*config, error) {
	errs := configError{}
	get := func(k string) string {
		if v, ok := cfg[k]; ok {
			return strings.TrimSpace(v)
		}
		for _, ck := range configKeys {
			if ck.Name == k && ck.Default != nil {
				return *ck.Default
			}
		}
		return ""
	}
	required := func(k string) string {
		v := get(k)
		if v == "" {
			errs.add(k, "Missing required configuration %q which has no default value.", k)
		}
		return v
	}
	intKey := func(k string, lo, hi int) int {
		v := get(k)
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			errs.add(k, "Invalid value %s: must be an integer between %d and %d", v, lo, hi)
		}
		return n
	}
	boolKey := func(k string) bool {
		v := strings.ToLower(get(k))
		if v != "true" && v != "false" {
			errs.add(k, "Invalid value %s: must be true or false", get(k))
		}
		return v == "true"
	}
	oneOf := func(k string, allowed ...string) string {
		v := strings.ToLower(get(k))
		for _, a := range allowed {
			if v == a {
				return v
			}
		}
		errs.add(k, "Invalid value %s: must be one of %s", get(k), strings.Join(allowed, ", "))
		return v
	}
	regexes := func(k string) []*regexp.Regexp {
		var out []*regexp.Regexp
		for _, p := range strings.Split(get(k), ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			re, err := regexp.Compile("(?i)^(?:" + p + ")$")
			if err != nil {
				errs.add(k, "Invalid regular expression %q: %v", p, err)
				continue
			}
			out = append(out, re)
		}
		return out
	}
	c := &config{
		prefix: required("topic.prefix"), host: required("database.hostname"),
		user: required("database.user"), password: get("database.password"), db: required("database.dbname"),
		ssl:  oneOf("database.sslmode", "disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
		port: intKey("database.port", 1, 65535),
		slot: get("slot.name"), publication: get("publication.name"),
		pubMode:        oneOf("publication.autocreate.mode", pubAllTables, pubFiltered, pubDisabled),
		dropSlotOnStop: boolKey("slot.drop.on.stop"),
		schemaInclude:  regexes("schema.include.list"), schemaExclude: regexes("schema.exclude.list"),
		tableInclude: regexes("table.include.list"), tableExclude: regexes("table.exclude.list"),
		snapshotMode:    oneOf("snapshot.mode", snapInitial, snapAlways, snapNever, snapNoData, snapInitialOnly, snapWhenNeeded),
		fetchSize:       intKey("snapshot.fetch.size", 1, 1<<24),
		tombstones:      boolKey("tombstones.on.delete"),
		heartbeat:       time.Duration(intKey("heartbeat.interval.ms", 0, 1<<30)) * time.Millisecond,
		heartbeatAction: get("heartbeat.action.query"),
		statusInterval:  time.Duration(intKey("status.update.interval.ms", 100, 3600_000)) * time.Millisecond,
		lagLogInterval:  time.Duration(intKey("slot.lag.log.interval.ms", 0, 1<<30)) * time.Millisecond,
		decimalMode:     oneOf("decimal.handling.mode", "precise", "double", "string"),
		queueSize:       intKey("max.queue.size", 1, 1<<24),
	}
	c.heartbeatTopic = get("heartbeat.topics.prefix") + "." + c.prefix
	if p := strings.ToLower(get("plugin.name")); p != "pgoutput" {
		errs.add("plugin.name", "Invalid value %s: only pgoutput is supported (decoderbufs and wal2json need server extensions this connector does not use)", get("plugin.name"))
	}
	if c.snapshotMode == snapNever {
		c.snapshotMode = snapNoData
	}
	if !validIdent(c.slot) {
		errs.add("slot.name", "Invalid value %s: a slot name is lower-case letters, digits and underscores, at most 63", c.slot)
	}
	if c.publication == "" {
		errs.add("publication.name", "must not be empty")
	}
	if len(c.tableInclude) > 0 && len(c.tableExclude) > 0 {
		errs.add("table.exclude.list", "table.include.list and table.exclude.list cannot both be set")
	}
	if len(c.schemaInclude) > 0 && len(c.schemaExclude) > 0 {
		errs.add("schema.exclude.list", "schema.include.list and schema.exclude.list cannot both be set")
	}
	if len(errs) > 0 {
		return c, errs
	}
	return c, nil
}

// validIdent is PostgreSQL's rule for slot names.
func validIdent(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// captured reports whether table schema.table is in the configured lists.
func (c *config) captured(schema, table string) bool {
	full := schema + "." + table
	if len(c.schemaInclude) > 0 && !anyMatch(c.schemaInclude, schema) {
		return false
	}
	if anyMatch(c.schemaExclude, schema) {
		return false
	}
	if len(c.tableInclude) > 0 {
		return anyMatch(c.tableInclude, full)
	}
	return !anyMatch(c.tableExclude, full)
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// dsn is the libpq URL of the database; replication adds the walsender
// parameter. Values are rendered in UTC with ISO styles so text values
// parse the same on every server.
func (c *config) dsn(replication bool) string {
	u := url.URL{Scheme: "postgres", Host: c.host + ":" + strconv.Itoa(c.port), Path: "/" + c.db,
		User: url.UserPassword(c.user, c.password)}
	q := url.Values{}
	q.Set("sslmode", c.ssl)
	q.Set("application_name", "sluice-postgrescdc")
	q.Set("timezone", "UTC")
	q.Set("datestyle", "ISO")
	q.Set("intervalstyle", "iso_8601")
	q.Set("extra_float_digits", "3")
	if replication {
		q.Set("replication", "database")
	}
	u.RawQuery = q.Encode()
	return u.String()
}
