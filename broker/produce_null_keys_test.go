package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/segment"
)

// A compacted topic keeps the last record of each key, so a record without
// one is refused, as Kafka refuses it: INVALID_RECORD, nothing stored.

func endOffset(t *testing.T, tb *testBroker, topic string) int64 {
	t.Helper()
	ends, err := tb.admin(t).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := ends.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("end offset of %s: %v", topic, o.Err)
	}
	return o.Offset
}

// produceOne produces r to topic's partition 0 and returns its offset.
func produceOne(t *testing.T, cl *kgo.Client, topic string, r *kgo.Record) (int64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.Topic = topic
	res := cl.ProduceSync(ctx, r)
	return res[0].Record.Offset, res[0].Err
}

func TestKeylessRecordRefusedOnCompactedTopic(t *testing.T) {
	tb := startTestBroker(t)
	cl := tb.client(t)
	for _, policy := range []string{"compact", "compact,delete", "delete"} {
		t.Run(policy, func(t *testing.T) {
			topic := "t-" + strings.ReplaceAll(policy, ",", "-")
			tb.createTopic(t, topic, 1, map[string]*string{"cleanup.policy": &policy})
			_, err := produceOne(t, cl, topic, &kgo.Record{Value: []byte("no key")})
			compacted := policy != "delete"
			switch {
			case compacted && !errors.Is(err, kerr.InvalidRecord):
				t.Fatalf("keyless record: %v, want INVALID_RECORD", err)
			case !compacted && err != nil:
				t.Fatalf("keyless record on a delete topic: %v", err)
			}
			// An empty key is a key.
			for _, key := range []string{"k", ""} {
				if _, err := produceOne(t, cl, topic, &kgo.Record{Key: []byte(key), Value: []byte("key " + key)}); err != nil {
					t.Fatalf("key %q: %v", key, err)
				}
			}
			want := []string{"key k", "key "}
			if !compacted {
				want = append([]string{"no key"}, want...)
			}
			if end := endOffset(t, tb, topic); end != int64(len(want)) {
				t.Fatalf("end offset %d, want %d", end, len(want))
			}
			if got := consumeAll(t, tb, topic, len(want)); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("stored %q, want %q", got, want)
			}
		})
	}
}

// The policy is read at each produce: a topic altered to compact refuses
// keyless records from then on, and accepts them again once altered back.
func TestKeylessRefusedOnceAlteredToCompact(t *testing.T) {
	tb := startTestBroker(t)
	cl := tb.client(t)
	tb.createTopic(t, "t", 1, nil)
	keyless := func() error {
		_, err := produceOne(t, cl, "t", &kgo.Record{Value: []byte("v")})
		return err
	}
	alter := func(policy string) {
		t.Helper()
		rs, err := tb.admin(t).AlterTopicConfigs(context.Background(),
			[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "cleanup.policy", Value: &policy}}, "t")
		if err == nil {
			_, err = rs.On("t", nil)
		}
		if err != nil {
			t.Fatalf("alter cleanup.policy=%s: %v", policy, err)
		}
	}
	if err := keyless(); err != nil {
		t.Fatalf("before the alter: %v", err)
	}
	alter("compact,delete")
	if err := keyless(); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("after cleanup.policy=compact,delete: %v, want INVALID_RECORD", err)
	}
	alter("delete")
	if err := keyless(); err != nil {
		t.Fatalf("after cleanup.policy=delete: %v", err)
	}
	if end := endOffset(t, tb, "t"); end != 2 {
		t.Fatalf("end offset %d, want 2", end)
	}
}

// The broker's default policy counts where the topic sets none.
func TestKeylessRefusedUnderBrokerDefaultCompact(t *testing.T) {
	tb := startTestBroker(t, "log.cleanup.policy=compact")
	tb.createTopic(t, "t", 1, nil)
	if _, err := produceOne(t, tb.client(t), "t", &kgo.Record{Value: []byte("v")}); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless record under log.cleanup.policy=compact: %v, want INVALID_RECORD", err)
	}
}

// keyBatch encodes one batch with a record per letter of pattern: k keyed,
// n without a key; gzipped if asked.
func keyBatch(t *testing.T, pattern string, gzipped bool) []byte {
	t.Helper()
	b := testkit.Batch{FirstTimestamp: time.Now().UnixMilli()}
	for i, c := range pattern {
		r := testkit.Record{Value: []byte("v")}
		if c == 'k' {
			r.Key = fmt.Appendf(nil, "k%d", i)
		}
		b.Records = append(b.Records, r)
	}
	raw := b.Encode()
	if !gzipped {
		return raw
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw[segment.BatchHeaderSize:]); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return rawBatch(int16(segment.CodecGzip), buf.Bytes(), int32(len(pattern)), b.FirstTimestamp)
}

func produceAt(t *testing.T, c *rawConn, topic string, records []byte, version int16) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks = -1
	pr.TimeoutMillis = 5000
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: records}}}}
	return do[*kmsg.ProduceResponse](c, pr, version).Topics[0].Partitions[0]
}

// Kafka's answer, field by field: the partition's INVALID_RECORD with
// RecordValidationException's message, and from v8 one RecordError per
// keyless record by its index within its batch.
func TestKeylessResponseShapes(t *testing.T) {
	tb := startTestBroker(t)
	compact := "compact"
	tb.createTopic(t, "c", 1, map[string]*string{"cleanup.policy": &compact})
	c := tb.raw(t)
	const recMsg = "Compacted topic cannot accept message without key in topic partition c-0"
	partMsg := func(total int, idx ...int32) string {
		var errs []string
		for _, i := range idx {
			errs = append(errs, fmt.Sprintf("RecordError(batchIndex=%d, message='%s')", i, recMsg))
		}
		return fmt.Sprintf("One or more records have been rejected due to %d record errors in total, "+
			"and only showing the first three errors at most: [%s]", total, strings.Join(errs, ", "))
	}
	refusals := 0
	cases := []struct {
		name    string
		records []byte
		indexes []int32
		total   int
	}{
		{"uncompressed", keyBatch(t, "knkn", false), []int32{1, 3}, 2},
		{"gzip", keyBatch(t, "nnkkn", true), []int32{0, 1, 4}, 3},
		{"first three shown", keyBatch(t, "nnnnn", false), []int32{0, 1, 2, 3, 4}, 5},
		// The batch where Kafka's validator stops; nothing of the
		// request is stored.
		{"second batch", append(keyBatch(t, "kk", false), keyBatch(t, "kn", true)...), []int32{1}, 1},
	}
	for _, tc := range cases {
		for _, v := range []int16{3, 7, 8, 9, 12} {
			t.Run(fmt.Sprintf("%s/v%d", tc.name, v), func(t *testing.T) {
				sp := produceAt(t, c, "c", tc.records, v)
				refusals++
				if sp.ErrorCode != kerr.InvalidRecord.Code || sp.BaseOffset != -1 {
					t.Fatalf("error %d base offset %d, want INVALID_RECORD (87), -1", sp.ErrorCode, sp.BaseOffset)
				}
				if v >= 5 && sp.LogStartOffset != 0 {
					t.Fatalf("log start offset %d, want 0", sp.LogStartOffset)
				}
				if v < 8 {
					// The fields do not exist before v8.
					if sp.ErrorMessage != nil || len(sp.ErrorRecords) != 0 {
						t.Fatalf("v%d carries %v %v", v, sp.ErrorMessage, sp.ErrorRecords)
					}
					return
				}
				if got, want := strOrEmpty(sp.ErrorMessage), partMsg(tc.total, tc.indexes[:min(3, len(tc.indexes))]...); got != want {
					t.Fatalf("message\n%s\nwant\n%s", got, want)
				}
				if len(sp.ErrorRecords) != len(tc.indexes) {
					t.Fatalf("%d record errors, want %d", len(sp.ErrorRecords), len(tc.indexes))
				}
				for i, re := range sp.ErrorRecords {
					if re.RelativeOffset != tc.indexes[i] || strOrEmpty(re.ErrorMessage) != recMsg {
						t.Fatalf("record error %d: %d %q, want %d %q", i, re.RelativeOffset, strOrEmpty(re.ErrorMessage), tc.indexes[i], recMsg)
					}
				}
			})
		}
	}
	if end := endOffset(t, tb, "c"); end != 0 {
		t.Fatalf("end offset %d after refusals only", end)
	}
	// Counted as every refused produce is.
	testkit.Eventually(t, 5*time.Second, "INVALID_RECORD counted once per refusal", func() bool {
		got, _ := value(tb.scrape(t), "sluice_request_errors_total", "api", "Produce", "error", "INVALID_RECORD")
		return got == float64(refusals)
	})
}

// A batch of many keyless records gets at most segment.MaxNullKeysReported
// record errors, and the exact count in the message.
func TestKeylessRecordErrorsCapped(t *testing.T) {
	tb := startTestBroker(t)
	compact := "compact"
	tb.createTopic(t, "c", 1, map[string]*string{"cleanup.policy": &compact})
	n := segment.MaxNullKeysReported + 234
	sp := produceAt(t, tb.raw(t), "c", keyBatch(t, strings.Repeat("n", n), true), 9)
	if sp.ErrorCode != kerr.InvalidRecord.Code || len(sp.ErrorRecords) != segment.MaxNullKeysReported {
		t.Fatalf("error %d with %d record errors, want INVALID_RECORD with %d", sp.ErrorCode, len(sp.ErrorRecords), segment.MaxNullKeysReported)
	}
	if msg := strOrEmpty(sp.ErrorMessage); !strings.Contains(msg, fmt.Sprintf("due to %d record errors in total", n)) {
		t.Fatalf("message %q does not give the count %d", msg, n)
	}
	// Every keyless record counts, past the cap too.
	if got, _ := value(tb.scrape(t), "sluice_no_key_compacted_topic_records_total"); got != float64(n) {
		t.Fatalf("sluice_no_key_compacted_topic_records_total = %v, want %d", got, n)
	}
}
