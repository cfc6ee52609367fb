package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/internal/testkit/pgtest"
)

// The PostgreSQL sink's exactly-once proof: 100,000 records flow from a
// topic into two tables, one by upsert (the latest value per key) and one
// by plain insert (every record once: a duplicate or a gap shows), while
// the plugin, the worker and the broker are killed with SIGKILL at random
// moments, three times each, and restarted (10,000 records and one kill of
// each with -short). Both tables end exactly as the topic says. The seed
// of the moments is logged; SLUICE_PGSINK_SEED replays one.
func TestConnectPostgresSinkExactlyOnceUnderKills(t *testing.T) {
	total, kills, spread := 100_000, 3, 60*time.Second
	if testing.Short() {
		total, kills, spread = 10_000, 1, 25*time.Second
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_PGSINK_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (SLUICE_PGSINK_SEED=%d replays the kill moments)", seed, seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("failed with seed %d", seed)
		}
	})
	rng := rand.New(rand.NewPCG(seed, seed>>1|1))

	pg := pgtest.Start(t, pgtest.Options{NoFsync: true})
	pg.CreateDB("replica")
	dir := t.TempDir()
	port := testkit.FreePorts(t, 1)[0]
	listen := fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d", port)
	b := startBroker(t, "std", dir, listen)
	const topic, parts, keys = "users", 3, 5000
	createTopic(t, b.Addr(), topic, parts, nil)
	plugins := connectPlugins(t)
	w := startWorker(t, b.Addr(), plugins)

	base := map[string]string{
		"connector.class":                "io.confluent.connect.jdbc.JdbcSinkConnector",
		"connection.url":                 fmt.Sprintf("jdbc:postgresql://127.0.0.1:%d/replica?sslmode=disable", pg.Port),
		"connection.user":                "postgres",
		"topics":                         topic,
		"auto.create":                    "true",
		"retry.backoff.ms":               "200",
		"restart.backoff.max.ms":         "2000", // plugins killed in a row come back soon
		"key.converter":                  "org.apache.kafka.connect.json.JsonConverter",
		"key.converter.schemas.enable":   "false",
		"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
		"value.converter.schemas.enable": "false",
	}
	for name, extra := range map[string]map[string]string{
		"pg-latest": {"insert.mode": "upsert", "pk.mode": "record_key", "table.name.format": "latest", "tasks.max": "1"},
		"pg-events": {"insert.mode": "insert", "pk.mode": "none", "table.name.format": "events", "tasks.max": "2"},
	} {
		cfg := map[string]string{}
		for k, v := range base {
			cfg[k] = v
		}
		for k, v := range extra {
			cfg[k] = v
		}
		var answer map[string]any
		if code := w.call("POST", "/connectors", map[string]any{"name": name, "config": cfg}, &answer); code != 201 {
			t.Fatalf("POST /connectors %s: %d %v", name, code, answer)
		}
	}

	// The producer: total records over keys keys, spread so the kills
	// land mid-stream; a failed batch is sent again (the topic may then
	// hold a record twice: the tables are checked against the topic).
	var produced atomic.Int64
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RetryTimeout(60*time.Second), kgo.ProduceRequestTimeout(10*time.Second))
		if err != nil {
			t.Errorf("producer: %v", err)
			return
		}
		defer cl.Close()
		const batch = 500
		// Spread out, so the kills land while records are produced as
		// well as while they are written.
		pace := spread * batch / time.Duration(total)
		for seq := 0; seq < total; seq += batch {
			var recs []*kgo.Record
			for s := seq; s < seq+batch && s < total; s++ {
				id := s % keys
				recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(id % parts),
					Key:   []byte(fmt.Sprintf(`{"id":%d}`, id)),
					Value: []byte(fmt.Sprintf(`{"id":%d,"seq":%d,"note":"record %d of key %d"}`, id, s, s, id))})
			}
			for attempt := 0; ; attempt++ {
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				err := cl.ProduceSync(ctx, recs...).FirstErr()
				cancel()
				if err == nil {
					break
				}
				if attempt == 20 {
					t.Errorf("producing: %v", err)
					return
				}
				time.Sleep(500 * time.Millisecond)
			}
			produced.Add(int64(len(recs)))
			time.Sleep(pace)
		}
	}()

	count := func(table string) int {
		out := pgsinkQuery(pg, "replica", "SELECT count(*) FROM "+table)
		n, _ := strconv.Atoi(out)
		return n
	}
	// progress waits until the insert table grew (or holds everything
	// produced, once the producer is done), so each kill hits a running
	// pipeline.
	progress := func(what string) {
		before := count("events")
		deadline := time.Now().Add(90 * time.Second)
		for {
			n := count("events")
			if n > before || produced.Load() == int64(total) && n >= total {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no rows arrived within 90 s %s (seed %d)\nstored offsets:\n%s\nseqs missing from events (first, last, count):\n%s\nsessions:\n%s\nplugins: %v\nworker log:\n%s",
					what, seed, pg.Psql("replica", "SELECT * FROM sluice_connect_offsets ORDER BY 1, 2, 3"),
					pg.Psql("replica", fmt.Sprintf(`SELECT min(g), max(g), count(*) FROM (SELECT g, g - row_number() OVER (ORDER BY g) AS grp
						FROM generate_series(0, %d) g WHERE NOT EXISTS (SELECT 1 FROM events WHERE seq = g)) m GROUP BY grp ORDER BY 1`, produced.Load()-1)),
					pg.Psql("", "SELECT pid, state, wait_event_type, wait_event, left(query, 100) FROM pg_stat_activity WHERE datname = 'replica'"),
					pluginPids(plugins), tailLines([]byte(w.Log()), 60))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	progress("before the first kill")
	var events []string
	for _, k := range []string{"plugin", "worker", "broker"} {
		for range kills {
			events = append(events, k)
		}
	}
	rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	for i, ev := range events {
		time.Sleep(time.Duration(200+rng.IntN(1500)) * time.Millisecond)
		t.Logf("kill %d/%d: %s (rows in events: %d, produced %d)", i+1, len(events), ev, count("events"), produced.Load())
		switch ev {
		case "plugin":
			// The worker restarts killed plugins with a backoff, and not
			// at all while it has nothing for them (once every record is
			// written): then there is nothing to kill.
			deadline := time.Now().Add(15 * time.Second)
			for len(pluginPids(plugins)) == 0 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			pids := pluginPids(plugins)
			if len(pids) == 0 {
				t.Logf("no plugin process runs (rows in events: %d): nothing to kill", count("events"))
				continue
			}
			_ = syscall.Kill(pids[rng.IntN(len(pids))], syscall.SIGKILL)
		case "worker":
			w.kill9()
			w = startWorker(t, b.Addr(), plugins)
		case "broker":
			b.Kill()
			time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
			b = startBroker(t, "std", dir, listen)
		}
		progress("after killing the " + ev)
	}
	<-prodDone
	if t.Failed() {
		return
	}

	// What the tables must hold: every record of the topic once in events,
	// the last value of each key in latest.
	recs := consumeAll(t, b.Addr(), topic)
	if len(recs) < total {
		t.Fatalf("the topic holds %d records, fewer than the %d produced", len(recs), total)
	}
	wantSeq := map[int]int{}
	wantLatest := map[int]int{}
	for _, r := range recs {
		var v struct{ ID, Seq int }
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		wantSeq[v.Seq]++
		wantLatest[v.ID] = v.Seq
	}
	waitFor(t, 180*time.Second, "every record in the tables", func() bool {
		return count("events") >= len(recs) && pgsinkLatestDone(pg, wantLatest)
	})
	time.Sleep(2 * time.Second) // anything written twice would show by now

	gotSeq := map[int]int{}
	for _, line := range strings.Split(pgsinkQuery(pg, "replica", "SELECT seq, count(*) FROM events GROUP BY seq"), "\n") {
		s, c, _ := strings.Cut(line, "|")
		sq, _ := strconv.Atoi(s)
		n, _ := strconv.Atoi(c)
		gotSeq[sq] = n
	}
	missing, dup := 0, 0
	for s, n := range wantSeq {
		switch g := gotSeq[s]; {
		case g < n:
			missing += n - g
		case g > n:
			dup += g - n
		}
	}
	for s, g := range gotSeq {
		if wantSeq[s] == 0 {
			dup += g
		}
	}
	if missing > 0 || dup > 0 {
		t.Fatalf("events: %d records missing, %d written twice (topic %d records, table %d rows; seed %d)",
			missing, dup, len(recs), count("events"), seed)
	}
	if got := count("latest"); got != len(wantLatest) {
		t.Fatalf("latest holds %d rows, want %d keys (seed %d)", got, len(wantLatest), seed)
	}
	if !pgsinkLatestDone(pg, wantLatest) {
		t.Fatalf("latest does not hold each key's last value (seed %d)", seed)
	}
	t.Logf("%d records (%d in the topic), %d kills: events and latest exact", total, len(recs), len(events))
}

// pgsinkLatestDone reports whether table latest holds exactly the last
// seq of each key.
func pgsinkLatestDone(pg *pgtest.Server, want map[int]int) bool {
	out := pgsinkQuery(pg, "replica", "SELECT id, seq FROM latest")
	got := map[int]int{}
	for _, line := range strings.Split(out, "\n") {
		id, seq, ok := strings.Cut(line, "|")
		if !ok {
			continue
		}
		i, _ := strconv.Atoi(id)
		s, _ := strconv.Atoi(seq)
		got[i] = s
	}
	if len(got) != len(want) {
		return false
	}
	for id, s := range want {
		if got[id] != s {
			return false
		}
	}
	return true
}

// pgsinkQuery runs sql, "" while a table does not exist yet.
func pgsinkQuery(pg *pgtest.Server, db, sql string) string {
	table := sql[strings.LastIndex(sql, "FROM ")+5:]
	table = strings.Fields(table)[0]
	if pg.Psql(db, "SELECT to_regclass('"+table+"') IS NOT NULL") != "t" {
		return ""
	}
	return pg.Psql(db, sql)
}

// CDC → PostgreSQL replication out of the box: the PostgreSQL CDC
// source streams a table's changes (snapshot, inserts, updates, deletes)
// as Debezium events, and the sink, configured as
// examples/connect/postgres-sink-cdc.json is, replicates them into another
// database, where table.name.format=${topic} names public.orders.
func TestConnectPostgresSinkReplicatesCDC(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{NoFsync: true})
	pg.CreateDB("shop")
	pg.CreateDB("replica")
	pg.Psql("shop", `CREATE TABLE orders (id bigint PRIMARY KEY, item text NOT NULL, qty integer, note text,
		price numeric(10,2), amount numeric, made timestamp, at timestamptz, day date, tod time, doc jsonb, ref uuid);
		INSERT INTO orders SELECT g, 'item-' || g, g, NULL, g * 1.25, g / 7.0, '2024-01-01'::timestamp + g * interval '1.5 s',
		  '2024-01-01 00:00:00+02'::timestamptz + g * interval '1 h', '2024-01-01'::date + g, '10:00'::time + g * interval '1 ms',
		  jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g)), md5(g::text)::uuid
		FROM generate_series(1, 100) g`)
	b := startBroker(t, "std", t.TempDir())
	createTopic(t, b.Addr(), "shop.public.orders", 1, nil)
	plugins := connectPlugins(t)
	w := startWorker(t, b.Addr(), plugins)
	cdc := map[string]string{
		"connector.class":   "io.debezium.connector.postgresql.PostgresConnector",
		"plugin.name":       "pgoutput",
		"database.hostname": "127.0.0.1", "database.port": strconv.Itoa(pg.Port), "database.user": "postgres",
		"database.dbname": "shop", "database.sslmode": "disable",
		"topic.prefix": "shop", "table.include.list": "public.orders", "slot.name": "sluice_replica",
		"publication.autocreate.mode": "filtered", "tasks.max": "1",
		// No tombstones: deletes must come from the events' op=d.
		"tombstones.on.delete": "false",
		"key.converter":        "org.apache.kafka.connect.json.JsonConverter",
		"value.converter":      "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "true",
	}
	b2, err := os.ReadFile("../examples/connect/postgres-sink-cdc.json")
	if err != nil {
		t.Fatal(err)
	}
	var sink struct {
		Name   string            `json:"name"`
		Config map[string]string `json:"config"`
	}
	if err := json.Unmarshal(b2, &sink); err != nil {
		t.Fatal(err)
	}
	sink.Config["topics"] = "shop.public.orders"
	sink.Config["connection.url"] = fmt.Sprintf("jdbc:postgresql://127.0.0.1:%d/replica?sslmode=disable", pg.Port)
	sink.Config["connection.user"], sink.Config["connection.password"] = "postgres", ""
	for name, cfg := range map[string]map[string]string{"shop-cdc": cdc, sink.Name: sink.Config} {
		var answer map[string]any
		if code := w.call("POST", "/connectors", map[string]any{"name": name, "config": cfg}, &answer); code != 201 {
			t.Fatalf("POST /connectors %s: %d %v", name, code, answer)
		}
	}
	// Each row as PostgreSQL prints it: the replica's column types must
	// print the source's values alike (numerics keep their scale, times
	// their precision).
	const rows = `SELECT coalesce(string_agg(o::text, ',' ORDER BY id), '') FROM public.orders o`
	same := func() bool {
		if pg.Psql("replica", "SELECT to_regclass('public.orders') IS NOT NULL") != "t" {
			return false
		}
		return pg.Psql("replica", rows) == pg.Psql("shop", rows)
	}
	waitFor(t, 90*time.Second, "the snapshot replicated", same)

	// Changes while it runs: inserts, updates (one to NULL), deletes, and a
	// row deleted and inserted again.
	pg.Psql("shop", `INSERT INTO orders (id, item, qty, note, price, doc) SELECT g, 'item-' || g, g, 'new', 0.5, '[]' FROM generate_series(101, 150) g;
		UPDATE orders SET qty = qty * 10, note = 'changed' WHERE id % 7 = 0;
		UPDATE orders SET qty = NULL WHERE id = 3;
		DELETE FROM orders WHERE id % 11 = 0;
		DELETE FROM orders WHERE id = 5; INSERT INTO orders (id, item, qty, note) VALUES (5, 'again', 55, 'reinserted')`)
	waitFor(t, 90*time.Second, "the changes replicated", same)
	if got := pg.Psql("replica", "SELECT count(*) FROM public.orders"); got != pg.Psql("shop", "SELECT count(*) FROM public.orders") {
		t.Fatalf("replica holds %s rows", got)
	}
	// The key became the replica's primary key.
	if got := pg.Psql("replica", `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = 'public.orders'::regclass AND i.indisprimary`); got != "id" {
		t.Fatalf("replica primary key %q, want id", got)
	}
}
