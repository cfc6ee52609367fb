package pluginhost_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/pluginhost"
)

// BenchmarkPoll measures records/s from a Go source plugin through the
// contract: small raw values with JSON source positions, batches of 1000,
// with positions per batch (packed records, what the worker asks for)
// and per record (messages).
func BenchmarkPoll(b *testing.B) {
	for _, c := range []struct {
		name     string
		perBatch bool
	}{{"batch-positions", true}, {"record-positions", false}} {
		b.Run(c.name, func(b *testing.B) { benchPoll(b, c.perBatch) })
	}
}

func benchPoll(b *testing.B, perBatch bool) {
	dir, _ := testPlugin(b)
	h, _ := newHost(b, pluginhost.Options{})
	pl := discoverOne(b, h, dir)
	ctx := context.Background()
	p, err := h.Launch(ctx, pl, "bench", pluginhost.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	src := p.SourceTask(pluginhost.TaskID{Task: 0, Generation: 1})
	if err := src.Start(ctx, "test.Source", map[string]string{"mode": "generate"}, nil); err != nil {
		b.Fatal(err)
	}
	lim := pluginhost.PollLimits{MaxRecords: 1000, MaxBytes: 4 << 20, MaxWait: time.Second, BatchPositions: perBatch}
	b.ResetTimer()
	n := 0
	for n < b.N {
		batch, err := src.Poll(ctx, lim)
		if err != nil {
			b.Fatal(err)
		}
		n += len(batch.Records)
		if err := src.Commit(ctx, batch.Seq, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPut measures records/s into a discarding Go sink plugin.
func BenchmarkPut(b *testing.B) {
	dir, _ := testPlugin(b)
	h, _ := newHost(b, pluginhost.Options{})
	pl := discoverOne(b, h, dir)
	ctx := context.Background()
	p, err := h.Launch(ctx, pl, "bench", pluginhost.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	sink := p.SinkTask(pluginhost.TaskID{Task: 0, Generation: 1})
	if err := sink.Start(ctx, "test.Sink", map[string]string{"mode": "discard"}); err != nil {
		b.Fatal(err)
	}
	recs := make([]*data.Record, 1000)
	for i := range recs {
		recs[i] = &data.Record{Topic: "t", Partition: 0, KafkaOffset: int64(i), Timestamp: -1,
			Value: []byte("a log line of a typical length, about one hundred bytes of text, give or take a few......")}
	}
	b.ResetTimer()
	n := 0
	for n < b.N {
		if _, err := sink.Put(ctx, recs); err != nil {
			b.Fatal(err)
		}
		n += len(recs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
