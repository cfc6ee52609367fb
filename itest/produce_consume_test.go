package itest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProduceConsumeEveryCodec: whatever codec a producer picks, a consumer
// gets back every record exactly once, byte for byte, with its headers,
// timestamp, partition and gap-free offsets.
func TestProduceConsumeEveryCodec(t *testing.T) { engines.Run(t, testProduceConsumeEveryCodec) }

func testProduceConsumeEveryCodec(t *testing.T, engine string) {
	b := startBroker(t, engine, t.TempDir())
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	const n = 2000
	base := time.Now().Add(-time.Hour).UnixMilli()
	for _, parts := range []int32{1, 8} {
		for _, c := range codecs {
			t.Run(fmt.Sprintf("%s/p%d", c.name, parts), func(t *testing.T) {
				topic := fmt.Sprintf("codec-%s-p%d", c.name, parts)
				createTopic(t, b.Addr(), topic, parts, nil)
				cl := newClient(t, b.Addr(),
					kgo.ProducerBatchCompression(c.codec),
					kgo.RequiredAcks(kgo.AllISRAcks()),
					kgo.ProducerLinger(5*time.Millisecond))
				want := map[string]*kgo.Record{}
				recs := make([]*kgo.Record, 0, n)
				for i := range n {
					key := fmt.Sprintf("key-%05d", i)
					// Repetitive values so every codec really compresses.
					val := []byte(strings.Repeat(fmt.Sprintf("value %d of %s;", i, topic), 1+i%7))
					r := &kgo.Record{
						Topic:     topic,
						Partition: int32(i) % parts,
						Key:       []byte(key),
						Value:     val,
						Headers: []kgo.RecordHeader{
							{Key: "h-index", Value: []byte(fmt.Sprint(i))},
							{Key: "h-codec", Value: []byte(c.name)},
						},
						Timestamp: time.UnixMilli(base + int64(i)*7),
					}
					recs = append(recs, r)
					want[key] = r
				}
				produceSync(t, cl, recs...)

				got := consumeAll(t, b.Addr(), topic)
				if len(got) != n {
					t.Fatalf("consumed %d records, want %d", len(got), n)
				}
				checkContiguous(t, got)
				seen := map[string]bool{}
				for _, r := range got {
					k := string(r.Key)
					w, ok := want[k]
					switch {
					case !ok:
						t.Fatalf("unexpected record key %q at %d/%d", k, r.Partition, r.Offset)
					case seen[k]:
						t.Fatalf("record %q delivered twice", k)
					case !bytes.Equal(r.Value, w.Value):
						t.Fatalf("record %q: value %q, want %q", k, r.Value, w.Value)
					case !equalHeaders(r.Headers, w.Headers):
						t.Fatalf("record %q: headers %v, want %v", k, r.Headers, w.Headers)
					case r.Timestamp.UnixMilli() != w.Timestamp.UnixMilli():
						t.Fatalf("record %q: timestamp %d, want %d", k, r.Timestamp.UnixMilli(), w.Timestamp.UnixMilli())
					case r.Partition != w.Partition:
						t.Fatalf("record %q: partition %d, want %d", k, r.Partition, w.Partition)
					}
					seen[k] = true
				}
			})
		}
	}
}

// TestConsumeFromLatestAndByTimestamp covers the ways a consumer picks its
// starting point: at the end, by timestamp, and the ListOffsets specials.
func TestConsumeFromLatestAndByTimestamp(t *testing.T) {
	engines.Run(t, testConsumeFromLatestAndByTimestamp)
}

func testConsumeFromLatestAndByTimestamp(t *testing.T, engine string) {
	b := startBroker(t, engine, t.TempDir())
	const topic = "by-time"
	createTopic(t, b.Addr(), topic, 1, nil)
	now := time.Now().Truncate(time.Millisecond)
	t0, t1, t2 := now.Add(-3*time.Hour), now.Add(-2*time.Hour), now.Add(-time.Hour)
	maxTs := t2.Add(5 * time.Hour) // inside batch 2, at offset 15
	batch := func(i int, ts time.Time) []*kgo.Record {
		var rs []*kgo.Record
		for j := range 10 {
			r := &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("b%d-%d", i, j)), Timestamp: ts.Add(time.Duration(j) * time.Millisecond)}
			if i == 2 && j == 5 {
				r.Timestamp = maxTs
			}
			rs = append(rs, r)
		}
		return rs
	}
	// One record batch per call, so that batch and record answers differ.
	prod := newClient(t, b.Addr(), kgo.ManualFlushing())
	produceBatch(t, prod, batch(1, t0)...)
	produceBatch(t, prod, batch(2, t1)...)

	// A consumer starting at the end must not see batches 1 and 2.
	listed := &listOffsetsHook{done: make(chan struct{})}
	latest := newClient(t, b.Addr(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.WithHooks(listed))
	select {
	case <-listed.done: // the consumer knows where the end is
	case <-time.After(15 * time.Second):
		t.Fatal("consumer did not list offsets within 15s")
	}
	warm, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if fs := latest.PollFetches(warm); fs.NumRecords() != 0 {
		t.Fatalf("consumer at end saw %d old records", fs.NumRecords())
	}
	cancel()
	produceBatch(t, prod, batch(3, t2)...)
	var got []*kgo.Record
	ctx := testCtx(t, 20*time.Second)
	for len(got) < 10 && ctx.Err() == nil {
		got = append(got, latest.PollFetches(ctx).Records()...)
	}
	if len(got) != 10 {
		t.Fatalf("consumer at end got %d records, want the 10 of batch 3", len(got))
	}
	for j, r := range got {
		if want := fmt.Sprintf("b3-%d", j); string(r.Value) != want || r.Offset != int64(20+j) {
			t.Fatalf("consumer at end: record %d = %q@%d, want %q@%d", j, r.Value, r.Offset, want, 20+j)
		}
	}

	adm := admin(t, b.Addr())
	actx := testCtx(t, 15*time.Second)
	ends, err := adm.ListEndOffsets(actx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("ListEndOffsets: %v %v", err, ends.Error())
	}
	if o, _ := ends.Lookup(topic, 0); o.Offset != 30 {
		t.Errorf("end offset %d, want 30", o.Offset)
	}
	starts, err := adm.ListStartOffsets(actx, topic)
	if err != nil || starts.Error() != nil {
		t.Fatalf("ListStartOffsets: %v %v", err, starts.Error())
	}
	if o, _ := starts.Lookup(topic, 0); o.Offset != 0 {
		t.Errorf("start offset %d, want 0", o.Offset)
	}
	afterMilli := func(t *testing.T, name string, milli, want int64) {
		t.Helper()
		lo, err := adm.ListOffsetsAfterMilli(actx, milli, topic)
		if err != nil || lo.Error() != nil {
			t.Fatalf("ListOffsetsAfterMilli(%s): %v %v", name, err, lo.Error())
		}
		if o, _ := lo.Lookup(topic, 0); o.Offset != want {
			t.Errorf("ListOffsetsAfterMilli(%s) = %d, want %d", name, o.Offset, want)
		}
	}
	afterMilli(t, "t0", t0.UnixMilli(), 0)
	afterMilli(t, "t1", t1.UnixMilli(), 10)
	// Kafka answers a timestamp lookup with the first *record* whose
	// timestamp is >= the target, not the first offset of its batch: a
	// consumer seeking to a time must not get older records.
	t.Run("RecordPrecision", func(t *testing.T) {
		afterMilli(t, "t0+3ms", t0.UnixMilli()+3, 3)
		afterMilli(t, "t2", t2.UnixMilli(), 15) // offset 15 carries maxTs >= t2
		// The answer carries the found record's own timestamp.
		lo, err := adm.ListOffsetsAfterMilli(actx, t1.UnixMilli(), topic)
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := lo.Lookup(topic, 0); o.Timestamp != t1.UnixMilli() {
			t.Errorf("ListOffsetsAfterMilli(t1) timestamp = %d, want %d (record 10's)", o.Timestamp, t1.UnixMilli())
		}
	})
	if lo, err := adm.ListOffsetsAfterMilli(actx, maxTs.UnixMilli()+1, topic); err != nil {
		t.Fatalf("ListOffsetsAfterMilli(after max): %v", err)
	} else if o, _ := lo.Lookup(topic, 0); o.Offset != 30 {
		// kadm maps "no such record" (-1) to the end offset.
		t.Errorf("ListOffsetsAfterMilli(after max) = %d, want 30", o.Offset)
	}

	// A consumer starting after t1 begins with the first record of batch 2.
	byTime := newClient(t, b.Addr(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(t1.UnixMilli())))
	fctx := testCtx(t, 20*time.Second)
	var first []*kgo.Record
	for len(first) == 0 && fctx.Err() == nil {
		first = byTime.PollFetches(fctx).Records()
	}
	if len(first) == 0 || string(first[0].Value) != "b2-0" || first[0].Offset != 10 || !first[0].Timestamp.Equal(t1) {
		t.Fatalf("consumer AfterMilli(t1) started with %v, want b2-0 at offset 10", first)
	}

	// ListOffsets -3 (max timestamp, v7+) names the record with the largest timestamp.
	// (KIP-734; Kafka 3.8+ names the exact record, not its batch).
	t.Run("MaxTimestamp", func(t *testing.T) {
		rc := dialRaw(t, b.Addr())
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(7)
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, -3, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := rc.mustRoundTrip(req).(*kmsg.ListOffsetsResponse)
		sp := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
			t.Fatalf("ListOffsets -3: %v", err)
		}
		if sp.Offset != 15 || sp.Timestamp != maxTs.UnixMilli() {
			t.Errorf("ListOffsets -3 = offset %d ts %d, want offset 15 ts %d", sp.Offset, sp.Timestamp, maxTs.UnixMilli())
		}
	})
}

// listOffsetsHook closes done once the client read a ListOffsets response.
type listOffsetsHook struct {
	once sync.Once
	done chan struct{}
}

func (h *listOffsetsHook) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == kmsg.ListOffsets.Int16() && err == nil {
		h.once.Do(func() { close(h.done) })
	}
}

// TestLongPollWakesOnProduce: a fetch parked waiting for data returns as
// soon as a record arrives, not at the end of its max wait.
func TestLongPollWakesOnProduce(t *testing.T) { engines.Run(t, testLongPollWakesOnProduce) }

func testLongPollWakesOnProduce(t *testing.T, engine string) {
	b := startBroker(t, engine, t.TempDir())
	rawTopic := "long-poll-raw"
	createTopic(t, b.Addr(), rawTopic, 1, nil)

	// Raw first: one Fetch with MaxWait 10s on the empty partition must be
	// held (not answered empty at once) and answered once a record lands.
	rc := dialRaw(t, b.Addr())
	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(12)
	fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = -1, 10000, 1, 1<<20
	fetch.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = rawTopic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = 0, 0, 1<<20
	fp.CurrentLeaderEpoch, fp.LastFetchedEpoch, fp.LogStartOffset = -1, -1, -1
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	rawProd := newClient(t, b.Addr())
	sentc := make(chan time.Time, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		at := time.Now()
		if err := rawProd.ProduceSync(context.Background(), &kgo.Record{Topic: rawTopic, Value: []byte("raw")}).FirstErr(); err != nil {
			t.Errorf("produce: %v", err)
		}
		sentc <- at
	}()
	start := time.Now()
	fr := rc.mustRoundTrip(fetch).(*kmsg.FetchResponse)
	answered := time.Now()
	sent := <-sentc
	if answered.Before(sent) {
		t.Fatalf("fetch on an empty partition answered after %v, before anything was produced: not parked", answered.Sub(start))
	}
	t.Logf("raw fetch: parked %v, woken %v after the produce started", answered.Sub(start), answered.Sub(sent))
	if answered.Sub(sent) >= 2*time.Second {
		t.Fatalf("parked fetch answered %v after the produce", answered.Sub(sent))
	}
	if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 || len(fr.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("woken fetch carries no records: %+v", fr)
	}
	// Now through kgo: let the consumer resolve its offset and park a fetch.
	topic := "long-poll-kgo"
	createTopic(t, b.Addr(), topic, 1, nil)
	cons := newClient(t, b.Addr(), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(10*time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	warm, cancel := context.WithTimeout(context.Background(), time.Second)
	cons.PollFetches(warm)
	cancel()
	prod := newClient(t, b.Addr())
	produceSync(t, prod, &kgo.Record{Topic: topic, Value: []byte("warm-up of the producer")})
	// That record wakes the parked fetch; take it, then measure a fresh wait.
	ctx := testCtx(t, 30*time.Second)
	if n := len(cons.PollFetches(ctx).Records()); n != 1 {
		t.Fatalf("got %d records, want the warm-up one", n)
	}

	var wg sync.WaitGroup
	var got []*kgo.Record
	var gotAt time.Time
	wg.Add(1)
	go func() {
		defer wg.Done()
		for len(got) == 0 && ctx.Err() == nil {
			got = cons.PollFetches(ctx).Records()
		}
		gotAt = time.Now()
	}()
	time.Sleep(300 * time.Millisecond) // the next fetch is parked by now
	sent = time.Now()
	produceSync(t, prod, &kgo.Record{Topic: topic, Value: []byte("wake up")})
	wg.Wait()
	if len(got) != 1 || string(got[0].Value) != "wake up" {
		t.Fatalf("got %v, want the one record", got)
	}
	lat := gotAt.Sub(sent)
	t.Logf("long-poll wake-up latency: %v (FetchMaxWait 10s)", lat)
	if lat >= 2*time.Second {
		t.Fatalf("record arrived %v after produce; the parked fetch was not woken", lat)
	}
}
