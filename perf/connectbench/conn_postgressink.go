package main

// The PostgreSQL sink's benchmark (issue 20: 50k rows/s upsert or more).
// A topic is filled first with JSON records (schemaless, keyed by id, a
// fifth of the ids repeating so most writes after the first pass update
// rows); the sink, in upsert mode with the key as primary key and
// exactly-once offsets, writes them into a PostgreSQL table of the
// benchmark's own. The run counts from the first committed batch until the
// offsets stored in the database cover the topic, and reads the CPU of the
// plugin, the worker, the broker and PostgreSQL over that stretch.

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { registerConnectorBench(connectorBench{Name: "postgressink", Run: runPostgresSinkBench}) }

const (
	pgsinkTarget  = ">= 50k rows/s upsert"
	pgsinkTargetN = 50_000
	pgsinkParts   = 4
)

func runPostgresSinkBench(ctx context.Context, env *connectorEnv) ([]connectorRow, error) {
	total := 1_000_000
	if env.Quick {
		total = 200_000
	}
	keys := total / 5
	row := connectorRow{Workload: fmt.Sprintf("%d JSON records over %d keys, %d partitions, 2 tasks, upsert by record key, exactly-once offsets",
		total, keys, pgsinkParts), Tool: "sluice connect", Unit: "rows", Target: pgsinkTarget}
	pg, err := startBenchPostgres(ctx, env.Dir)
	if err != nil {
		return []connectorRow{{Workload: row.Workload, Tool: row.Tool, Err: err.Error()}}, nil
	}
	defer pg.stop()
	if err := pg.psql("postgres", "CREATE DATABASE sinkbench"); err != nil {
		return nil, err
	}
	adm, cl, err := newAdmin(env.Bootstrap)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	const topic = "pgsink-bench"
	if resp, err := adm.CreateTopic(ctx, pgsinkParts, 1, nil, topic); err != nil || resp.Err != nil {
		return nil, fmt.Errorf("creating %s: %v %v", topic, err, resp.Err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(dctx, topic)
	}()
	env.Logf("filling %s with %d records", topic, total)
	if err := pgsinkFill(ctx, env.Bootstrap, topic, total, keys); err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, pg.dsn("sinkbench"))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())

	const name = "bench-postgressink"
	if err := env.REST.create(ctx, name, map[string]string{
		"connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector", "tasks.max": "2", "topics": topic,
		"connection.url":  "jdbc:postgresql://127.0.0.1:" + strconv.Itoa(pg.port) + "/sinkbench?sslmode=disable",
		"connection.user": "postgres", "insert.mode": "upsert", "pk.mode": "record_key", "auto.create": "true",
		"table.name.format": "items",
		"key.converter":     "org.apache.kafka.connect.json.JsonConverter", "key.converter.schemas.enable": "false",
		"value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false",
	}); err != nil {
		return nil, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = env.REST.delete(dctx, name)
		for dctx.Err() == nil && pluginPid(env.WorkerPID, "postgressink") != 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}()
	if err := env.REST.waitRunning(ctx, name, 60*time.Second); err != nil {
		return nil, err
	}
	plugin := pluginPid(env.WorkerPID, "postgressink")
	if plugin == 0 {
		return nil, fmt.Errorf("no postgressink plugin process under worker %d", env.WorkerPID)
	}
	pids := map[string]int{"plugin": plugin, "worker": env.WorkerPID, "broker": env.BrokerPID}

	// The stretch starts at the first committed batch, so the worker's
	// and the tasks' start-up stays out of it.
	stored := func() int64 {
		var n int64
		_ = conn.QueryRow(ctx, "SELECT coalesce(sum(next_offset), 0) FROM sluice_connect_offsets WHERE connector = $1", name).Scan(&n)
		return n
	}
	var first int64
	deadline := time.Now().Add(60 * time.Second)
	for first = stored(); first == 0; first = stored() {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no batch committed within 60 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	before, err := cpus(pids)
	if err != nil {
		return nil, err
	}
	pgBefore := pg.cpu()
	last, lastMove := first, time.Now()
	for {
		n := stored()
		if n >= int64(total) {
			break
		}
		if n != last {
			last, lastMove = n, time.Now()
		}
		if time.Since(lastMove) > 30*time.Second {
			return nil, fmt.Errorf("stalled at %d of %d rows", n, total)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	row.Seconds = time.Since(start).Seconds()
	row.Count = int64(total) - first
	after, err := cpus(pids)
	if err != nil {
		return nil, err
	}
	row.CPU = map[string]float64{"postgres": (pg.cpu() - pgBefore) * 1e6 / float64(row.Count)}
	for k := range pids {
		row.CPU[k] = (after[k] - before[k]) * 1e6 / float64(row.Count)
	}
	var rowsIn int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&rowsIn); err != nil || rowsIn != int64(keys) {
		return nil, fmt.Errorf("the table holds %d rows, want %d: %v", rowsIn, keys, err)
	}
	row.Met = "missed"
	if rate(row) >= pgsinkTargetN {
		row.Met = "met"
	}
	return []connectorRow{row}, nil
}

// pgsinkFill produces total records over keys ids, round robin over the
// partitions by id.
func pgsinkFill(ctx context.Context, bootstrap, topic string, total, keys int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	const batch = 10_000
	for i := 0; i < total; i += batch {
		recs := make([]*kgo.Record, 0, batch)
		for s := i; s < min(i+batch, total); s++ {
			id := s % keys
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(id % pgsinkParts),
				Key:   []byte(`{"id":` + strconv.Itoa(id) + `}`),
				Value: []byte(fmt.Sprintf(`{"id":%d,"name":"item-%d","qty":%d,"price":%d.5}`, id, id, s, s%1000))})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("filling %s: %w", topic, err)
		}
	}
	return nil
}
