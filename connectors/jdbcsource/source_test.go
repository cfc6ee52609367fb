package main

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/internal/testkit/pgtest"
)

// The source against a real PostgreSQL: one server, a database per
// subtest.
func TestSourceAgainstPostgres(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{NoFsync: true})
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, db *testDB)
	}{
		{"incrementing reads new rows, not updates", testIncrementing},
		{"timestamp re-reads updated rows", testTimestampUpdates},
		{"delay window holds back recent rows", testDelayWindow},
		{"timestamp+incrementing reads ties once", testTimestampIncrementingTies},
		{"timestamp mode with more ties than a batch", testTimestampTiesOverBatch},
		{"bulk reads the whole table every poll", testBulk},
		{"custom query", testCustomQuery},
		{"resumes after the committed offset", testResume},
		{"column types", testTypes},
		{"numeric.mapping and quote.sql.identifiers", testNumericMappingAndQuoting},
		{"identity column detected and nullable columns refused", testDetectAndNonNull},
		{"tables split over tasks", testTaskConfigs},
		{"stop ends a waiting poll", testStop},
		{"a database restart is survived", testDatabaseRestart},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("db%d", time.Now().UnixNano())
			pg.CreateDB(name)
			tc.run(t, &testDB{pg: pg, name: name})
		})
	}
}

type testDB struct {
	pg   *pgtest.Server
	name string
}

func (d *testDB) exec(sql string) string { return d.pg.Psql(d.name, sql) }

func (d *testDB) config(kv ...string) map[string]string {
	cfg := map[string]string{
		"connector.class":  confluentCls,
		"connection.url":   fmt.Sprintf("jdbc:postgresql://127.0.0.1:%d/%s", d.pg.Port, d.name),
		"connection.user":  "postgres",
		"topic.prefix":     "pg-",
		"poll.interval.ms": "50",
	}
	for i := 0; i < len(kv); i += 2 {
		cfg[kv[i]] = kv[i+1]
	}
	return cfg
}

func startTask(t *testing.T, cfg map[string]string, committed []sdk.Position) *sourceTask {
	t.Helper()
	task := connector{}.NewTask().(*sourceTask)
	tc := sdk.TaskContext{Connector: "jdbc", Logger: slog.Default()}
	if err := task.Start(context.Background(), tc, cfg, committed); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = task.Stop(context.Background()) })
	return task
}

// poll polls until want records arrived (or, with want 0, for a while),
// failing on more.
func poll(t *testing.T, task *sourceTask, want int) []*data.Record {
	t.Helper()
	var out []*data.Record
	deadline := time.Now().Add(10 * time.Second)
	if want == 0 {
		deadline = time.Now().Add(400 * time.Millisecond)
	}
	for time.Now().Before(deadline) && (want == 0 || len(out) < want) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		recs, err := task.Poll(ctx, sdk.PollLimits{MaxRecords: 1000, MaxWait: 200 * time.Millisecond})
		cancel()
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		out = append(out, recs...)
	}
	if len(out) != want {
		t.Fatalf("got %d records %v, want %d", len(out), field(out, "id"), want)
	}
	return out
}

// pollOnce is one Poll waiting up to a second.
func pollOnce(t *testing.T, task *sourceTask) []*data.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	recs, err := task.Poll(ctx, sdk.PollLimits{MaxRecords: 1000, MaxWait: time.Second})
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	return recs
}

// field is one column of each record's value.
func field(recs []*data.Record, name string) []any {
	var out []any
	for _, r := range recs {
		out = append(out, r.Value.(*data.Struct).Get(name))
	}
	return out
}

func ids(recs []*data.Record) string {
	var s []string
	for _, v := range field(recs, "id") {
		s = append(s, fmt.Sprint(v))
	}
	return strings.Join(s, ",")
}

func testIncrementing(t *testing.T, db *testDB) {
	db.exec(`CREATE TABLE orders (id bigserial PRIMARY KEY, item text NOT NULL);
		INSERT INTO orders (item) SELECT 'item-' || g FROM generate_series(1, 5) g`)
	task := startTask(t, db.config("mode", "incrementing", "incrementing.column.name", "id", "batch.max.rows", "2"), nil)
	recs := poll(t, task, 5)
	if got := ids(recs); got != "1,2,3,4,5" {
		t.Fatalf("ids %s", got)
	}
	r := recs[4]
	if r.Topic != "pg-orders" || r.SourcePartition["table"] != "orders" || r.SourceOffset["incrementing"] != int64(5) {
		t.Fatalf("record: topic %s partition %v offset %v", r.Topic, r.SourcePartition, r.SourceOffset)
	}
	if r.ValueSchema.Name != "orders" || r.ValueSchema.Field("id").Schema.Optional || r.ValueSchema.Field("item").Schema.Type != data.TypeString {
		t.Fatalf("schema %+v", r.ValueSchema)
	}
	// An update is not seen; a new row is.
	db.exec(`UPDATE orders SET item = 'changed' WHERE id = 2; INSERT INTO orders (item) VALUES ('item-6')`)
	if got := ids(poll(t, task, 1)); got != "6" {
		t.Fatalf("after update and insert: %s, want 6", got)
	}
	poll(t, task, 0)
}

func testTimestampUpdates(t *testing.T, db *testDB) {
	db.exec(`CREATE TABLE users (id int PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
		INSERT INTO users VALUES (1, 'a', now() - interval '3 s'), (2, 'b', now() - interval '2 s')`)
	task := startTask(t, db.config("mode", "timestamp", "timestamp.column.name", "updated_at"), nil)
	recs := poll(t, task, 2)
	if got := ids(recs); got != "1,2" {
		t.Fatalf("ids %s", got)
	}
	if _, ok := recs[1].SourceOffset["timestamp_nanos"]; !ok || recs[1].SourceOffset["incrementing"] != nil {
		t.Fatalf("timestamp offset %v", recs[1].SourceOffset)
	}
	db.exec(`UPDATE users SET name = 'a2', updated_at = now() WHERE id = 1`)
	recs = poll(t, task, 1)
	if got := field(recs, "name"); fmt.Sprint(got) != "[a2]" {
		t.Fatalf("updated row: %v", got)
	}
	poll(t, task, 0)
}

func testDelayWindow(t *testing.T, db *testDB) {
	db.exec(`CREATE TABLE events (id int PRIMARY KEY, ts timestamp NOT NULL);
		INSERT INTO events VALUES (1, (now() AT TIME ZONE 'UTC') - interval '1 hour'), (2, (now() AT TIME ZONE 'UTC') - interval '1 second')`)
	task := startTask(t, db.config("mode", "timestamp", "timestamp.column.name", "ts", "timestamp.delay.interval.ms", "3000"), nil)
	if got := ids(poll(t, task, 1)); got != "1" {
		t.Fatalf("outside the delay window: %s, want 1", got)
	}
	// Row 2 is read once its timestamp is older than the delay; a row
	// committed late with an earlier timestamp than 2's is not skipped.
	db.exec(`INSERT INTO events SELECT 3, ts - interval '100 ms' FROM events WHERE id = 2`)
	if got := ids(poll(t, task, 2)); got != "3,2" {
		t.Fatalf("after the delay: %s, want 3,2", got)
	}
}

func testTimestampIncrementingTies(t *testing.T, db *testDB) {
	db.exec(`CREATE TABLE t (id int PRIMARY KEY, ts timestamptz NOT NULL);
		INSERT INTO t SELECT g, '2026-01-01 00:00:00+00' FROM generate_series(1, 5) g;
		INSERT INTO t VALUES (6, '2026-01-01 00:00:01+00')`)
	task := startTask(t, db.config("mode", "timestamp+incrementing", "timestamp.column.name", "ts",
		"incrementing.column.name", "id", "batch.max.rows", "2"), nil)
	recs := poll(t, task, 6)
	if got := ids(recs); got != "1,2,3,4,5,6" {
		t.Fatalf("ids %s", got)
	}
	if o := recs[2].SourceOffset; o["incrementing"] != int64(3) || o["timestamp"] != time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() {
		t.Fatalf("offset of row 3: %v", o)
	}
	// A row sharing the last timestamp with a higher id still arrives.
	db.exec(`INSERT INTO t VALUES (7, '2026-01-01 00:00:01+00')`)
	if got := ids(poll(t, task, 1)); got != "7" {
		t.Fatalf("tie after the offset: %s", got)
	}
}

func testTimestampTiesOverBatch(t *testing.T, db *testDB) {
	db.exec(`CREATE TABLE t (id int PRIMARY KEY, ts timestamptz NOT NULL);
		INSERT INTO t VALUES (1, '2026-01-01 00:00:00+00');
		INSERT INTO t SELECT g, '2026-01-01 00:00:01+00' FROM generate_series(2, 6) g;
		INSERT INTO t VALUES (7, '2026-01-01 00:00:02+00')`)
	cfg := db.config("mode", "timestamp", "timestamp.column.name", "ts", "batch.max.rows", "2")
	recs := poll(t, startTask(t, cfg, nil), 7)
	got := field(recs, "id")
	sort.Slice(got, func(i, j int) bool { return got[i].(int32) < got[j].(int32) })
	if fmt.Sprint(got) != "[1 2 3 4 5 6 7]" {
		t.Fatalf("ids %v", got)
	}
	// Every record of the run at 00:00:01 but its last carries the
	// offset before the run: resuming from any of them reads the whole
	// run again, never skips part of it.
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i := 1; i < 5; i++ {
		if ms := recs[i].SourceOffset["timestamp"]; ms != t0 {
			t.Errorf("record %d (id %v) offset %v, want the run's previous timestamp %d", i, got[i], recs[i].SourceOffset, t0)
		}
	}
	for i := 1; i < 6; i++ {
		committed := []sdk.Position{{Partition: recs[i].SourcePartition, Offset: recs[i].SourceOffset}}
		want := 6 - i
		if recs[i].SourceOffset["timestamp"] == t0 {
			want = 6
		}
		poll(t, startTask(t, cfg, committed), want)
	}
}

func testBulk(t *testing.T, db *testDB) {
	db.exec(`CREATE TABLE a (id int); CREATE TABLE b (id int); INSERT INTO a SELECT generate_series(1, 5); INSERT INTO b VALUES (6)`)
	task := startTask(t, db.config("mode", "bulk", "table.whitelist", "a", "poll.interval.ms", "300", "batch.max.rows", "2"), nil)
	// The table is streamed batch.max.rows at a time, not held whole.
	var sizes []int
	var all []*data.Record
	for len(all) < 5 {
		recs := pollOnce(t, task)
		if len(recs) == 0 {
			t.Fatalf("no records after %d", len(all))
		}
		sizes, all = append(sizes, len(recs)), append(all, recs...)
	}
	if ids(all) != "1,2,3,4,5" || all[0].SourcePartition != nil || all[0].Topic != "pg-a" {
		t.Fatalf("first read: %s %v %s", ids(all), all[0].SourcePartition, all[0].Topic)
	}
	for _, n := range sizes {
		if n > 2 {
			t.Fatalf("a poll returned %d records, more than batch.max.rows", n)
		}
	}
	if got := ids(poll(t, task, 5)); got != "1,2,3,4,5" {
		t.Fatalf("second read: %s", got)
	}
}

func testCustomQuery(t *testing.T, db *testDB) {
	db.exec(`CREATE TABLE c (id int PRIMARY KEY, name text NOT NULL);
		CREATE TABLE o (id serial PRIMARY KEY, cid int NOT NULL, total numeric(8,2) NOT NULL);
		INSERT INTO c VALUES (1, 'ann'), (2, 'bob');
		INSERT INTO o (cid, total) VALUES (1, 9.50), (2, 3), (1, 1.25)`)
	q := `SELECT o.id, c.name, o.total FROM o JOIN c ON c.id = o.cid WHERE o.total > 2;`
	task := startTask(t, db.config("mode", "incrementing", "incrementing.column.name", "id", "query", q, "topic.prefix", "big-orders"), nil)
	recs := poll(t, task, 2)
	if ids(recs) != "1,2" || recs[0].Topic != "big-orders" || recs[1].SourcePartition["query"] != "query" || recs[1].SourceOffset["incrementing"] != int64(2) {
		t.Fatalf("query records: %s %s %v %v", ids(recs), recs[0].Topic, recs[1].SourcePartition, recs[1].SourceOffset)
	}
	if d := recs[0].Value.(*data.Struct).Get("total").(data.Decimal); d.String() != "9.50" {
		t.Fatalf("total %v", d)
	}
	db.exec(`INSERT INTO o (cid, total) VALUES (2, 100)`)
	if got := ids(poll(t, task, 1)); got != "4" {
		t.Fatalf("new row: %s", got)
	}
}

func testResume(t *testing.T, db *testDB) {
	db.exec(`CREATE TABLE r (id int PRIMARY KEY, ts timestamptz NOT NULL);
		INSERT INTO r SELECT g, '2026-01-01'::timestamptz + g * interval '1 microsecond' FROM generate_series(1, 6) g`)
	cfg := db.config("mode", "timestamp+incrementing", "timestamp.column.name", "ts", "incrementing.column.name", "id")
	first := poll(t, startTask(t, cfg, nil), 6)
	// Committed through row 3 (its offset, microseconds included).
	committed := []sdk.Position{{Partition: first[2].SourcePartition, Offset: first[2].SourceOffset}}
	if got := ids(poll(t, startTask(t, cfg, committed), 3)); got != "4,5,6" {
		t.Fatalf("resumed: %s, want 4,5,6", got)
	}
	// Confluent's protocol-1 partition resumes too.
	v1 := []sdk.Position{{Partition: map[string]any{"protocol": "1", "table": db.name + ".public.r"}, Offset: first[4].SourceOffset}}
	if got := ids(poll(t, startTask(t, cfg, v1), 1)); got != "6" {
		t.Fatalf("resumed from a v1 offset: %s, want 6", got)
	}
	// timestamp.initial skips what is older when there is no offset.
	cfg["timestamp.initial"] = fmt.Sprint(time.Date(2026, 1, 1, 0, 0, 0, 4000, time.UTC).UnixMilli())
	poll(t, startTask(t, cfg, nil), 6) // millisecond precision: all six are at or after it
	cfg["timestamp.initial"] = "-1"
	poll(t, startTask(t, cfg, nil), 0)
}

func testTypes(t *testing.T, db *testDB) {
	db.exec(`CREATE TABLE ty (id int NOT NULL, s smallint, b bigint, r real, d double precision, n numeric(10,3),
		bo boolean, tx text, vc varchar(5), by bytea, dt date, tm time, ts timestamp, tz timestamptz, u uuid, j jsonb);
		INSERT INTO ty VALUES (1, 2, 3, 1.5, 2.25, 12.345, true, 'hi', 'v', '\x0102', '2026-03-04', '01:02:03.456',
		  '2026-03-04 05:06:07.008', '2026-03-04 05:06:07.008+02', '6f1c2a52-1f3e-4c1b-9d7a-0123456789ab', '{"k": 1}');
		INSERT INTO ty (id) VALUES (2)`)
	recs := poll(t, startTask(t, db.config("mode", "incrementing", "incrementing.column.name", "id", "db.timezone", "Europe/Paris"), nil), 2)
	v := recs[0].Value.(*data.Struct)
	want := map[string]any{
		"id": int32(1), "s": int16(2), "b": int64(3), "r": float32(1.5), "d": 2.25, "bo": true, "tx": "hi", "vc": "v",
		"dt": time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC), "tm": time.Date(1970, 1, 1, 1, 2, 3, 456e6, time.UTC),
		// timestamp without time zone is wall-clock time in db.timezone.
		"ts": time.Date(2026, 3, 4, 4, 6, 7, 8e6, time.UTC),
		"tz": time.Date(2026, 3, 4, 3, 6, 7, 8e6, time.UTC),
		"u":  "6f1c2a52-1f3e-4c1b-9d7a-0123456789ab",
	}
	for k, w := range want {
		if got := v.Get(k); !data.ValueEqual(got, w) {
			t.Errorf("%s = %v (%T), want %v (%T)", k, got, got, w, w)
		}
	}
	if got := v.Get("by").([]byte); string(got) != "\x01\x02" {
		t.Errorf("bytea %q", got)
	}
	if got := v.Get("n").(data.Decimal).String(); got != "12.345" {
		t.Errorf("numeric %s", got)
	}
	if got := v.Get("j").(string); !strings.Contains(got, `"k"`) {
		t.Errorf("jsonb %q", got)
	}
	s := recs[0].ValueSchema
	for name, typ := range map[string]data.Type{"s": data.TypeInt16, "n": data.TypeBytes, "dt": data.TypeInt32, "ts": data.TypeInt64, "by": data.TypeBytes} {
		if f := s.Field(name); f.Schema.Type != typ || !f.Schema.Optional {
			t.Errorf("field %s schema %v optional %v, want %s optional", name, f.Schema.Type, f.Schema.Optional, typ)
		}
	}
	if s.Field("id").Schema.Optional {
		t.Error("NOT NULL id is optional")
	}
	if nulls := recs[1].Value.(*data.Struct); nulls.Get("tz") != nil || nulls.Get("n") != nil {
		t.Errorf("nulls: %v", nulls)
	}
}

func testDetectAndNonNull(t *testing.T, db *testDB) {
	db.exec(`CREATE TABLE auto (id int GENERATED ALWAYS AS IDENTITY, v text); INSERT INTO auto (v) VALUES ('x'), ('y');
		CREATE TABLE nullable (id int, ts timestamptz)`)
	recs := poll(t, startTask(t, db.config("mode", "incrementing", "table.whitelist", "auto"), nil), 2)
	if recs[1].SourceOffset["incrementing"] != int64(2) {
		t.Fatalf("identity column offset %v", recs[1].SourceOffset)
	}
	task := startTask(t, db.config("mode", "timestamp+incrementing", "table.whitelist", "nullable",
		"incrementing.column.name", "id", "timestamp.column.name", "ts"), nil)
	_, err := task.Poll(context.Background(), sdk.PollLimits{MaxWait: time.Second})
	if err == nil || !strings.Contains(err.Error(), "nullable") {
		t.Fatalf("nullable columns: %v, want an error saying so", err)
	}
	task = startTask(t, db.config("mode", "timestamp+incrementing", "table.whitelist", "nullable", "validate.non.null", "false",
		"incrementing.column.name", "id", "timestamp.column.name", "ts"), nil)
	poll(t, task, 0)
}

func testTaskConfigs(t *testing.T, db *testDB) {
	db.exec(`CREATE TABLE t1 (id int); CREATE TABLE t2 (id int); CREATE TABLE t3 (id int); CREATE TABLE skip (id int)`)
	cfg := db.config("mode", "bulk", "table.blacklist", "skip")
	tcs, err := connector{}.TaskConfigs(context.Background(), cfg, 2)
	if err != nil || len(tcs) != 2 {
		t.Fatalf("task configs: %d %v", len(tcs), err)
	}
	var all []string
	for _, tc := range tcs {
		a, err := parseAssignment(tc)
		if err != nil {
			t.Fatal(err)
		}
		for n := range a.mine {
			all = append(all, n)
		}
	}
	sort.Strings(all)
	if fmt.Sprint(all) != "[t1 t2 t3]" {
		t.Fatalf("split tables %v", all)
	}
	// A table created later is read by exactly one task.
	db.exec(`CREATE TABLE t4 (id int); INSERT INTO t4 VALUES (4)`)
	got := 0
	for _, tc := range tcs {
		tc["table.whitelist"], tc["table.blacklist"] = "t4", ""
		got += len(poll(t, startTask(t, tc, nil), func() int {
			a, _ := parseAssignment(tc)
			if a.has("t4") {
				return 1
			}
			return 0
		}()))
	}
	if got != 1 {
		t.Fatalf("t4 read by %d tasks", got)
	}
}

func testStop(t *testing.T, db *testDB) {
	db.exec(`CREATE TABLE s (id serial PRIMARY KEY)`)
	task := startTask(t, db.config("mode", "incrementing", "poll.interval.ms", "60000"), nil)
	poll(t, task, 0)
	done := make(chan struct{})
	go func() {
		_, _ = task.Poll(context.Background(), sdk.PollLimits{MaxWait: time.Minute})
		close(done)
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	_ = task.Stop(context.Background())
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("poll still running 5 s after Stop")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stop took %v", d)
	}
}

func testDatabaseRestart(t *testing.T, db *testDB) {
	db.exec(`CREATE TABLE k (id serial PRIMARY KEY); INSERT INTO k DEFAULT VALUES; INSERT INTO k DEFAULT VALUES`)
	task := startTask(t, db.config("mode", "incrementing", "connection.attempts", "100", "connection.backoff.ms", "100"), nil)
	poll(t, task, 2)
	db.exec(`CHECKPOINT`) // the server runs without fsync and synchronous commit
	db.pg.Kill()
	poll(t, task, 0) // failing queries are retried, not fatal
	db.pg.Restart()
	db.exec(`INSERT INTO k DEFAULT VALUES`)
	if got := ids(poll(t, task, 1)); got != "3" {
		t.Fatalf("after the restart: %s, want 3", got)
	}
	// A connection that keeps failing fails the task after
	// connection.attempts tries.
	task = startTask(t, db.config("mode", "incrementing", "connection.attempts", "2", "connection.backoff.ms", "10",
		"connection.url", "jdbc:postgresql://127.0.0.1:1/nowhere"), nil)
	var err error
	for i := 0; i < 5 && err == nil; i++ {
		_, err = task.Poll(context.Background(), sdk.PollLimits{MaxWait: time.Second})
	}
	if err == nil || !strings.Contains(err.Error(), "giving up after 2 attempts") {
		t.Fatalf("unreachable database: %v", err)
	}
}

func testNumericMappingAndQuoting(t *testing.T, db *testDB) {
	db.exec(`CREATE TABLE nm (id int PRIMARY KEY, a numeric(2,0), b numeric(4,0), c numeric(9,0), d numeric(18,0),
		e numeric(10,2), f numeric(30,2), g numeric(30,0), h numeric);
		INSERT INTO nm VALUES (1, 12, 1234, 123456789, 123456789012345678, 12.5, 1.25, 7, 3.5)`)
	cfg := db.config("mode", "incrementing", "incrementing.column.name", "ID", "numeric.mapping", "best_fit", "quote.sql.identifiers", "never")
	v := poll(t, startTask(t, cfg, nil), 1)[0].Value.(*data.Struct)
	want := map[string]any{"a": int8(12), "b": int16(1234), "c": int32(123456789), "d": int64(123456789012345678),
		"e": 12.5, "f": data.NewDecimal(125, 2), "g": data.NewDecimal(7, 0), "h": "3.5"}
	for k, w := range want {
		if got := v.Get(k); !data.ValueEqual(got, w) {
			t.Errorf("%s = %v (%T), want %v (%T)", k, got, got, w, w)
		}
	}
}
