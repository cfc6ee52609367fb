package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

// The background task applies size retention: whole old segments go, the
// log start offset moves, and consumers from "earliest" start there.
func TestRetentionRunsInTheBackground(t *testing.T) {
	tb := startTestBroker(t, "log.retention.check.interval.ms=50")
	tb.createTopic(t, "r", 1, map[string]*string{
		"segment.bytes":   kmsg.StringPtr("2000"),
		"retention.bytes": kmsg.StringPtr("4000"),
	})
	cl := tb.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()))
	for i := 0; i < 60; i++ {
		produceSync(t, cl, &kgo.Record{Topic: "r", Value: make([]byte, 200)})
	}
	// Retention runs every 50ms, possibly in the middle of the produces
	// above, so wait for a pass after the last one: the log then holds at
	// most retention.bytes plus the active segment.
	p := tb.topics.get("r").parts[0]
	if !testkit.Poll(10*time.Second, func() bool { return p.Size() <= 4000+2000 }) {
		t.Fatalf("log is %d bytes after retention.bytes=4000 with 2000-byte segments", p.Size())
	}
	start := p.LogStartOffset()
	if start == 0 {
		t.Fatal("retention never moved the log start offset")
	}
	consumer := tb.client(t, kgo.ConsumeTopics("r"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fs := consumer.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	if first := fs.Records()[0].Offset; first < start {
		t.Fatalf("consumed offset %d below log start %d", first, start)
	}
}

// message.timestamp.type=LogAppendTime stamps batches with the broker's
// clock and reports it in the produce response.
func TestLogAppendTimeTopic(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "lat", 1, map[string]*string{"message.timestamp.type": kmsg.StringPtr("LogAppendTime")})
	old := time.Now().Add(-48 * time.Hour)
	before := time.Now()
	c := tb.raw(t)
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks = -1
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: "lat", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: testBatch(10)}}}}
	resp := do[*kmsg.ProduceResponse](c, pr, 9).Topics[0].Partitions[0]
	if resp.ErrorCode != 0 || resp.LogAppendTime < before.UnixMilli() {
		t.Fatalf("produce: err %d, log append time %d (sent before %d)", resp.ErrorCode, resp.LogAppendTime, before.UnixMilli())
	}
	cl := tb.client(t, kgo.ConsumeTopics("lat"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	produceSync(t, tb.client(t), &kgo.Record{Topic: "lat", Value: []byte("v"), Timestamp: old})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < 2 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, fs.Records()...)
	}
	for _, r := range recs {
		if r.Timestamp.Before(before.Add(-time.Second)) || r.Attrs.TimestampType() != 1 {
			t.Fatalf("record %d: timestamp %v, log-append-time flag %v", r.Offset, r.Timestamp, r.Attrs.TimestampType())
		}
	}
}
