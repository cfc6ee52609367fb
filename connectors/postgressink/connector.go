package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/connectors/internal/pgjdbc"
	"github.com/sluice-io/sluice/connectors/postgressink/plan"
)

const (
	class   = "sluice.connect.PostgresSink"
	version = "0.1.0"
)

type connector struct{}

func (connector) Describe() sdk.Descriptor {
	s := data.Str
	return sdk.Descriptor{
		Type: sdk.Sink, Class: class, Version: version,
		Aliases:      []string{"io.confluent.connect.jdbc.JdbcSinkConnector", "JdbcSinkConnector", "PostgresSink"},
		AlterOffsets: true,
		Config: []sdk.ConfigKey{
			{Name: "connection.url", Type: "STRING", Required: true, Importance: "HIGH", Group: "Connection",
				Documentation: "JDBC connection URL, jdbc:postgresql://host:port/database?params (postgres:// URLs work too)."},
			{Name: "connection.user", Type: "STRING", Default: s(""), Importance: "HIGH", Group: "Connection", Documentation: "JDBC connection user."},
			{Name: "connection.password", Type: "PASSWORD", Default: s(""), Importance: "HIGH", Group: "Connection", Documentation: "JDBC connection password."},
			{Name: "insert.mode", Type: "STRING", Default: s("insert"), Importance: "HIGH", Group: "Writes",
				Documentation: "insert, upsert (INSERT … ON CONFLICT (pk) DO UPDATE) or update."},
			{Name: "batch.size", Type: "INT", Default: s("3000"), Importance: "MEDIUM", Group: "Writes", Documentation: "Most rows per COPY."},
			{Name: "delete.enabled", Type: "BOOLEAN", Default: s("false"), Importance: "MEDIUM", Group: "Writes",
				Documentation: "Delete the row of a tombstone's key; needs pk.mode=record_key."},
			{Name: "table.name.format", Type: "STRING", Default: s("${topic}"), Importance: "MEDIUM", Group: "Data Mapping",
				Documentation: "Destination table name; ${topic} is the record's topic. table, schema.table or database.schema.table."},
			{Name: "pk.mode", Type: "STRING", Default: s("none"), Importance: "HIGH", Group: "Data Mapping",
				Documentation: "none, kafka (__connect_topic, __connect_partition, __connect_offset), record_key or record_value."},
			{Name: "pk.fields", Type: "LIST", Default: s(""), Importance: "MEDIUM", Group: "Data Mapping",
				Documentation: "Primary-key fields: for kafka three column names; for record_key and record_value the fields (all when empty)."},
			{Name: "fields.whitelist", Type: "LIST", Default: s(""), Importance: "MEDIUM", Group: "Data Mapping",
				Documentation: "Value fields to write (all when empty)."},
			{Name: "fields.include", Type: "LIST", Default: s(""), Importance: "MEDIUM", Group: "Data Mapping",
				Documentation: "Same as fields.whitelist."},
			{Name: "auto.create", Type: "BOOLEAN", Default: s("false"), Importance: "MEDIUM", Group: "DDL Support",
				Documentation: "CREATE TABLE from the record schema when the table is missing."},
			{Name: "auto.evolve", Type: "BOOLEAN", Default: s("false"), Importance: "MEDIUM", Group: "DDL Support",
				Documentation: "ALTER TABLE ADD COLUMN (nullable) for record fields the table lacks."},
			{Name: "retry.backoff.ms", Type: "INT", Default: s("3000"), Importance: "MEDIUM", Group: "Retries",
				Documentation: "Wait before a batch is retried after a connection or transient database error."},
			{Name: "offsets.table.name", Type: "STRING", Default: s(plan.OffsetsTable), Importance: "LOW", Group: "Exactly once",
				Documentation: "Table in the target database holding each partition's next offset, written in the same transaction as the rows."},
		},
	}
}

// settings is a parsed connector config.
type settings struct {
	plan    plan.Config
	conn    *pgx.ConnConfig
	offsets pgjdbc.Table
	backoff time.Duration
	// tolerate is errors.tolerance=all: bad records are reported and
	// skipped, their offsets stored with the batch. Otherwise a batch with
	// a bad record writes nothing and stores no offset, as the worker then
	// fails the task, and the records must be read again once it restarts.
	tolerate bool
}

// parse reads a config, returning the problems by key.
func parse(cfg map[string]string) (settings, map[string][]string) {
	problems := map[string][]string{}
	var st settings
	pc, errs := plan.ParseConfig(cfg)
	st.plan = pc
	for _, e := range errs {
		problems[e.Key] = append(problems[e.Key], e.Msg)
	}
	if cfg["connection.url"] == "" {
		problems["connection.url"] = append(problems["connection.url"], "Missing required configuration \"connection.url\" which has no default value.")
	} else if c, err := pgjdbc.ParseURL(cfg["connection.url"], cfg["connection.user"], cfg["connection.password"]); err != nil {
		problems["connection.url"] = append(problems["connection.url"], err.Error())
	} else {
		st.conn = c
	}
	name := cfg["offsets.table.name"]
	if name == "" {
		name = plan.OffsetsTable
	}
	t, err := pgjdbc.ParseTable(name)
	if err != nil {
		problems["offsets.table.name"] = append(problems["offsets.table.name"], err.Error())
	}
	st.offsets = t
	st.tolerate = strings.EqualFold(strings.TrimSpace(cfg["errors.tolerance"]), "all")
	st.backoff = 3 * time.Second
	if v := cfg["retry.backoff.ms"]; v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms < 0 {
			problems["retry.backoff.ms"] = append(problems["retry.backoff.ms"], fmt.Sprintf("%q is not a number of milliseconds", v))
		}
		st.backoff = time.Duration(ms) * time.Millisecond
	}
	return st, problems
}

func (c connector) Validate(_ context.Context, cfg map[string]string) ([]sdk.ConfigValue, error) {
	vals := sdk.ValidateRequired(c.Describe(), cfg)
	_, problems := parse(cfg)
	for i := range vals {
		for _, p := range problems[vals[i].Name] {
			if len(vals[i].Errors) == 0 || vals[i].Errors[0] != p {
				vals[i].Errors = append(vals[i].Errors, p)
			}
		}
	}
	return vals, nil
}

// TaskConfigs gives every task the connector's config; the worker's
// consumer group spreads the partitions between them.
func (connector) TaskConfigs(_ context.Context, cfg map[string]string, maxTasks int) ([]map[string]string, error) {
	return sdk.SameTaskConfigs(cfg, maxTasks), nil
}

// AlterOffsets applies a change of the connector's offsets to the
// offsets stored in the database, which are the ones the tasks resume
// from: a reset (-1) deletes the partition's row.
func (connector) AlterOffsets(ctx context.Context, cfg map[string]string, offs sdk.Offsets) (bool, error) {
	st, problems := parse(cfg)
	if len(problems) > 0 {
		return false, fmt.Errorf("bad config: %v", problems)
	}
	conn, err := pgx.ConnectConfig(ctx, st.conn)
	if err != nil {
		return false, fmt.Errorf("connecting to PostgreSQL to alter the stored offsets: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, plan.CreateOffsetsTable(st.offsets)); err != nil {
		return false, err
	}
	name := cfg["name"]
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, o := range offs.Sink {
			var err error
			if o.Offset < 0 {
				_, err = tx.Exec(ctx, plan.DeleteOffset(st.offsets), name, o.Topic, o.Partition)
			} else {
				_, err = tx.Exec(ctx, plan.SetOffset(st.offsets), name, o.Topic, o.Partition, o.Offset)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("altering the stored offsets: %w", err)
	}
	return true, nil
}

func (connector) NewTask() sdk.SinkTask { return &task{} }
