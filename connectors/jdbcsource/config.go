package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/connectors/internal/pgjdbc"
	"github.com/sluice-io/sluice/connectors/jdbcsource/plan"
)

// Config keys: Confluent's JdbcSourceConnectorConfig names, so a config
// written for io.confluent.connect.jdbc.JdbcSourceConnector posts
// unchanged.
const (
	keyURL             = "connection.url"
	keyUser            = "connection.user"
	keyPassword        = "connection.password"
	keyAttempts        = "connection.attempts"
	keyBackoff         = "connection.backoff.ms"
	keyMode            = "mode"
	keyInc             = "incrementing.column.name"
	keyTS              = "timestamp.column.name"
	keyWhitelist       = "table.whitelist"
	keyBlacklist       = "table.blacklist"
	keyInclude         = "table.include.list"
	keyExclude         = "table.exclude.list"
	keyTableTypes      = "table.types"
	keySchemaPattern   = "schema.pattern"
	keyQuery           = "query"
	keyTopicPrefix     = "topic.prefix"
	keyPoll            = "poll.interval.ms"
	keyBatch           = "batch.max.rows"
	keyDelay           = "timestamp.delay.interval.ms"
	keyTablePoll       = "table.poll.interval.ms"
	keyValidateNonNull = "validate.non.null"
	keyTSInitial       = "timestamp.initial"
	keyDBTimezone      = "db.timezone"
	keyNumericMapping  = "numeric.mapping"
	keyQuoteIdents     = "quote.sql.identifiers"

	// Task config keys the connector adds (not user settings).
	keyTaskTables = "sluice.jdbc.task.tables" // JSON list of the task's tables
	keyTaskKnown  = "sluice.jdbc.task.known"  // JSON list of every table split at start
	keyTaskIndex  = "sluice.jdbc.task.index"
	keyTaskCount  = "sluice.jdbc.task.count"
)

func ptr(s string) *string { return &s }

// configKeys is the connector's config definition (GET
// /connector-plugins/{class}/config), with Confluent's defaults.
var configKeys = []sdk.ConfigKey{
	{Name: keyURL, Type: "STRING", Required: true, Importance: "HIGH", Group: "Database",
		Documentation: "JDBC connection URL, jdbc:postgresql://host:port/database (postgres:// URLs work too)."},
	{Name: keyUser, Type: "STRING", Default: nil, Importance: "HIGH", Group: "Database", Documentation: "JDBC connection user."},
	{Name: keyPassword, Type: "PASSWORD", Default: nil, Importance: "HIGH", Group: "Database", Documentation: "JDBC connection password."},
	{Name: keyAttempts, Type: "INT", Default: ptr("3"), Importance: "LOW", Group: "Database",
		Documentation: "Maximum number of attempts to retrieve a valid connection; a task fails after this many failures in a row."},
	{Name: keyBackoff, Type: "LONG", Default: ptr("10000"), Importance: "LOW", Group: "Database",
		Documentation: "Backoff time in milliseconds between connection attempts."},
	{Name: keyWhitelist, Type: "LIST", Default: ptr(""), Importance: "MEDIUM", Group: "Database",
		Documentation: "List of tables to include in copying (table or schema.table). If specified, table.blacklist may not be set."},
	{Name: keyBlacklist, Type: "LIST", Default: ptr(""), Importance: "MEDIUM", Group: "Database",
		Documentation: "List of tables to exclude from copying. If specified, table.whitelist may not be set."},
	{Name: keyInclude, Type: "LIST", Default: ptr(""), Importance: "MEDIUM", Group: "Database",
		Documentation: "Regular expressions matching the tables (table or schema.table, whole name) to copy."},
	{Name: keyExclude, Type: "LIST", Default: ptr(""), Importance: "MEDIUM", Group: "Database",
		Documentation: "Regular expressions matching the tables (table or schema.table, whole name) not to copy."},
	{Name: keySchemaPattern, Type: "STRING", Default: nil, Importance: "MEDIUM", Group: "Database",
		Documentation: "Schema pattern (SQL LIKE) to fetch table metadata from; unset: every schema but PostgreSQL's own."},
	{Name: keyTableTypes, Type: "LIST", Default: ptr("TABLE"), Importance: "LOW", Group: "Database",
		Documentation: "Table types to copy: TABLE, VIEW, MATERIALIZED VIEW."},
	{Name: keyMode, Type: "STRING", Required: true, Importance: "HIGH", Group: "Mode",
		Documentation: "How to detect new rows: bulk, incrementing, timestamp or timestamp+incrementing."},
	{Name: keyInc, Type: "STRING", Default: ptr(""), Importance: "MEDIUM", Group: "Mode",
		Documentation: "The strictly incrementing column detecting new rows; empty: the table's identity or serial column."},
	{Name: keyTS, Type: "LIST", Default: ptr(""), Importance: "MEDIUM", Group: "Mode",
		Documentation: "Timestamp columns detecting new or modified rows; with several, the first non-null one (COALESCE) in each row."},
	{Name: keyValidateNonNull, Type: "BOOLEAN", Default: ptr("true"), Importance: "LOW", Group: "Mode",
		Documentation: "Fail the task if the incrementing or timestamp columns of a table are nullable."},
	{Name: keyTSInitial, Type: "LONG", Default: nil, Importance: "LOW", Group: "Mode",
		Documentation: "Epoch ms to start timestamp queries from when there is no offset; -1: now; unset: read everything."},
	{Name: keyQuery, Type: "STRING", Default: ptr(""), Importance: "MEDIUM", Group: "Mode",
		Documentation: "A custom query to read instead of whole tables; the incremental predicates are applied around it."},
	{Name: keyTopicPrefix, Type: "STRING", Required: true, Importance: "HIGH", Group: "Connector",
		Documentation: "Prefix of the topic names: the topic is the prefix and the table name, or the prefix alone for a custom query."},
	{Name: keyPoll, Type: "INT", Default: ptr("5000"), Importance: "HIGH", Group: "Connector",
		Documentation: "Frequency in ms to poll for new data in each table."},
	{Name: keyBatch, Type: "INT", Default: ptr("100"), Importance: "LOW", Group: "Connector",
		Documentation: "Maximum number of rows one query of a table returns."},
	{Name: keyTablePoll, Type: "LONG", Default: ptr("60000"), Importance: "LOW", Group: "Connector",
		Documentation: "Frequency in ms to look for new or removed tables."},
	{Name: keyDelay, Type: "LONG", Default: ptr("0"), Importance: "HIGH", Group: "Connector",
		Documentation: "How long after a row's timestamp (by the database's clock) before it is read, so transactions still open with earlier timestamps commit first."},
	{Name: keyNumericMapping, Type: "STRING", Default: nil, Importance: "LOW", Group: "Connector",
		Documentation: "Map numeric(p,s) columns by precision and scale: none (Decimal), precision_only, best_fit or best_fit_eager_double."},
	{Name: keyQuoteIdents, Type: "STRING", Default: ptr("always"), Importance: "MEDIUM", Group: "Connector",
		Documentation: "Whether to quote table and column names in the statements: always or never (then PostgreSQL folds them to lower case)."},
	{Name: keyDBTimezone, Type: "STRING", Default: ptr("UTC"), Importance: "MEDIUM", Group: "Connector",
		Documentation: "Time zone of timestamp (without time zone) columns."},
}

// config is a parsed connector or task config.
type config struct {
	conn            *pgx.ConnConfig
	attempts        int
	backoff         time.Duration
	mode            plan.Mode
	incColumn       string   // "" = detect the identity column
	tsColumns       []string // unquoted
	whitelist       []string
	blacklist       []string
	include         []*regexp.Regexp
	exclude         []*regexp.Regexp
	schemaPattern   string
	relkinds        []string // pg_class.relkind values of table.types
	query           string
	topicPrefix     string
	poll            time.Duration
	batch           int
	tablePoll       time.Duration
	delay           time.Duration
	validateNonNull bool
	tsInitial       *int64
	loc             *time.Location
	numeric         numericMapping
	quote           bool
}

// configErrors collects messages per key.
type configErrors map[string][]string

func (e configErrors) add(key, format string, args ...any) {
	e[key] = append(e[key], fmt.Sprintf(format, args...))
}

func (e configErrors) err() error {
	if len(e) == 0 {
		return nil
	}
	var parts []string
	for _, k := range configKeyOrder(e) {
		parts = append(parts, k+": "+strings.Join(e[k], "; "))
	}
	return fmt.Errorf("invalid configuration: %s", strings.Join(parts, "; "))
}

func configKeyOrder(e configErrors) []string {
	var out []string
	for _, k := range configKeys {
		if _, ok := e[k.Name]; ok {
			out = append(out, k.Name)
		}
	}
	return out
}

// list splits a LIST value as Kafka's ConfigDef does: commas, trimmed,
// empties dropped.
func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseConfig parses and checks a config; every problem is reported
// against its key.
func parseConfig(m map[string]string) (*config, configErrors) {
	errs := configErrors{}
	c := &config{}
	get := func(k string) string {
		if v, ok := m[k]; ok {
			return strings.TrimSpace(v)
		}
		for _, d := range configKeys {
			if d.Name == k && d.Default != nil {
				return *d.Default
			}
		}
		return ""
	}
	intKey := func(k string, least int64) int64 {
		v := get(k)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < least {
			errs.add(k, "Invalid value %s for configuration %s: must be an integer >= %d", v, k, least)
			return least
		}
		return n
	}
	if u := get(keyURL); u == "" {
		errs.add(keyURL, "Missing required configuration %q which has no default value.", keyURL)
	} else if cc, err := pgjdbc.ParseURL(u, m[keyUser], m[keyPassword]); err != nil {
		errs.add(keyURL, "%v", err)
	} else {
		c.conn = cc
	}
	c.attempts = int(intKey(keyAttempts, 1))
	c.backoff = time.Duration(intKey(keyBackoff, 0)) * time.Millisecond
	if v := get(keyMode); v == "" {
		errs.add(keyMode, "Missing required configuration %q which has no default value.", keyMode)
	} else if md, err := plan.ParseMode(v); err != nil {
		errs.add(keyMode, "Invalid value %s for configuration mode: String must be one of: bulk, timestamp, incrementing, timestamp+incrementing", v)
	} else {
		c.mode = md
	}
	c.incColumn = get(keyInc)
	c.tsColumns = list(get(keyTS))
	c.query = get(keyQuery)
	if c.mode.UsesTS() && len(c.tsColumns) == 0 {
		errs.add(keyTS, "mode %s needs timestamp.column.name", c.mode)
	}
	if c.mode.UsesInc() && c.incColumn == "" && c.query != "" {
		errs.add(keyInc, "mode %s with a custom query needs incrementing.column.name (it cannot be detected)", c.mode)
	}
	c.whitelist, c.blacklist = list(get(keyWhitelist)), list(get(keyBlacklist))
	if len(c.whitelist) > 0 && len(c.blacklist) > 0 {
		errs.add(keyWhitelist, "table.whitelist and table.blacklist cannot both be set")
	}
	for _, kr := range []struct {
		key string
		out *[]*regexp.Regexp
	}{{keyInclude, &c.include}, {keyExclude, &c.exclude}} {
		for _, p := range list(get(kr.key)) {
			re, err := regexp.Compile("^(?:" + p + ")$")
			if err != nil {
				errs.add(kr.key, "%q is not a regular expression: %v", p, err)
				continue
			}
			*kr.out = append(*kr.out, re)
		}
	}
	if c.query != "" && (len(c.whitelist)+len(c.blacklist)+len(c.include)+len(c.exclude)) > 0 {
		errs.add(keyQuery, "a custom query cannot be combined with table.whitelist, table.blacklist, table.include.list or table.exclude.list")
	}
	c.schemaPattern = get(keySchemaPattern)
	for _, ty := range list(strings.ToUpper(get(keyTableTypes))) {
		switch ty {
		case "TABLE":
			c.relkinds = append(c.relkinds, "r", "p")
		case "VIEW":
			c.relkinds = append(c.relkinds, "v")
		case "MATERIALIZED VIEW":
			c.relkinds = append(c.relkinds, "m")
		default:
			errs.add(keyTableTypes, "table type %q: want TABLE, VIEW or MATERIALIZED VIEW", ty)
		}
	}
	if len(c.relkinds) == 0 && errs[keyTableTypes] == nil {
		errs.add(keyTableTypes, "no table type given")
	}
	c.topicPrefix = m[keyTopicPrefix]
	if _, ok := m[keyTopicPrefix]; !ok {
		errs.add(keyTopicPrefix, "Missing required configuration %q which has no default value.", keyTopicPrefix)
	} else if c.query != "" && c.topicPrefix == "" {
		errs.add(keyTopicPrefix, "a custom query writes to the topic topic.prefix names: it cannot be empty")
	}
	c.poll = time.Duration(intKey(keyPoll, 1)) * time.Millisecond
	c.batch = int(intKey(keyBatch, 1))
	c.tablePoll = time.Duration(intKey(keyTablePoll, 1)) * time.Millisecond
	c.delay = time.Duration(intKey(keyDelay, 0)) * time.Millisecond
	switch v := strings.ToLower(get(keyValidateNonNull)); v {
	case "true", "false":
		c.validateNonNull = v == "true"
	default:
		errs.add(keyValidateNonNull, "Invalid value %s for configuration validate.non.null: Expected value to be either true or false", v)
	}
	if v := get(keyTSInitial); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < -1 {
			errs.add(keyTSInitial, "Invalid value %s for configuration timestamp.initial: epoch milliseconds, or -1 for now", v)
		} else {
			c.tsInitial = &n
		}
	}
	if nm, ok := parseNumericMapping(get(keyNumericMapping)); ok {
		c.numeric = nm
	} else {
		errs.add(keyNumericMapping, "Invalid value %s for configuration numeric.mapping: String must be one of: none, precision_only, best_fit, best_fit_eager_double", get(keyNumericMapping))
	}
	switch v := get(keyQuoteIdents); v {
	case "always", "never":
		c.quote = v == "always"
	default:
		errs.add(keyQuoteIdents, "Invalid value %s for configuration quote.sql.identifiers: String must be one of: always, never", v)
	}
	loc, err := time.LoadLocation(get(keyDBTimezone))
	if err != nil {
		errs.add(keyDBTimezone, "Invalid time zone %q: %v", get(keyDBTimezone), err)
		loc = time.UTC
	}
	c.loc = loc
	return c, errs
}

// validate is the connector's Validate: one ConfigValue per key, errors
// attached to the key they concern.
func validate(m map[string]string) []sdk.ConfigValue {
	_, errs := parseConfig(m)
	out := make([]sdk.ConfigValue, 0, len(configKeys))
	for _, k := range configKeys {
		cv := sdk.ConfigValue{Name: k.Name, Visible: true, Errors: errs[k.Name]}
		if v, ok := m[k.Name]; ok {
			if k.Type == "PASSWORD" {
				v = "[hidden]"
			}
			cv.Value = ptr(v)
		} else if k.Default != nil {
			cv.Value = ptr(*k.Default)
		}
		out = append(out, cv)
	}
	return out
}
