package perf

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/config"
)

// The benchmarks run against SLUICE_BENCH_BROKERS (host:port, comma
// separated) when set, so any Kafka-compatible broker can be measured the same
// way; otherwise against a Sluice broker started in-process on a loopback
// port with data in a temporary directory (page cache, no fsync per record:
// the default flush policy).

var seq atomic.Int64

func brokers(b *testing.B) []string {
	if s := os.Getenv("SLUICE_BENCH_BROKERS"); s != "" {
		return strings.Split(s, ",")
	}
	dir := b.TempDir()
	cfg, err := config.Load("", []string{"listeners=PLAINTEXT://127.0.0.1:0", "admin.listener=127.0.0.1:0", "log.dirs=" + dir})
	if err != nil {
		b.Fatal(err)
	}
	br, err := broker.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Listen(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = br.Shutdown(context.Background()) })
	return []string{br.Addr().String()}
}

func newTopic(b *testing.B, seeds []string, partitions int32) string {
	name, _ := newTopicID(b, seeds, partitions)
	return name
}

func newTopicID(b *testing.B, seeds []string, partitions int32) (string, [16]byte) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	name := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		b.Fatal(err)
	}
	return name, resp.ID
}

// produce writes n incompressible records of size bytes, acks=all,
// idempotent, as fast as the client pipelines them.
func produce(b *testing.B, seeds []string, topic string, n, size int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<16))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	value := make([]byte, size)
	_, _ = rand.Read(value)
	var failed atomic.Value
	ctx := context.Background()
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

func benchProduce(b *testing.B, size int, partitions int32) {
	seeds := brokers(b)
	topic := newTopic(b, seeds, partitions)
	b.SetBytes(int64(size))
	b.ResetTimer()
	produce(b, seeds, topic, b.N, size)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkProduce1KiB(b *testing.B)            { benchProduce(b, 1024, 1) }
func BenchmarkProduce1KiB8Partitions(b *testing.B) { benchProduce(b, 1024, 8) }
func BenchmarkProduce100B(b *testing.B)            { benchProduce(b, 100, 1) }

// BenchmarkConsume1KiB reads a page-cached topic with a decoding consumer.
func BenchmarkConsume1KiB(b *testing.B) {
	seeds := brokers(b)
	topic := newTopic(b, seeds, 1)
	produce(b, seeds, topic, b.N, 1024)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	b.SetBytes(1024)
	b.ResetTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for got := 0; got < b.N; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			b.Fatal(err)
		}
		got += fs.NumRecords()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkFetchRaw measures the broker's fetch path without record
// decoding: raw Fetch requests whose record bytes are counted, not parsed
// (the fetch workload of BenchmarkEngines, against any broker).
func BenchmarkFetchRaw(b *testing.B) { engineFetch(b, brokers(b)[0]) }

// lastOffset is the last offset of the last whole batch in raw.
func lastOffset(raw []byte) int64 {
	last := int64(-1)
	for len(raw) >= 61 {
		var h kmsg.RecordBatch
		if err := h.ReadFrom(raw); err != nil {
			break
		}
		last = h.FirstOffset + int64(h.LastOffsetDelta)
		raw = raw[12+int(h.Length):]
	}
	return last
}
