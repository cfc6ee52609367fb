package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/connectors/postgrescdc/lsnbook"
)

// connector is the PostgreSQL CDC source class. It keeps no state: the
// task owns the slot, the publication and the stream.
type connector struct{}

func (connector) Describe() sdk.Descriptor {
	return sdk.Descriptor{
		Type: sdk.Source, Class: connectorClass, Aliases: []string{debeziumClass, "PostgresConnector", "PostgresCdcSource"},
		Version: version, Config: configKeys, AlterOffsets: true,
	}
}

// Validate reports every bad key, without touching the database.
func (c connector) Validate(_ context.Context, cfg map[string]string) ([]sdk.ConfigValue, error) {
	out := sdk.ValidateRequired(c.Describe(), cfg)
	_, err := parseConfig(cfg)
	errs, _ := err.(configError)
	for i := range out {
		if len(out[i].Errors) == 0 { // a missing required key is reported once
			out[i].Errors = append(out[i].Errors, errs[out[i].Name]...)
		}
	}
	return out, nil
}

// TaskConfigs is always one task: a replication slot has one reader.
func (connector) TaskConfigs(_ context.Context, cfg map[string]string, _ int) ([]map[string]string, error) {
	return []map[string]string{maps.Clone(cfg)}, nil
}

// AlterOffsets accepts offsets of this connector's shape: partition
// {"server": topic.prefix}, offset with integer "lsn" (and "lsn_commit").
// The new position takes effect at the next start; the slot must still
// hold the WAL from there (PostgreSQL cannot go back past its
// confirmed_flush_lsn).
func (connector) AlterOffsets(_ context.Context, _ map[string]string, offs sdk.Offsets) (bool, error) {
	for _, p := range offs.Source {
		if _, ok := p.Partition[partitionKey].(string); !ok {
			return false, fmt.Errorf("partition %v has no string %q key", p.Partition, partitionKey)
		}
		if p.Offset == nil {
			continue
		}
		if _, err := parseOffset(p.Offset); err != nil {
			return false, err
		}
	}
	return true, nil
}

func (connector) NewTask() sdk.SourceTask { return &task{} }

// Offset keys, as Debezium's PostgresOffsetContext names them.
const (
	partitionKey    = "server"
	offLSN          = "lsn"
	offLSNCommit    = "lsn_commit"
	offTxID         = "txId"
	offTsUsec       = "ts_usec"
	offSnapshot     = "snapshot"
	offLastSnapshot = "last_snapshot_record"
)

// storedOffset is a parsed committed offset.
type storedOffset struct {
	pos lsnbook.Pos
	// snapshotting: the offset was written during a snapshot that did not
	// finish; the snapshot must be taken again.
	snapshotting bool
}

func parseOffset(o map[string]any) (storedOffset, error) {
	lsn, ok := asUint(o[offLSN])
	if !ok {
		return storedOffset{}, fmt.Errorf("offset %v needs an integer %q", o, offLSN)
	}
	commit := lsn
	if v, present := o[offLSNCommit]; present {
		if commit, ok = asUint(v); !ok {
			return storedOffset{}, fmt.Errorf("offset %v: %q is not an integer", o, offLSNCommit)
		}
	}
	if lsn > commit {
		// Not written by this connector (Debezium's lsn_commit is the
		// previous commit): resume at the later LSN, skipping nothing.
		commit = lsn
	}
	so := storedOffset{pos: lsnbook.Pos{Resume: commit, Change: lsn}}
	snap, _ := o[offSnapshot].(bool)
	last, _ := o[offLastSnapshot].(bool)
	so.snapshotting = snap && !last
	return so, nil
}

func asUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case int64:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int:
		return uint64(x), x >= 0
	case uint64:
		return x, true
	case float64:
		return uint64(x), x >= 0 && x == float64(uint64(x))
	case json.Number:
		n, err := strconv.ParseUint(string(x), 10, 64)
		return n, err == nil
	case string:
		n, err := strconv.ParseUint(x, 10, 64)
		return n, err == nil
	}
	return 0, false
}
