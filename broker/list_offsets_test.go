package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A lookup by timestamp lands on the first record at or after it, even in
// the middle of a (compressed) batch.
func TestListOffsetsByTimestampInsideBatch(t *testing.T) {
	tb := startTestBroker(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for name, codec := range map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()} {
		topic := "ts-" + name
		tb.createTopic(t, topic, 1, nil)
		cl := tb.client(t, kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(200*time.Millisecond))
		recs := make([]*kgo.Record, 10)
		for i := range recs {
			recs[i] = &kgo.Record{Topic: topic, Value: []byte("some value that compresses well well well"), Timestamp: base.Add(time.Duration(i) * time.Second)}
		}
		produceSync(t, cl, recs...) // one batch: lingering collects them all
		if n := tb.topics.get(topic).parts[0].LogEndOffset(); n != 10 {
			t.Fatalf("%s: end offset %d", topic, n)
		}
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: topic, Partitions: []kmsg.ListOffsetsRequestTopicPartition{
			{Partition: 0, CurrentLeaderEpoch: -1, Timestamp: base.Add(4500 * time.Millisecond).UnixMilli()},
		}}}
		p := do[*kmsg.ListOffsetsResponse](tb.raw(t), req, 8).Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.Offset != 5 || p.Timestamp != base.Add(5*time.Second).UnixMilli() {
			t.Fatalf("%s: offset %d ts %d err %d; want offset 5 at %d", topic, p.Offset, p.Timestamp, p.ErrorCode, base.Add(5*time.Second).UnixMilli())
		}
	}
}
