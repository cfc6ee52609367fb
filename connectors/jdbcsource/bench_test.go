package main

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/internal/testkit/pgtest"
)

// BenchmarkPoll reads a 100,000-row table (id, text, numeric, timestamptz)
// through the task, as the worker's Poll calls would, in each
// incremental mode: rows/s is the source's own rate, before converters
// and the producer. The timestamp column is indexed, as it should be for
// these queries. go test -run - -bench Poll -benchtime 3x
func BenchmarkPoll(b *testing.B) {
	const rows = 100_000
	pg := pgtest.Start(b, pgtest.Options{NoFsync: true})
	pg.CreateDB("bench")
	pg.Psql("bench", fmt.Sprintf(`CREATE TABLE orders (id bigint PRIMARY KEY, item text NOT NULL, total numeric(10,2) NOT NULL,
		updated_at timestamptz NOT NULL);
		INSERT INTO orders SELECT g, 'item-' || g, g / 100.0, '2026-01-01'::timestamptz + g * interval '1 ms' FROM generate_series(1, %d) g`, rows))
	pg.Psql("bench", `CREATE INDEX ON orders (updated_at, id)`)
	pg.Psql("bench", `VACUUM ANALYZE orders`)
	for _, mode := range []string{"incrementing", "timestamp", "timestamp+incrementing", "bulk"} {
		b.Run(mode, func(b *testing.B) {
			cfg := map[string]string{
				"connection.url": fmt.Sprintf("jdbc:postgresql://127.0.0.1:%d/bench", pg.Port), "connection.user": "postgres",
				"mode": mode, "incrementing.column.name": "id", "timestamp.column.name": "updated_at",
				"topic.prefix": "pg-", "batch.max.rows": "5000", "poll.interval.ms": "60000",
			}
			var total int
			start, cpu0 := time.Now(), cpuTime()
			for i := 0; i < b.N; i++ {
				task := connector{}.NewTask().(*sourceTask)
				if err := task.Start(context.Background(), sdk.TaskContext{Logger: slog.Default()}, cfg, nil); err != nil {
					b.Fatal(err)
				}
				n := 0
				for n < rows {
					recs, err := task.Poll(context.Background(), sdk.PollLimits{MaxWait: 10 * time.Second})
					if err != nil || len(recs) == 0 {
						b.Fatalf("after %d rows: %d records, %v", n, len(recs), err)
					}
					n += len(recs)
				}
				_ = task.Stop(context.Background())
				total += n
			}
			b.ReportMetric(float64(total)/time.Since(start).Seconds(), "rows/s")
			// The task's own CPU per row (this process: pgx, values,
			// records), which the machine's load does not inflate.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(total), "cpu-µs/row")
		})
	}
}

// cpuTime is this process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
