package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/connectors/jdbcsource/plan"
)

const (
	class         = "sluice.connect.JdbcSource"
	confluentCls  = "io.confluent.connect.jdbc.JdbcSourceConnector"
	version       = "1.0.0"
	connectorName = "JdbcSourceConnector"
)

type connector struct{}

func (connector) Describe() sdk.Descriptor {
	return sdk.Descriptor{
		Type: sdk.Source, Class: class, Version: version, AlterOffsets: true,
		Aliases: []string{confluentCls, connectorName, "JdbcSource"},
		Config:  configKeys,
	}
}

func (connector) Validate(_ context.Context, cfg map[string]string) ([]sdk.ConfigValue, error) {
	return validate(cfg), nil
}

// TaskConfigs deals the selected tables over at most maxTasks tasks; a
// custom query is one task.
func (connector) TaskConfigs(ctx context.Context, cfg map[string]string, maxTasks int) ([]map[string]string, error) {
	c, errs := parseConfig(cfg)
	if err := errs.err(); err != nil {
		return nil, err
	}
	if c.query != "" {
		return taskConfigs(cfg, [][]string{nil})
	}
	conn, err := pgx.ConnectConfig(ctx, c.conn)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s to list tables: %w", c.conn.Host, err)
	}
	defer conn.Close(context.Background())
	refs, err := listTables(ctx, conn, c)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.Name
	}
	return taskConfigs(cfg, splitTables(names, maxTasks))
}

// AlterOffsets accepts offsets in Confluent's shape: partitions
// {"table": name} (or its protocol 1 form) or {"query": "query"}, offsets
// {"incrementing", "timestamp", "timestamp_nanos"}.
func (connector) AlterOffsets(_ context.Context, _ map[string]string, offs sdk.Offsets) (bool, error) {
	for _, p := range offs.Source {
		_, isTable := p.Partition[plan.TableKey].(string)
		_, isQuery := p.Partition[plan.QueryKey].(string)
		if !isTable && !isQuery {
			return false, fmt.Errorf("partition %v: want {%q: name} or {%q: %q}", p.Partition, plan.TableKey, plan.QueryKey, plan.QueryPartitionValue)
		}
		if _, err := plan.OffsetFromMap(p.Offset); err != nil {
			return false, fmt.Errorf("partition %v: %w", p.Partition, err)
		}
	}
	return true, nil
}

func (connector) NewTask() sdk.SourceTask { return &sourceTask{} }
