package main

import (
	"math/big"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connectors/postgrescdc/lsnbook"
)

// srcInfo is what the source block of one event says.
type srcInfo struct {
	commitTime time.Time
	snapshot   string // "true", "last" or "false"
	txID       int64  // 0 = unknown
	lsn        uint64
}

// event builds one change event: Debezium's envelope as the value, the
// primary key struct as the key.
func (t *task) event(tbl *table, op string, before, after *data.Struct, src srcInfo) *data.Record {
	now := time.Now()
	s := data.NewStruct(sourceSchema).
		MustPut("version", version).MustPut("connector", "postgresql").MustPut("name", t.cfg.prefix).
		MustPut("ts_ms", src.commitTime.UnixMilli()).MustPut("snapshot", src.snapshot).MustPut("db", t.cfg.db).
		MustPut("ts_us", src.commitTime.UnixMicro()).MustPut("ts_ns", src.commitTime.UnixNano()).
		MustPut("schema", tbl.schema).MustPut("table", tbl.name)
	if src.txID != 0 {
		s.MustPut("txId", src.txID)
	}
	if src.lsn != 0 {
		s.MustPut("lsn", int64(src.lsn))
	}
	env := data.NewStruct(tbl.envSchema).MustPut("source", s).MustPut("op", op).
		MustPut("ts_ms", now.UnixMilli()).MustPut("ts_us", now.UnixMicro()).MustPut("ts_ns", now.UnixNano())
	if before != nil {
		env.MustPut("before", fillRequired(before))
	}
	if after != nil {
		env.MustPut("after", fillRequired(after))
	}
	keySrc := after
	if op == "d" {
		keySrc = before
	}
	r := &data.Record{Topic: tbl.topic, Partition: -1, Timestamp: -1, ValueSchema: tbl.envSchema, Value: env,
		SourcePartition: map[string]any{partitionKey: t.cfg.prefix}}
	if k := tbl.key(keySrc); k != nil {
		r.KeySchema, r.Key = tbl.keySchema, k
	}
	return r
}

// tombstone is the null-valued record that follows a delete so that
// compaction can drop the key.
func tombstone(del *data.Record) *data.Record {
	return &data.Record{Topic: del.Topic, Partition: -1, Timestamp: -1, KeySchema: del.KeySchema, Key: del.Key,
		SourcePartition: del.SourcePartition}
}

// heartbeatRecord is Debezium's heartbeat: key {serverName}, value {ts_ms}.
var (
	heartbeatKeySchema   = data.StructOf("io.debezium.connector.common.ServerNameKey", data.F("serverName", data.StringSchema))
	heartbeatValueSchema = data.StructOf("io.debezium.connector.common.Heartbeat", data.F("ts_ms", data.Int64Schema))
)

func (t *task) heartbeatRecord(now time.Time) *data.Record {
	return &data.Record{Topic: t.cfg.heartbeatTopic, Partition: -1, Timestamp: -1,
		KeySchema: heartbeatKeySchema, Key: data.NewStruct(heartbeatKeySchema).MustPut("serverName", t.cfg.prefix),
		ValueSchema: heartbeatValueSchema, Value: data.NewStruct(heartbeatValueSchema).MustPut("ts_ms", now.UnixMilli()),
		SourcePartition: map[string]any{partitionKey: t.cfg.prefix}}
}

// offsetOf is the source offset of a record at position p.
func offsetOf(p lsnbook.Pos, txID int64, commitTime time.Time) map[string]any {
	o := map[string]any{offLSN: int64(p.Change), offLSNCommit: int64(p.Resume), offTsUsec: commitTime.UnixMicro()}
	if txID != 0 {
		o[offTxID] = txID
	}
	return o
}

// fillRequired gives required fields a row event left without a value
// (columns outside a DEFAULT replica identity's key in a before image, a
// TOASTed value with no placeholder) their type's zero value, as Debezium
// does, so converters that check required fields accept the event.
func fillRequired(st *data.Struct) *data.Struct {
	for _, f := range st.Schema().Fields {
		if f.Schema.Optional || st.GetWithoutDefault(f.Name) != nil {
			continue
		}
		if z := zeroOf(f.Schema); z != nil {
			_ = st.Put(f.Name, z)
		}
	}
	return st
}

func zeroOf(s *data.Schema) any {
	if s.Name == data.DecimalName {
		scale, _ := data.DecimalScale(s)
		return data.Decimal{Unscaled: new(big.Int), Scale: scale}
	}
	switch s.Type {
	case data.TypeInt8:
		return int8(0)
	case data.TypeInt16:
		return int16(0)
	case data.TypeInt32:
		return int32(0)
	case data.TypeInt64:
		return int64(0)
	case data.TypeFloat32:
		return float32(0)
	case data.TypeFloat64:
		return float64(0)
	case data.TypeBoolean:
		return false
	case data.TypeString:
		return ""
	case data.TypeBytes:
		return []byte{}
	case data.TypeArray:
		return []any{}
	case data.TypeStruct:
		return fillRequired(data.NewStruct(s))
	}
	return nil
}
