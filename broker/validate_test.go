package broker

import (
	"bytes"
	"encoding/binary"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/segment"
)

// rawBatch wraps a records section (compressed with the codec bits in
// attrs) in a v2 batch claiming count records, with a correct CRC. Its
// max timestamp is ts+10, its first ts.
func rawBatch(attrs int16, records []byte, count int32, ts int64) []byte {
	return testkit.Batch{Attributes: attrs, RecordsSection: records, NumRecords: count, FirstTimestamp: ts, MaxTimestamp: ts + 10}.Encode()
}

// gzipped compresses a record stream: one record header for a value of
// valueSize zeros, written through the compressor without holding it.
func gzipped(t *testing.T, valueSize int64) []byte {
	t.Helper()
	head := binary.AppendVarint([]byte{0}, 0)   // attributes, timestamp delta
	head = binary.AppendVarint(head, 0)         // offset delta
	head = binary.AppendVarint(head, -1)        // null key
	head = binary.AppendVarint(head, valueSize) // value length
	rec := binary.AppendVarint(nil, int64(len(head))+valueSize+1)
	member := func(parts ...[]byte) []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		for _, p := range parts {
			zw.Write(p)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	// A gzip stream may hold several members, decompressed as one (as
	// Kafka's and Go's readers do). A gibibyte of zeros is one 16 MiB
	// member repeated, compressed once rather than 64 times: compressing
	// the whole gibibyte took a minute under the race detector.
	const chunk = 16 << 20
	zeros := make([]byte, chunk)
	out := member(rec, head)
	var zeroMember []byte
	for left := valueSize; left > 0; left -= chunk {
		if left < chunk {
			out = append(out, member(zeros[:left])...)
			continue
		}
		if zeroMember == nil {
			zeroMember = member(zeros)
		}
		out = append(out, zeroMember...)
	}
	return append(out, member([]byte{0})...) // no headers
}

func produceRaw(t *testing.T, tb *testBroker, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks = -1
	pr.TimeoutMillis = 5000
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: batch}}}}
	return do[*kmsg.ProduceResponse](tb.raw(t), pr, 9).Topics[0].Partitions[0]
}

// Garbage inside a compressed batch, or a header claiming 2^31-1 records,
// used to be stored (and moved the log end by 2^31); both are refused now
// and the log does not move.
func TestProduceValidatesCompressedBatches(t *testing.T) {
	tb := startTestBroker(t, "message.max.bytes=4194304")
	tb.createTopic(t, "v", 1, nil)
	p := tb.topics.get("v").parts[0]
	garbage := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 50)
	now := time.Now().UnixMilli()
	cases := []struct {
		name  string
		batch []byte
		want  []int16
	}{
		{"gzip garbage", rawBatch(1, garbage, 1, now), []int16{kerr.CorruptMessage.Code}},
		{"snappy garbage", rawBatch(2, garbage, 1, now), []int16{kerr.CorruptMessage.Code, kerr.InvalidRecord.Code}},
		{"lz4 garbage", rawBatch(3, garbage, 1, now), []int16{kerr.CorruptMessage.Code}},
		{"zstd garbage", rawBatch(4, garbage, 1, now), []int16{kerr.CorruptMessage.Code}},
		{"2^31-1 records", rawBatch(1, gzipped(t, 10), math.MaxInt32, now), []int16{kerr.InvalidRecord.Code}},
		{"bomb", rawBatch(1, gzipped(t, 1<<30), 1, now), []int16{kerr.MessageTooLarge.Code}},
	}
	for _, tc := range cases {
		resp := produceRaw(t, tb, "v", tc.batch)
		ok := false
		for _, c := range tc.want {
			ok = ok || resp.ErrorCode == c
		}
		if !ok || resp.ErrorMessage == nil {
			t.Errorf("%s (%d bytes): error %d (%v), want one of %v", tc.name, len(tc.batch), resp.ErrorCode, resp.ErrorMessage, tc.want)
		}
		if leo := p.LogEndOffset(); leo != 0 {
			t.Fatalf("%s moved the log end to %d", tc.name, leo)
		}
	}
	if resp := produceRaw(t, tb, "v", rawBatch(1, gzipped(t, 1000), 1, now)); resp.ErrorCode != 0 {
		t.Fatalf("a good gzip batch: error %d %v", resp.ErrorCode, resp.ErrorMessage)
	}
}

// A stored batch of a gibibyte of zeros (written before the cap, or under
// a larger one) used to be inflated whole by ListOffsets by timestamp:
// 5 GiB of RSS for one request. The lookup now streams it.
func TestListOffsetsByTimestampStreamsABomb(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "bomb", 1, nil)
	p := tb.topics.get("bomb").parts[0]
	ts := time.Now().Add(-time.Hour).UnixMilli()
	// Past the produce check on purpose: the log must cope with what an
	// older broker, or a larger cap, let in.
	if _, err := p.Append(rawBatch(1, gzipped(t, 1<<30), 1, ts)); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "bomb", Partitions: []kmsg.ListOffsetsRequestTopicPartition{
		// After the only record's timestamp, so the lookup reads past its
		// gibibyte value.
		{Partition: 0, CurrentLeaderEpoch: -1, Timestamp: ts + 5},
	}}}
	c := tb.raw(t)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp := do[*kmsg.ListOffsetsResponse](c, req, 8).Topics[0].Partitions[0]
	runtime.ReadMemStats(&after)
	if resp.ErrorCode != 0 || resp.Offset != 0 {
		t.Fatalf("lookup: error %d offset %d", resp.ErrorCode, resp.Offset)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("ListOffsets by timestamp over 1 GiB of zeros allocated %d KiB", alloc>>10)
	if alloc > 64<<20 {
		t.Fatalf("ListOffsets by timestamp allocated %d MiB for one batch", alloc>>20)
	}
}

// max.decompressed.message.bytes bounds what one batch may inflate to; the
// refusal names the setting.
func TestMaxDecompressedMessageBytes(t *testing.T) {
	if d := config.Defaults().MaxDecompressedMessageBytes; int64(d) != segment.DefaultMaxDecompressedBytes {
		t.Fatalf("config default %d, segment default %d", d, segment.DefaultMaxDecompressedBytes)
	}
	tb := startTestBroker(t, "max.decompressed.message.bytes=100000")
	tb.createTopic(t, "cap", 1, nil)
	now := time.Now().UnixMilli()
	resp := produceRaw(t, tb, "cap", rawBatch(1, gzipped(t, 200000), 1, now))
	if resp.ErrorCode != kerr.MessageTooLarge.Code || resp.ErrorMessage == nil || !strings.Contains(*resp.ErrorMessage, "max.decompressed.message.bytes") {
		t.Fatalf("over the cap: error %d %v", resp.ErrorCode, resp.ErrorMessage)
	}
	if resp := produceRaw(t, tb, "cap", rawBatch(1, gzipped(t, 50000), 1, now)); resp.ErrorCode != 0 {
		t.Fatalf("under the cap: error %d %v", resp.ErrorCode, resp.ErrorMessage)
	}
}
