package main

import (
	"bytes"
	"context"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
)

func testTypes(t *testing.T, p pg) {
	p.sql(t, `CREATE TABLE ty (id int8 PRIMARY KEY, i2 int2, i4 int4, n numeric(10,2), nv numeric, f8 float8, f4 float4,
 tx text, vc varchar(20), b bool, ts timestamp, ts3 timestamp(3), tz timestamptz, d date, tm time, j json, jb jsonb,
 by bytea, ia int[], ta text[], u uuid, iv interval, nn text)`)
	r := startTask(t, p.config("snapshot.mode", "no_data"), nil, true)
	p.sql(t, `INSERT INTO ty VALUES (1, -2, 40000, 12.3, 3.14159, 1.5, 0.25, 'hé', 'v', true,
 '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.123', '2024-01-02 03:04:05.5+02', '2024-01-02', '10:11:12.5',
 '{"a": 1}', '{"b": 2}', '\x0102ff', '{1,2,NULL}', '{"a b",c}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day 2 hours', NULL)`)
	recs := r.waitRecords("the row", 20*time.Second, waitN(1))
	a := evOf(recs[0]).after
	ts := time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC)
	want := map[string]any{
		"id": int64(1), "i2": int16(-2), "i4": int32(40000), "n": data.NewDecimal(1230, 2), "f8": 1.5, "f4": float32(0.25),
		"tx": "hé", "vc": "v", "b": true, "ts": ts.UnixMicro(), "ts3": ts.UnixMilli(), "tz": "2024-01-02T01:04:05.5Z",
		"d": int32(19724), "tm": int64(10*3600+11*60+12)*1_000_000 + 500_000, "j": `{"a": 1}`, "jb": `{"b": 2}`,
		"by": []byte{1, 2, 0xff}, "ia": []any{int32(1), int32(2), nil}, "ta": []any{"a b", "c"},
		"u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "iv": int64(26 * 3600 * 1_000_000), "nn": nil,
	}
	for k, w := range want {
		if got := a.Get(k); !data.ValueEqual(got, w) {
			t.Errorf("%s = %#v, want %#v", k, got, w)
		}
	}
	nv := a.Get("nv").(*data.Struct)
	if nv.Get("scale") != int32(5) || new(big.Int).SetBytes(nv.Get("value").([]byte)).Int64() != 314159 {
		t.Errorf("nv = %v, want VariableScaleDecimal 3.14159", nv)
	}
	schemaNames := map[string]string{"ts": "io.debezium.time.MicroTimestamp", "ts3": "io.debezium.time.Timestamp",
		"tz": "io.debezium.time.ZonedTimestamp", "d": "io.debezium.time.Date", "j": "io.debezium.data.Json",
		"n": data.DecimalName, "u": "io.debezium.data.Uuid", "iv": "io.debezium.time.MicroDuration"}
	for k, w := range schemaNames {
		if got := a.Schema().Field(k).Schema.Name; got != w {
			t.Errorf("%s schema %q, want %q", k, got, w)
		}
	}
	// The envelope is a valid Connect value of its schema (what a
	// converter checks), and the source block says where it came from.
	if err := recs[0].ValueSchema.Validate(recs[0].Value); err != nil {
		t.Fatalf("envelope does not fit its schema: %v", err)
	}
	src := evOf(recs[0]).source
	if src.Get("connector") != "postgresql" || src.Get("name") != "srv" || src.Get("db") != p.db ||
		src.Get("schema") != "public" || src.Get("table") != "ty" || src.Get("snapshot") != "false" || src.Get("lsn") == nil || src.Get("txId") == nil {
		t.Fatalf("source = %v", src)
	}
	if recs[0].Topic != "srv.public.ty" || recs[0].SourcePartition["server"] != "srv" {
		t.Fatalf("topic %q partition %v", recs[0].Topic, recs[0].SourcePartition)
	}
	// A snapshot reads the same row into the same value and schema.
	snap := startTask(t, p.config("slot.name", "types_snap"), nil, true)
	srecs := snap.waitRecords("the snapshot row", 20*time.Second, waitN(1))
	se := evOf(srecs[0])
	if se.op != "r" || !srecs[0].ValueSchema.Equal(recs[0].ValueSchema) || !data.ValueEqual(se.after, a) {
		t.Fatalf("snapshot row differs from the streamed one:\n%v\n%v", se.after, a)
	}
	if se.source.Get("snapshot") != "last" {
		t.Fatalf("the only snapshot row: snapshot=%v, want last", se.source.Get("snapshot"))
	}
}

func testToast(t *testing.T, p pg) {
	p.sql(t, `CREATE TABLE td (id int PRIMARY KEY, big text NOT NULL, n int);
CREATE TABLE tf (id int PRIMARY KEY, big text, n int); ALTER TABLE tf REPLICA IDENTITY FULL;`)
	r := startTask(t, p.config("snapshot.mode", "no_data"), nil, true)
	big := "(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) g)"
	p.sql(t, "INSERT INTO td VALUES (1, "+big+", 1); INSERT INTO tf VALUES (1, "+big+", 1); UPDATE td SET n = 2; UPDATE tf SET n = 2")
	recs := r.waitRecords("4 events", 20*time.Second, waitN(4))
	full := evOf(recs[0]).after.Get("big").(string)
	if len(full) != 400*32 {
		t.Fatalf("inserted big has %d chars", len(full))
	}
	// DEFAULT identity: the unchanged TOASTed column has Debezium's placeholder.
	if got := evOf(recs[2]).after.Get("big"); got != unavailable {
		t.Fatalf("td update: big = %.40v, want the placeholder", got)
	}
	// FULL identity: the old row has the value, so the new row does too.
	if got := evOf(recs[3]).after.Get("big"); got != full {
		t.Fatalf("tf update: big = %.40v..., want the value", got)
	}
}

func testTombstones(t *testing.T, p pg) {
	p.sql(t, "CREATE TABLE tb (id int PRIMARY KEY, v text)")
	r := startTask(t, p.config("snapshot.mode", "no_data"), nil, true)
	p.sql(t, "INSERT INTO tb VALUES (7, 'x'); DELETE FROM tb WHERE id = 7")
	recs := r.waitRecords("3 records", 20*time.Second, waitN(3))
	d, tomb := evOf(recs[1]), recs[2]
	if d.op != "d" || tomb.Value != nil || tomb.ValueSchema != nil || !data.ValueEqual(tomb.Key, d.key) || d.key.Get("id") != int32(7) {
		t.Fatalf("delete then tombstone: %s", describe(recs))
	}
	// The delete's position does not cover its tombstone; the tombstone's
	// position is the whole transaction's end.
	if recs[1].SourceOffset[offLSN] == recs[2].SourceOffset[offLSN] {
		t.Fatalf("delete and tombstone share a position: %v", recs[1].SourceOffset)
	}
}

func testPublications(t *testing.T, p pg) {
	p.sql(t, "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)")
	// disabled: the publication must exist.
	tk := &task{}
	err := tk.Start(context.Background(), sdk.TaskContext{Logger: sdk.Logger}, p.config("publication.autocreate.mode", "disabled", "publication.name", "nopub"), nil)
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("disabled without a publication: %v", err)
	}
	// filtered: a publication of exactly the captured tables.
	r := startTask(t, p.config("publication.autocreate.mode", "filtered", "publication.name", "fpub", "table.include.list", "public\\.a",
		"snapshot.mode", "no_data"), nil, true)
	if got := trim(p.sql(t, "SELECT string_agg(tablename, ',') FROM pg_publication_tables WHERE pubname = 'fpub'")); got != "a" {
		t.Fatalf("filtered publication has %q", got)
	}
	p.sql(t, "INSERT INTO b VALUES (1); INSERT INTO a VALUES (2)")
	recs := r.waitRecords("a's insert", 20*time.Second, waitN(1))
	if len(recs) != 1 || recs[0].Topic != "srv.public.a" {
		t.Fatalf("filtered: %s", describe(recs))
	}
	r.stop()
	// all_tables (the default) creates a FOR ALL TABLES publication; the
	// include list still filters events.
	r = startTask(t, p.config("publication.name", "apub", "slot.name", "slot2", "table.include.list", "public\\.b"), nil, true)
	if got := trim(p.sql(t, "SELECT puballtables FROM pg_publication WHERE pubname = 'apub'")); got != "t" {
		t.Fatalf("all_tables publication: puballtables=%q", got)
	}
	p.sql(t, "INSERT INTO a VALUES (3); INSERT INTO b VALUES (4)")
	recs = r.waitRecords("b's rows", 20*time.Second, waitN(2))
	for _, rec := range recs {
		if rec.Topic != "srv.public.b" {
			t.Fatalf("all_tables with include list: %s", describe(recs))
		}
	}
	// A Debezium config with another decoding plugin is refused clearly.
	vals, _ := connector{}.Validate(context.Background(), p.config("plugin.name", "decoderbufs", "snapshot.mode", "bogus"))
	var msgs []string
	for _, v := range vals {
		msgs = append(msgs, v.Errors...)
	}
	if all := strings.Join(msgs, "|"); !strings.Contains(all, "only pgoutput") || !strings.Contains(all, "snapshot.mode") && !strings.Contains(all, "bogus") {
		t.Fatalf("validate: %v", msgs)
	}
}

func lsnOf(t *testing.T, r *data.Record, key string) uint64 {
	t.Helper()
	n, ok := asUint(r.SourceOffset[key])
	if !ok {
		t.Fatalf("offset %v: no %s", r.SourceOffset, key)
	}
	return n
}

func testAckResume(t *testing.T, p pg) {
	p.sql(t, "CREATE TABLE k (id int PRIMARY KEY)")
	cfg := p.config("snapshot.mode", "no_data")
	a := startTask(t, cfg, nil, false)
	slot := cfg["slot.name"]
	start := p.slotFlushed(t, slot)
	p.sql(t, "INSERT INTO k VALUES (1)")
	p.sql(t, "BEGIN; INSERT INTO k VALUES (2); INSERT INTO k VALUES (3); INSERT INTO k VALUES (4); COMMIT")
	recs := a.waitRecords("4 inserts", 20*time.Second, waitN(4))
	// Nothing is durable: the slot must not move, however long we wait
	// (status updates go out every 200ms).
	time.Sleep(time.Second)
	if got := p.slotFlushed(t, slot); got != start {
		t.Fatalf("slot moved to %d before any commit (start %d)", got, start)
	}
	// Durable up to row 3, inside the second transaction: only the first
	// transaction may be acknowledged.
	endFirst := lsnOf(t, recs[0], offLSN)
	mid := sdk.Position{Partition: recs[2].SourcePartition, Offset: recs[2].SourceOffset}
	if err := a.task.Commit(context.Background(), sdk.Commit{Positions: []sdk.Position{mid}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the slot at the first transaction's end", func() bool { return p.slotFlushed(t, slot) == endFirst })
	time.Sleep(500 * time.Millisecond)
	if got := p.slotFlushed(t, slot); got != endFirst {
		t.Fatalf("slot at %d, want %d (the first transaction's end)", got, endFirst)
	}
	a.stop()
	// Written while the connector is down: resuming from the stored offset
	// (not the server's position) delivers it; row 3 and before are not
	// delivered again.
	p.sql(t, "INSERT INTO k VALUES (5)")
	b := startTask(t, cfg, []sdk.Position{mid}, true)
	b.waitRecords("rows 4 and 5", 20*time.Second, waitN(2))
	time.Sleep(500 * time.Millisecond)
	recs = b.records()
	var ids []int32
	for _, rec := range recs {
		ids = append(ids, evOf(rec).after.Get("id").(int32))
	}
	if len(ids) != 2 || ids[0] != 4 || ids[1] != 5 {
		t.Fatalf("after resuming mid-transaction: ids %v, want [4 5]", ids)
	}
	end := lsnOf(t, recs[1], offLSN)
	waitFor(t, 10*time.Second, "the slot at the last commit", func() bool { return p.slotFlushed(t, slot) >= end })
}

func testIdle(t *testing.T, p pg) {
	p.sql(t, "CREATE TABLE busy (id int); CREATE TABLE quiet (id int PRIMARY KEY)")
	cfg := p.config("snapshot.mode", "no_data", "table.include.list", "public\\.quiet", "heartbeat.interval.ms", "200")
	r := startTask(t, cfg, nil, true)
	p.sql(t, "INSERT INTO busy SELECT generate_series(1, 1000)")
	target, _ := asUint(trim(p.sql(t, "SELECT pg_current_wal_lsn() - '0/0'")))
	// Only the other table changed: the slot still advances, and heartbeats
	// carry the position into the stored offset.
	waitFor(t, 15*time.Second, "the slot past the other table's writes", func() bool { return p.slotFlushed(t, cfg["slot.name"]) >= target })
	recs := r.waitRecords("a heartbeat past the writes", 15*time.Second, func(recs []*data.Record) bool {
		for _, rec := range recs {
			if n, _ := asUint(rec.SourceOffset[offLSN]); n >= target && rec.Topic == "__debezium-heartbeat.srv" {
				return true
			}
		}
		return false
	})
	for _, rec := range recs {
		if rec.Topic != "__debezium-heartbeat.srv" || !bytes.Contains([]byte(rec.KeySchema.Name), []byte("ServerNameKey")) {
			t.Fatalf("idle: %s", describe(recs))
		}
	}
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
