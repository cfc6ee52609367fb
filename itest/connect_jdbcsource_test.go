package itest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testkit/pgtest"
)

// The JDBC-style query source end to end: a Confluent JdbcSourceConnector
// config (class name and keys unchanged) POSTed to a worker reads a real
// PostgreSQL table into its topic; rows inserted while it runs arrive;
// the worker restarts and resumes after the committed offset, reading
// the rows inserted while it was down and none of the others again.
func TestConnectJdbcSourceResumesAfterRestart(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{NoFsync: true})
	pg.CreateDB("shop")
	pg.Psql("shop", `CREATE TABLE orders (id bigserial PRIMARY KEY, item text NOT NULL,
		updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
		INSERT INTO orders (item) SELECT 'item-' || g FROM generate_series(1, 20) g`)
	b := startBroker(t, "std", t.TempDir())
	createTopic(t, b.Addr(), "pg-orders", 1, nil)
	plugins := connectPlugins(t)
	start := time.Now()
	w := startWorker(t, b.Addr(), plugins)

	cfg := map[string]string{
		"connector.class":                "io.confluent.connect.jdbc.JdbcSourceConnector",
		"connection.url":                 fmt.Sprintf("jdbc:postgresql://127.0.0.1:%d/shop", pg.Port),
		"connection.user":                "postgres",
		"mode":                           "timestamp+incrementing",
		"timestamp.column.name":          "updated_at",
		"incrementing.column.name":       "id",
		"table.whitelist":                "orders",
		"topic.prefix":                   "pg-",
		"poll.interval.ms":               "200",
		"batch.max.rows":                 "7",
		"tasks.max":                      "1",
		"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
		"value.converter.schemas.enable": "false",
	}
	var answer map[string]any
	if code := w.call("POST", "/connectors", map[string]any{"name": "orders-src", "config": cfg}, &answer); code != 201 {
		t.Fatalf("POST /connectors: %d %v", code, answer)
	}
	jdbcsourceWaitIDs(t, b.Addr(), 20)
	t.Logf("the first 20 rows in the topic %v after the worker started", time.Since(start))

	// Rows inserted while the connector runs arrive.
	for i := 21; i <= 50; i += 5 {
		pg.Psql("shop", fmt.Sprintf(`INSERT INTO orders (item) SELECT 'item-' || g FROM generate_series(%d, %d) g`, i, i+4))
		time.Sleep(50 * time.Millisecond)
	}
	jdbcsourceWaitIDs(t, b.Addr(), 50)

	// The committed offset is Confluent's shape, at the last row.
	waitFor(t, 30*time.Second, "the offset at row 50", func() bool {
		var offs struct {
			Offsets []struct {
				Partition map[string]any `json:"partition"`
				Offset    map[string]any `json:"offset"`
			} `json:"offsets"`
		}
		w.call("GET", "/connectors/orders-src/offsets", nil, &offs)
		return len(offs.Offsets) == 1 && offs.Offsets[0].Partition["table"] == "orders" &&
			offs.Offsets[0].Offset["incrementing"] == float64(50) && offs.Offsets[0].Offset["timestamp_nanos"] != nil
	})

	t.Logf("50 rows and their offset %v after the worker started", time.Since(start))
	w.stop()
	waitFor(t, 10*time.Second, "no plugin process after the worker stopped", func() bool { return len(pluginPids(plugins)) == 0 })
	pg.Psql("shop", `INSERT INTO orders (item) SELECT 'item-' || g FROM generate_series(51, 60) g`)
	w2 := startWorker(t, b.Addr(), plugins)
	jdbcsourceWaitIDs(t, b.Addr(), 60)
	t.Logf("the restarted worker read the 10 new rows %v after the first started", time.Since(start))
	// Nothing more comes: no row is read twice after the restart.
	time.Sleep(1500 * time.Millisecond)
	jdbcsourceWaitIDs(t, b.Addr(), 60)
	w2.stop()
}

// jdbcsourceWaitIDs waits for pg-orders to hold n records and checks they
// are the rows with ids 1..n, each once, in order.
func jdbcsourceWaitIDs(t *testing.T, addr string, n int) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d records in pg-orders", n), func() bool {
		return endOffsets(t, addr, "pg-orders")[0] >= int64(n)
	})
	recs := consumeAll(t, addr, "pg-orders")
	if len(recs) != n {
		t.Fatalf("pg-orders holds %d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		var row struct {
			ID   int64  `json:"id"`
			Item string `json:"item"`
		}
		if err := json.Unmarshal(r.Value, &row); err != nil {
			t.Fatalf("record %d: %s: %v", i, r.Value, err)
		}
		if row.ID != int64(i+1) || row.Item != fmt.Sprintf("item-%d", i+1) {
			t.Fatalf("record %d is %s, want id %d", i, r.Value, i+1)
		}
	}
}
