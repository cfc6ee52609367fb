package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/internal/testkit/pgtest"
)

// BenchmarkPutUpsert is the task alone writing 500-record batches of
// schemaless records (as JSON arrives) by upsert into a real PostgreSQL:
// the plugin's share of the connectbench figure, without the worker.
func BenchmarkPutUpsert(b *testing.B) {
	pg := pgtest.Start(b, pgtest.Options{NoFsync: true})
	pg.CreateDB("bench")
	tk := &task{}
	cfg := map[string]string{
		"connection.url":  fmt.Sprintf("jdbc:postgresql://127.0.0.1:%d/bench?sslmode=disable", pg.Port),
		"connection.user": "postgres", "insert.mode": "upsert", "pk.mode": "record_key", "auto.create": "true",
	}
	if err := tk.Start(context.Background(), sdk.TaskContext{Connector: "bench"}, cfg); err != nil {
		b.Fatal(err)
	}
	defer tk.Stop(context.Background())
	const batch, keys = 500, 20_000
	off := int64(0)
	next := func() []*data.Record {
		recs := make([]*data.Record, batch)
		for i := range recs {
			id := off % keys
			recs[i] = &data.Record{Topic: "items", OriginalTopic: "items", OriginalOffset: off, KafkaOffset: off,
				Key:   map[string]any{"id": id},
				Value: map[string]any{"id": id, "name": fmt.Sprint("item-", id), "qty": off, "price": 1.5}}
			off++
		}
		return recs
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := tk.Put(context.Background(), next()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
}
