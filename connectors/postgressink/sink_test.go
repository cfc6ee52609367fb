package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/internal/testkit/pgtest"
)

// The sink against a real PostgreSQL: each test gets its own database and
// drives a task as the worker does (Start, Open, Put, PreCommit).

var (
	userSchema = data.StructOf("user",
		data.F("id", data.Int64Schema),
		data.F("name", data.OptionalStringSchema),
		data.F("score", data.OptionalInt32Schema))
	keySchema = data.StructOf("key", data.F("id", data.Int64Schema))
)

func user(id int64, name string, score int32) *data.Struct {
	return data.NewStruct(userSchema).MustPut("id", id).MustPut("name", name).MustPut("score", score)
}

func key(id int64) *data.Struct { return data.NewStruct(keySchema).MustPut("id", id) }

// rec is a sink record of topic users, partition 0.
func rec(off int64, k, v any) *data.Record {
	r := &data.Record{Topic: "users", KafkaOffset: off, OriginalTopic: "users", OriginalOffset: off, Key: k, Value: v}
	if k != nil {
		r.KeySchema = keySchema
	}
	if v != nil {
		if st, ok := v.(*data.Struct); ok {
			r.ValueSchema = st.Schema()
		}
	}
	return r
}

type fixture struct {
	t    *testing.T
	pg   *pgtest.Server
	db   string
	conf map[string]string
}

func newFixture(t *testing.T, pg *pgtest.Server, conf map[string]string) *fixture {
	db := strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	pg.CreateDB(db)
	c := map[string]string{
		"name":            "sink",
		"connection.url":  fmt.Sprintf("jdbc:postgresql://127.0.0.1:%d/%s?sslmode=disable", pg.Port, db),
		"connection.user": "postgres",
		"auto.create":     "true",
	}
	for k, v := range conf {
		c[k] = v
	}
	return &fixture{t: t, pg: pg, db: db, conf: c}
}

func (f *fixture) task() *task {
	f.t.Helper()
	tk := &task{}
	if err := tk.Start(context.Background(), sdk.TaskContext{Connector: "sink"}, f.conf); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = tk.Stop(context.Background()) })
	return tk
}

func (f *fixture) put(tk *task, recs ...*data.Record) error {
	f.t.Helper()
	return tk.Put(context.Background(), recs)
}

func (f *fixture) mustPut(tk *task, recs ...*data.Record) {
	f.t.Helper()
	if err := f.put(tk, recs...); err != nil {
		var pe *sdk.PutErrors
		if errors.As(err, &pe) {
			f.t.Fatalf("put: %v", pe.Errors)
		}
		f.t.Fatalf("put: %v", err)
	}
}

func (f *fixture) query(sql string) string {
	f.t.Helper()
	return strings.ReplaceAll(f.pg.Psql(f.db, sql), "\n", ";")
}

func TestSink(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{NoFsync: true})

	t.Run("insert pk none", func(t *testing.T) {
		f := newFixture(t, pg, nil)
		tk := f.task()
		f.mustPut(tk, rec(0, nil, user(1, "a", 10)), rec(1, nil, user(1, "a", 10)))
		if got := f.query(`SELECT id, name, score FROM users ORDER BY id`); got != "1|a|10;1|a|10" {
			t.Fatalf("rows %q", got)
		}
		// Auto-create made required fields NOT NULL and optional ones nullable.
		if got := f.query(`SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name='users' ORDER BY ordinal_position`); got != "id|bigint|NO;name|text|YES;score|integer|YES" {
			t.Fatalf("columns %q", got)
		}
	})

	t.Run("upsert record_key", func(t *testing.T) {
		f := newFixture(t, pg, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key"})
		tk := f.task()
		f.mustPut(tk, rec(0, key(1), user(1, "a", 1)), rec(1, key(2), user(2, "b", 2)), rec(2, key(1), user(1, "a2", 3)))
		f.mustPut(tk, rec(3, key(2), user(2, "b2", 4)))
		if got := f.query(`SELECT id, name, score FROM users ORDER BY id`); got != "1|a2|3;2|b2|4" {
			t.Fatalf("rows %q", got)
		}
		if got := f.query(`SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'users'::regclass AND i.indisprimary`); got != "id" {
			t.Fatalf("primary key %q", got)
		}
	})

	t.Run("upsert record_value with pk.fields", func(t *testing.T) {
		f := newFixture(t, pg, map[string]string{"insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "id"})
		tk := f.task()
		f.mustPut(tk, rec(0, nil, user(1, "a", 1)), rec(1, nil, user(1, "b", 2)))
		if got := f.query(`SELECT id, name, score FROM users`); got != "1|b|2" {
			t.Fatalf("rows %q", got)
		}
	})

	t.Run("update", func(t *testing.T) {
		f := newFixture(t, pg, map[string]string{"insert.mode": "update", "pk.mode": "record_key"})
		f.pg.Psql(f.db, `CREATE TABLE users (id bigint PRIMARY KEY, name text, score integer); INSERT INTO users VALUES (1, 'old', 0)`)
		tk := f.task()
		f.mustPut(tk, rec(0, key(1), user(1, "new", 5)), rec(1, key(9), user(9, "absent", 5)))
		if got := f.query(`SELECT id, name, score FROM users ORDER BY id`); got != "1|new|5" {
			t.Fatalf("rows %q", got)
		}
	})

	t.Run("kafka pk", func(t *testing.T) {
		f := newFixture(t, pg, map[string]string{"insert.mode": "upsert", "pk.mode": "kafka"})
		tk := f.task()
		r := rec(7, nil, user(1, "a", 1))
		r.Partition = 3
		f.mustPut(tk, r)
		if got := f.query(`SELECT __connect_topic, __connect_partition, __connect_offset, id FROM users`); got != "users|3|7|1" {
			t.Fatalf("rows %q", got)
		}
	})

	t.Run("tombstone delete", func(t *testing.T) {
		f := newFixture(t, pg, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key", "delete.enabled": "true"})
		tk := f.task()
		f.mustPut(tk, rec(0, key(1), user(1, "a", 1)), rec(1, key(2), user(2, "b", 1)))
		// Delete 1; in one batch write 2, delete it and write it again.
		f.mustPut(tk, rec(2, key(1), nil), rec(3, key(2), user(2, "b2", 2)), rec(4, key(2), nil), rec(5, key(2), user(2, "b3", 3)))
		if got := f.query(`SELECT id, name, score FROM users ORDER BY id`); got != "2|b3|3" {
			t.Fatalf("rows %q", got)
		}
	})

	t.Run("insert mode keeps order of insert and delete", func(t *testing.T) {
		f := newFixture(t, pg, map[string]string{"pk.mode": "record_key", "delete.enabled": "true"})
		tk := f.task()
		f.mustPut(tk, rec(0, key(1), user(1, "a", 1)), rec(1, key(1), nil), rec(2, key(1), user(1, "b", 2)), rec(3, key(5), nil))
		if got := f.query(`SELECT id, name FROM users`); got != "1|b" {
			t.Fatalf("rows %q", got)
		}
	})

	t.Run("auto evolve", func(t *testing.T) {
		f := newFixture(t, pg, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key", "auto.evolve": "true"})
		tk := f.task()
		f.mustPut(tk, rec(0, key(1), user(1, "a", 1)))
		v2 := data.StructOf("user", data.F("id", data.Int64Schema), data.F("name", data.OptionalStringSchema),
			data.F("email", data.StringSchema), data.F("born", data.DateSchema.AsOptional()))
		r := rec(1, key(2), data.NewStruct(v2).MustPut("id", int64(2)).MustPut("name", "b").MustPut("email", "b@x"))
		f.mustPut(tk, r)
		if got := f.query(`SELECT id, name, score, email, born FROM users ORDER BY id`); got != "1|a|1||;2|b||b@x|" {
			t.Fatalf("rows %q", got)
		}
		if got := f.query(`SELECT is_nullable FROM information_schema.columns WHERE table_name='users' AND column_name='email'`); got != "YES" {
			t.Fatalf("an evolved column must be nullable: %q", got)
		}
	})

	t.Run("no auto create or evolve", func(t *testing.T) {
		f := newFixture(t, pg, map[string]string{"auto.create": "false", "errors.tolerance": "all"})
		tk := f.task()
		var pe *sdk.PutErrors
		if err := f.put(tk, rec(0, nil, user(1, "a", 1))); !errors.As(err, &pe) || !strings.Contains(pe.Errors[0].Error(), "auto.create") {
			t.Fatalf("missing table: %v", err)
		}
		f.pg.Psql(f.db, `CREATE TABLE users (id bigint, name text)`)
		if err := f.put(tk, rec(1, nil, user(2, "a", 1))); !errors.As(err, &pe) || pe.Errors[0] == nil || !strings.Contains(pe.Errors[0].Error(), "score") {
			t.Fatalf("missing column: %v", err)
		}
		// Both bad records' offsets are stored: they are not read again.
		if got := f.query(`SELECT next_offset FROM sluice_connect_offsets`); got != "2" {
			t.Fatalf("offset %q", got)
		}
	})

	t.Run("debezium envelope", func(t *testing.T) {
		f := newFixture(t, pg, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key", "table.name.format": "replica"})
		tk := f.task()
		row := data.StructOf("server.public.users.Value", data.F("id", data.Int64Schema), data.F("name", data.OptionalStringSchema))
		env := data.StructOf("server.public.users.Envelope",
			data.F("before", row.AsOptional()), data.F("after", row.AsOptional()),
			data.F("source", data.OptionalStringSchema), data.F("op", data.StringSchema), data.F("ts_ms", data.OptionalInt64Schema))
		ev := func(op string, before, after *data.Struct) *data.Struct {
			s := data.NewStruct(env).MustPut("op", op)
			if before != nil {
				s.MustPut("before", before)
			}
			if after != nil {
				s.MustPut("after", after)
			}
			return s
		}
		r := func(id int64, name string) *data.Struct {
			return data.NewStruct(row.AsOptional()).MustPut("id", id).MustPut("name", name)
		}
		f.mustPut(tk,
			rec(0, key(1), ev("r", nil, r(1, "snap"))),
			rec(1, key(2), ev("c", nil, r(2, "new"))),
			rec(2, key(1), ev("u", r(1, "snap"), r(1, "changed"))),
			rec(3, key(2), ev("d", r(2, "new"), nil)),
			rec(4, key(2), nil), // Debezium's tombstone after a delete
		)
		if got := f.query(`SELECT id, name FROM replica ORDER BY id`); got != "1|changed" {
			t.Fatalf("rows %q", got)
		}
		if got := f.query(`SELECT column_name FROM information_schema.columns WHERE table_name='replica' ORDER BY ordinal_position`); got != "id;name" {
			t.Fatalf("columns %q (the envelope must not become columns)", got)
		}
	})

	t.Run("schemaless maps", func(t *testing.T) {
		f := newFixture(t, pg, map[string]string{"insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "id"})
		tk := f.task()
		f.mustPut(tk, rec(0, nil, map[string]any{"id": int64(1), "tags": []any{"x"}, "price": 2.5}))
		if got := f.query(`SELECT id, price, tags FROM users`); got != `1|2.5|["x"]` {
			t.Fatalf("rows %q", got)
		}
	})

	t.Run("array column through a staging table", func(t *testing.T) {
		f := newFixture(t, pg, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key", "delete.enabled": "true"})
		tk := f.task()
		s := data.StructOf("v", data.F("id", data.Int64Schema), data.F("tags", data.ArrayOf(data.StringSchema)))
		v := func(id int64, tags ...any) *data.Struct {
			return data.NewStruct(s).MustPut("id", id).MustPut("tags", tags)
		}
		f.mustPut(tk, rec(0, key(1), v(1, "a")), rec(1, key(2), v(2, "b")), rec(2, key(1), v(1, "a", "c")))
		f.mustPut(tk, rec(3, key(2), nil), rec(4, key(3), v(3)))
		if got := f.query(`SELECT id, tags FROM users ORDER BY id`); got != "1|{a,c};3|{}" {
			t.Fatalf("rows %q", got)
		}
	})

	t.Run("copy batching", func(t *testing.T) {
		f := newFixture(t, pg, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key", "batch.size": "700"})
		tk := f.task()
		var recs []*data.Record
		for i := range 5000 {
			recs = append(recs, rec(int64(i), key(int64(i%2000)), user(int64(i%2000), fmt.Sprint("v", i), int32(i))))
		}
		f.mustPut(tk, recs...)
		if got := f.query(`SELECT count(*), sum(score), min(name) FROM users`); got != fmt.Sprintf("2000|%d|v3000", sumLast(5000, 2000)) {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("bad records", func(t *testing.T) {
		f := newFixture(t, pg, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key", "errors.tolerance": "all"})
		f.pg.Psql(f.db, `CREATE TABLE users (id bigint PRIMARY KEY, name text CHECK (name <> 'evil'), score integer)`)
		tk := f.task()
		err := f.put(tk,
			rec(0, key(1), user(1, "good", 1)),
			rec(1, key(2), user(2, "evil", 1)), // refused by PostgreSQL
			rec(2, nil, user(3, "keyless", 1)), // no key for record_key
			rec(3, key(4), "not a struct"),     // no fields
			rec(4, key(5), user(5, "fine", 1)),
		)
		var pe *sdk.PutErrors
		if !errors.As(err, &pe) || len(pe.Errors) != 3 || pe.Errors[1] == nil || pe.Errors[2] == nil || pe.Errors[3] == nil {
			t.Fatalf("want PutErrors for records 1, 2, 3; got %v", err)
		}
		if got := f.query(`SELECT id, name FROM users ORDER BY id`); got != "1|good;5|fine" {
			t.Fatalf("rows %q", got)
		}
	})

	// Without errors.tolerance=all the worker fails the task on a bad
	// record: the batch must then leave no row and no offset behind, so
	// it is read again once the task restarts.
	t.Run("bad records not tolerated", func(t *testing.T) {
		f := newFixture(t, pg, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key"})
		f.pg.Psql(f.db, `CREATE TABLE users (id bigint PRIMARY KEY, name text CHECK (name <> 'evil'), score integer)`)
		tk := f.task()
		var pe *sdk.PutErrors
		for _, batch := range [][]*data.Record{
			{rec(0, key(1), user(1, "good", 1)), rec(1, key(2), user(2, "evil", 1))}, // refused by PostgreSQL
			{rec(0, key(1), user(1, "good", 1)), rec(1, nil, user(3, "keyless", 1))}, // refused by the planner
		} {
			if err := f.put(tk, batch...); !errors.As(err, &pe) || len(pe.Errors) != 1 || pe.Errors[1] == nil {
				t.Fatalf("want PutErrors for record 1; got %v", err)
			}
			if got := f.query(`SELECT count(*) FROM users`) + "/" + f.query(`SELECT count(*) FROM sluice_connect_offsets`); got != "0/0" {
				t.Fatalf("rows/offsets after a failed batch: %s", got)
			}
		}
	})

	t.Run("exactly once", func(t *testing.T) {
		f := newFixture(t, pg, map[string]string{"pk.mode": "none"}) // plain inserts: a replay would duplicate
		tk := f.task()
		parts := []sdk.TopicPartition{{Topic: "users", Partition: 0}}
		if offs, err := tk.Open(context.Background(), parts); err != nil || offs != nil {
			t.Fatalf("open of a fresh partition: %v %v", offs, err)
		}
		batch := []*data.Record{rec(0, nil, user(1, "a", 1)), rec(1, nil, user(2, "b", 1))}
		f.mustPut(tk, batch...)
		// The worker crashed before committing: the batch comes again, then more.
		f.mustPut(tk, append(batch, rec(2, nil, user(3, "c", 1)))...)
		if got := f.query(`SELECT string_agg(id::text, ',' ORDER BY id) FROM users`); got != "1,2,3" {
			t.Fatalf("rows %q", got)
		}
		pre, err := tk.PreCommit(context.Background(), []sdk.TopicPartitionOffset{{Topic: "users", Partition: 0, Offset: 3}})
		if err != nil || len(pre) != 1 || pre[0].Offset != 3 {
			t.Fatalf("precommit %v %v", pre, err)
		}
		// A new task resumes where the database says.
		tk2 := f.task()
		offs, err := tk2.Open(context.Background(), parts)
		if err != nil || len(offs) != 1 || offs[0].Offset != 3 {
			t.Fatalf("open after restart: %v %v", offs, err)
		}
		// A zombie (the first task) that did not see the new task's write
		// must not write its stale batch.
		f.mustPut(tk2, rec(3, nil, user(4, "d", 1)))
		err = f.put(tk, rec(3, nil, user(4, "d", 1)), rec(4, nil, user(5, "e", 1)))
		var re *sdk.RetriableError
		if !errors.As(err, &re) {
			t.Fatalf("zombie write: want a retriable conflict, got %v", err)
		}
		f.mustPut(tk, rec(3, nil, user(4, "d", 1)), rec(4, nil, user(5, "e", 1))) // redelivered, re-filtered
		if got := f.query(`SELECT string_agg(id::text, ',' ORDER BY id) FROM users`); got != "1,2,3,4,5" {
			t.Fatalf("rows %q", got)
		}
	})

	t.Run("alter offsets", func(t *testing.T) {
		f := newFixture(t, pg, nil)
		tk := f.task()
		f.mustPut(tk, rec(0, nil, user(1, "a", 1)), rec(1, nil, user(2, "b", 1)))
		ok, err := connector{}.AlterOffsets(context.Background(), f.conf, sdk.Offsets{Sink: []sdk.TopicPartitionOffset{
			{Topic: "users", Partition: 0, Offset: 1}, {Topic: "users", Partition: 1, Offset: 7}}})
		if err != nil || !ok {
			t.Fatalf("alter: %v %v", ok, err)
		}
		tk2 := f.task()
		offs, err := tk2.Open(context.Background(), []sdk.TopicPartition{{Topic: "users", Partition: 0}, {Topic: "users", Partition: 1}})
		if err != nil || len(offs) != 2 || offs[0].Offset != 1 || offs[1].Offset != 7 {
			t.Fatalf("open after alter: %v %v", offs, err)
		}
		if _, err := (connector{}).AlterOffsets(context.Background(), f.conf, sdk.Offsets{Sink: []sdk.TopicPartitionOffset{{Topic: "users", Partition: 1, Offset: -1}}}); err != nil {
			t.Fatal(err)
		}
		if got := f.query(`SELECT partition, next_offset FROM sluice_connect_offsets ORDER BY partition`); got != "0|1" {
			t.Fatalf("after a reset: %q", got)
		}
	})

	t.Run("server restart", func(t *testing.T) {
		f := newFixture(t, pg, map[string]string{"insert.mode": "upsert", "pk.mode": "record_key", "retry.backoff.ms": "10"})
		tk := f.task()
		f.mustPut(tk, rec(0, key(1), user(1, "a", 1)))
		f.pg.Restart()
		var re *sdk.RetriableError
		if err := f.put(tk, rec(1, key(2), user(2, "b", 1))); err != nil && !errors.As(err, &re) {
			t.Fatalf("after a restart: want success or a retriable error, got %v", err)
		}
		f.mustPut(tk, rec(1, key(2), user(2, "b", 1)))
		if got := f.query(`SELECT count(*) FROM users`); got != "2" {
			t.Fatalf("rows %q", got)
		}
	})
}

// sumLast sums i over the last of each key i%keys in 0..n-1.
func sumLast(n, keys int) int {
	s := 0
	for i := n - keys; i < n; i++ {
		s += i
	}
	return s
}

func TestValidate(t *testing.T) {
	c := connector{}
	if d := c.Describe(); d.Type != sdk.Sink || !slices.Contains(d.Aliases, "io.confluent.connect.jdbc.JdbcSinkConnector") {
		t.Fatalf("descriptor %+v", d)
	}
	errsOf := func(cfg map[string]string) map[string][]string {
		vals, err := c.Validate(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, v := range vals {
			if len(v.Errors) > 0 {
				out[v.Name] = v.Errors
			}
		}
		return out
	}
	if e := errsOf(map[string]string{"connection.url": "jdbc:postgresql://db/x"}); len(e) != 0 {
		t.Fatalf("a good config: %v", e)
	}
	e := errsOf(map[string]string{"connection.url": "jdbc:mysql://db/x", "insert.mode": "upsert", "retry.backoff.ms": "soon"})
	for _, k := range []string{"connection.url", "pk.mode", "retry.backoff.ms"} {
		if len(e[k]) == 0 {
			t.Errorf("no error for %s: %v", k, e)
		}
	}
	if e := errsOf(map[string]string{}); len(e["connection.url"]) != 1 {
		t.Errorf("a missing connection.url must be reported once: %v", e)
	}
}
