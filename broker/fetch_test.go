package broker

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

// fill produces n records of size bytes to each partition of topic.
func fill(t *testing.T, tb *testBroker, topic string, partitions int32, n, size int) {
	t.Helper()
	cl := tb.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	for p := int32(0); p < partitions; p++ {
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprint(i)), Value: bytes.Repeat([]byte{byte('a' + i%26)}, size)}
		}
		produceSync(t, cl, recs...)
	}
}

func fetchReq(topic string, id [16]byte, offsets ...int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxBytes = 50 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	for p, off := range offsets {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = int32(p)
		rp.FetchOffset = off
		rp.PartitionMaxBytes = 10 << 20
		rp.CurrentLeaderEpoch = -1
		rp.LastFetchedEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.FetchRequestTopic{rt}
	return req
}

// countRecords decodes every batch in raw and returns the record count and
// the first batch's base offset.
func countRecords(t *testing.T, raw []byte) (n int, first int64) {
	t.Helper()
	first = -1
	for len(raw) > 0 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw); err != nil {
			t.Fatalf("decoding record batch: %v", err)
		}
		if first < 0 {
			first = b.FirstOffset
		}
		n += int(b.NumRecords)
		raw = raw[12+int(b.Length):]
	}
	return n, first
}

func topicID(t *testing.T, tb *testBroker, name string) [16]byte {
	t.Helper()
	tp := tb.topics.get(name)
	if tp == nil {
		t.Fatalf("no topic %s", name)
	}
	return tp.id
}

// The hand-written Fetch encoder must produce what kmsg decodes, at every
// version the broker advertises.
func TestFetchEveryVersionDecodes(t *testing.T) { forEachEngine(t, testFetchEveryVersionDecodes) }

func testFetchEveryVersionDecodes(t *testing.T, engine string) {
	tb := startTestBroker(t, "netio.engine="+engine)
	tb.createTopic(t, "f", 2, nil)
	fill(t, tb, "f", 2, 50, 100)
	id := topicID(t, tb, "f")
	c := tb.raw(t)
	for v := apis[kmsg.Fetch].min; v <= apis[kmsg.Fetch].max; v++ {
		resp := do[*kmsg.FetchResponse](c, fetchReq("f", id, 0, 10), v)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
			t.Fatalf("v%d: topics %+v", v, resp.Topics)
		}
		rt := resp.Topics[0]
		if v >= 13 && rt.TopicID != id || v < 13 && rt.Topic != "f" {
			t.Fatalf("v%d: topic %q id %x", v, rt.Topic, rt.TopicID)
		}
		for i, p := range rt.Partitions {
			if p.ErrorCode != 0 || p.HighWatermark != 50 || p.LastStableOffset != 50 {
				t.Fatalf("v%d p%d: err %d hw %d lso %d", v, i, p.ErrorCode, p.HighWatermark, p.LastStableOffset)
			}
			if v >= 5 && p.LogStartOffset != 0 {
				t.Fatalf("v%d p%d: log start %d", v, i, p.LogStartOffset)
			}
			n, first := countRecords(t, p.RecordBatches)
			// Partition 1 was fetched from offset 10, which may sit inside
			// a batch: whole batches are returned from the one holding it.
			if first > int64(i*10) || int64(n)+first != 50 {
				t.Fatalf("v%d p%d: %d records from %d", v, i, n, first)
			}
		}
	}
}

func TestFetchErrors(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "e", 1, nil)
	fill(t, tb, "e", 1, 5, 10)
	c := tb.raw(t)

	resp := do[*kmsg.FetchResponse](c, fetchReq("e", [16]byte{}, 1000), 11)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != 5 {
		t.Fatalf("out of range: err %d hw %d", p.ErrorCode, p.HighWatermark)
	}
	req := fetchReq("e", [16]byte{}, 0)
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = 7
	if p := do[*kmsg.FetchResponse](c, req, 11).Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("future epoch: err %d", p.ErrorCode)
	}
	if p := do[*kmsg.FetchResponse](c, fetchReq("nope", [16]byte{}, 0), 11).Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: err %d", p.ErrorCode)
	}
	if p := do[*kmsg.FetchResponse](c, fetchReq("", [16]byte{9}, 0), 13).Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("unknown topic id: err %d", p.ErrorCode)
	}
}

// A fetch waiting for min_bytes returns as soon as a produce lands, not at
// max_wait.
func TestFetchLongPollWakesOnAppend(t *testing.T) { forEachEngine(t, testFetchLongPollWakesOnAppend) }

func testFetchLongPollWakesOnAppend(t *testing.T, engine string) {
	tb := startTestBroker(t, "netio.engine="+engine)
	tb.createTopic(t, "w", 1, nil)
	c := tb.raw(t)
	req := fetchReq("w", [16]byte{}, 0)
	req.MaxWaitMillis, req.MinBytes = 10_000, 1
	done := make(chan *kmsg.FetchResponse, 1)
	start := time.Now()
	go func() { done <- do[*kmsg.FetchResponse](c, req, 11) }()
	time.Sleep(200 * time.Millisecond)
	fill(t, tb, "w", 1, 1, 10)
	select {
	case resp := <-done:
		n, _ := countRecords(t, resp.Topics[0].Partitions[0].RecordBatches)
		if n != 1 {
			t.Fatalf("woke with %d records", n)
		}
		t.Logf("long poll answered %v after start (200ms before the produce)", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("fetch did not wake on append")
	}
	// Without data, the fetch waits max_wait and then answers empty.
	req.MaxWaitMillis = 300
	req.Topics[0].Partitions[0].FetchOffset = 1
	t0 := time.Now()
	resp := do[*kmsg.FetchResponse](c, req, 11)
	if d := time.Since(t0); d < 250*time.Millisecond {
		t.Fatalf("empty fetch returned after %v, before max wait", d)
	}
	if len(resp.Topics[0].Partitions[0].RecordBatches) != 0 {
		t.Fatal("records from nowhere")
	}
}

// A fetch waiting on several partitions is answered by an append to any of
// them, only once min_bytes is reached across them, and leaves the fetch
// purgatory when answered.
func TestFetchLongPollMinBytesAcrossPartitions(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "m", 3, nil)
	cl := tb.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	produceTo := func(p int32, size int) {
		produceSync(t, cl, &kgo.Record{Topic: "m", Partition: p, Value: bytes.Repeat([]byte{'x'}, size)})
	}
	c := tb.raw(t)
	req := fetchReq("m", [16]byte{}, 0, 0, 0)
	req.MaxWaitMillis, req.MinBytes = 15_000, 1000
	done := make(chan *kmsg.FetchResponse, 1)
	go func() { done <- do[*kmsg.FetchResponse](c, req, 11) }()
	testkit.Eventually(t, 10*time.Second, "the fetch to wait on its partitions", func() bool { return tb.fetchWaits.Watching(sessionKey{"m", 2}) == 1 })

	// One small batch (well under 1000 bytes) completes nothing: the
	// produce's Check ran before its answer, so the fetch would be gone.
	produceTo(2, 100)
	if n := tb.fetchWaits.Watching(sessionKey{"m", 0}); n != 1 {
		t.Fatalf("a fetch short of min_bytes left the purgatory (%d watching)", n)
	}
	start := time.Now()
	produceTo(1, 2000)
	select {
	case resp := <-done:
		var got []int
		for _, p := range resp.Topics[0].Partitions {
			n, _ := countRecords(t, p.RecordBatches)
			got = append(got, n)
		}
		if fmt.Sprint(got) != "[0 1 1]" {
			t.Fatalf("records per partition %v, want [0 1 1]", got)
		}
		t.Logf("answered %v after the produce that reached min_bytes", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("fetch not answered after min_bytes was reached")
	}
	if n := tb.fetchWaits.Keys(); n != 0 {
		t.Fatalf("%d partitions still watched after the fetch was answered", n)
	}
}

// A long poll whose client hangs up leaves the purgatory without waiting
// for max_wait.
func TestFetchLongPollClientGone(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "g", 1, nil)
	c := tb.raw(t)
	req := fetchReq("g", [16]byte{}, 0)
	req.MaxWaitMillis, req.MinBytes = 60_000, 1
	req.SetVersion(11)
	c.corr++
	if _, err := c.nc.Write(frameOf(c, req)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the fetch to wait", func() bool { return tb.fetchWaits.Keys() == 1 })
	c.nc.Close()
	testkit.Eventually(t, 10*time.Second, "the fetch to leave the purgatory", func() bool { return tb.fetchWaits.Keys() == 0 })
}

// A fetch waiting on a topic that is deleted is answered at once, with the
// error a client expects for a partition that is gone.
func TestFetchLongPollTopicDeleted(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "d", 1, nil)
	c := tb.raw(t)
	req := fetchReq("d", [16]byte{}, 0)
	req.MaxWaitMillis, req.MinBytes = 60_000, 1
	done := make(chan *kmsg.FetchResponse, 1)
	go func() { done <- do[*kmsg.FetchResponse](c, req, 11) }()
	testkit.Eventually(t, 10*time.Second, "the fetch to wait", func() bool { return tb.fetchWaits.Keys() == 1 })
	if _, err := tb.admin(t).DeleteTopics(t.Context(), "d"); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-done:
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("fetch of a deleted topic: error %d, want UNKNOWN_TOPIC_OR_PARTITION", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("fetch of a deleted topic not answered (max_wait_ms is 60 s)")
	}
	if n := tb.fetchWaits.Keys(); n != 0 {
		t.Fatalf("%d partitions still watched", n)
	}
}

// KIP-227: a session's incremental fetches carry only changes, both ways.
func TestFetchSessions(t *testing.T) { forEachEngine(t, testFetchSessions) }

func testFetchSessions(t *testing.T, engine string) {
	tb := startTestBroker(t, "netio.engine="+engine)
	tb.createTopic(t, "s", 2, nil)
	fill(t, tb, "s", 2, 10, 10)
	c := tb.raw(t)
	const v = 12

	full := fetchReq("s", [16]byte{}, 0, 0)
	full.SessionID, full.SessionEpoch = 0, 0
	resp := do[*kmsg.FetchResponse](c, full, v)
	if resp.SessionID == 0 || len(resp.Topics[0].Partitions) != 2 {
		t.Fatalf("new session: id %d, topics %+v", resp.SessionID, resp.Topics)
	}
	id := resp.SessionID

	// Positions moved to 10 on both: nothing new, so nothing comes back.
	inc := fetchReq("s", [16]byte{}, 10, 10)
	inc.SessionID, inc.SessionEpoch = id, 1
	if resp = do[*kmsg.FetchResponse](c, inc, v); resp.ErrorCode != 0 || len(resp.Topics) != 0 {
		t.Fatalf("idle incremental: err %d topics %+v", resp.ErrorCode, resp.Topics)
	}
	// New data on partition 1 only; the client sends no partitions at all.
	cl := tb.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceSync(t, cl, &kgo.Record{Topic: "s", Partition: 1, Value: []byte("x")})
	empty := kmsg.NewPtrFetchRequest()
	empty.ReplicaID, empty.MaxBytes = -1, 1<<20
	empty.SessionID, empty.SessionEpoch = id, 2
	resp = do[*kmsg.FetchResponse](c, empty, v)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].Partition != 1 {
		t.Fatalf("incremental with news: %+v", resp.Topics)
	}
	if n, first := countRecords(t, resp.Topics[0].Partitions[0].RecordBatches); n != 1 || first != 10 {
		t.Fatalf("got %d records from %d", n, first)
	}
	// Forgetting partition 1 removes it from the session.
	forget := kmsg.NewPtrFetchRequest()
	forget.ReplicaID, forget.MaxBytes = -1, 1<<20
	forget.SessionID, forget.SessionEpoch = id, 3
	forget.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{Topic: "s", Partitions: []int32{1}}}
	if resp = do[*kmsg.FetchResponse](c, forget, v); resp.ErrorCode != 0 {
		t.Fatalf("forget: err %d", resp.ErrorCode)
	}
	produceSync(t, cl, &kgo.Record{Topic: "s", Partition: 1, Value: []byte("y")})
	forget.SessionEpoch, forget.ForgottenTopics = 4, nil
	if resp = do[*kmsg.FetchResponse](c, forget, v); len(resp.Topics) != 0 {
		t.Fatalf("forgotten partition still reported: %+v", resp.Topics)
	}

	// Wrong epoch, unknown session, and closing.
	forget.SessionEpoch = 99
	if resp = do[*kmsg.FetchResponse](c, forget, v); resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("bad epoch: err %d", resp.ErrorCode)
	}
	forget.SessionID, forget.SessionEpoch = id+1, 1
	if resp = do[*kmsg.FetchResponse](c, forget, v); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown session: err %d", resp.ErrorCode)
	}
	closeReq := fetchReq("s", [16]byte{}, 0)
	closeReq.SessionID, closeReq.SessionEpoch = id, -1
	if resp = do[*kmsg.FetchResponse](c, closeReq, v); resp.ErrorCode != 0 || resp.SessionID != 0 || len(resp.Topics) != 1 {
		t.Fatalf("close: err %d id %d", resp.ErrorCode, resp.SessionID)
	}
	forget.SessionID, forget.SessionEpoch = id, 5
	if resp = do[*kmsg.FetchResponse](c, forget, v); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("closed session still usable: err %d", resp.ErrorCode)
	}
}

// Record bytes go from the segment file to the socket with sendfile; only
// response headers pass through user space.
func TestFetchIsZeroCopy(t *testing.T) { forEachEngine(t, testFetchIsZeroCopy) }

func testFetchIsZeroCopy(t *testing.T, engine string) {
	tb := startTestBroker(t, "netio.engine="+engine)
	tb.createTopic(t, "z", 1, nil)
	const n, size = 2000, 1024
	fill(t, tb, "z", 1, n, size)
	before := tb.Stats()
	cl := tb.client(t, kgo.ConsumeTopics("z"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for got := 0; got < n; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	after := tb.Stats()
	zero := after.BytesZeroCopy - before.BytesZeroCopy
	copied := after.BytesCopied - before.BytesCopied
	onDisk := tb.topics.get("z").parts[0].Size()
	if zero < onDisk || onDisk < n*size {
		t.Fatalf("%d bytes went zero-copy; the log holds %d bytes (values alone %d)", zero, onDisk, n*size)
	}
	// Everything copied is headers: a few hundred bytes per response.
	if copied > zero/50 {
		t.Fatalf("%d bytes copied through user space against %d zero-copy", copied, zero)
	}
	t.Logf("zero-copy %d bytes, copied %d bytes", zero, copied)
}
