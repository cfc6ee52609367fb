package itest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAcksAllSurvivesCleanRestart: records acknowledged with acks=all are
// all there, unchanged, after a clean restart, and the topic keeps its ID.
func TestAcksAllSurvivesCleanRestart(t *testing.T) { engines.Run(t, testAcksAllSurvivesCleanRestart) }

func testAcksAllSurvivesCleanRestart(t *testing.T, engine string) {
	dir := t.TempDir()
	b := startBroker(t, engine, dir)
	const topic, n = "clean-restart", 500
	id := createTopic(t, b.Addr(), topic, 3, nil)
	cl := newClient(t, b.Addr(), kgo.RequiredAcks(kgo.AllISRAcks()))
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % 3),
			Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("value-%d", i))})
	}
	produceSync(t, cl, recs...)
	cl.Close()
	b.Stop()

	b2 := startBroker(t, engine, dir)
	if !strings.Contains(b2.Log(), "unclean_shutdown=false") {
		t.Errorf("second start does not report unclean_shutdown=false")
	}
	ctx := testCtx(t, 15*time.Second)
	topics, err := admin(t, b2.Addr()).ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	td, ok := topics[topic]
	if !ok || td.Err != nil {
		t.Fatalf("topic %s after restart: present=%v err=%v", topic, ok, td.Err)
	}
	if td.ID != id {
		t.Errorf("topic ID after restart %v, want %v", td.ID, id)
	}
	if len(td.Partitions) != 3 {
		t.Errorf("topic has %d partitions after restart, want 3", len(td.Partitions))
	}
	got := consumeAll(t, b2.Addr(), topic)
	if len(got) != n {
		t.Fatalf("after restart consumed %d records, want %d", len(got), n)
	}
	checkContiguous(t, got)
	byKey := map[string]*kgo.Record{}
	for _, r := range got {
		byKey[string(r.Key)] = r
	}
	for i, w := range recs {
		r := byKey[string(w.Key)]
		if r == nil || !bytes.Equal(r.Value, w.Value) || r.Partition != w.Partition {
			t.Fatalf("record %d (%s) after restart: %v", i, w.Key, r)
		}
	}
}

// TestKill9DuringProduceLoop: kill -9 of the broker in the middle of a
// stream of acks=all produces loses no acknowledged record, and a corrupt
// or torn tail is cut off at start-up without taking good records with it.
func TestKill9DuringProduceLoop(t *testing.T) { engines.Run(t, testKill9DuringProduceLoop) }

func testKill9DuringProduceLoop(t *testing.T, engine string) {
	for _, tc := range []struct {
		name string
		sets []string
	}{
		{"default-flush", nil},
		{"flush-every-message", []string{"log.flush.interval.messages=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) { kill9Loop(t, engine, tc.sets) })
	}
	t.Run("CorruptTail", func(t *testing.T) {
		for _, mode := range []string{"flip-byte", "append-garbage", "truncate-mid-batch"} {
			t.Run(mode, func(t *testing.T) { corruptTail(t, engine, mode) })
		}
	})
}

func kill9Loop(t *testing.T, engine string, sets []string) {
	dir := t.TempDir()
	b := startBroker(t, engine, dir, sets...)
	const topic = "kill9"
	createTopic(t, b.Addr(), topic, 1, nil)
	cl := newClient(t, b.Addr(), kgo.RequiredAcks(kgo.AllISRAcks()))

	ctx, cancel := context.WithCancel(context.Background())
	var acked atomic.Int64
	acked.Store(-1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := int64(0); ctx.Err() == nil; i++ {
			r := &kgo.Record{Topic: topic, Value: []byte(strconv.FormatInt(i, 10))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				return
			}
			acked.Store(i)
		}
	}()
	time.Sleep(time.Second)
	b.Kill()
	cancel()
	// An idempotent record already on the wire is not failed by its
	// context; closing the client fails it.
	cl.Close()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("producer loop did not stop after the kill")
	}
	last := acked.Load()
	if last < 10 {
		t.Fatalf("only %d records acknowledged in 1s; the loop did not get going", last+1)
	}

	b2 := startBroker(t, engine, dir, sets...)
	if !strings.Contains(b2.Log(), "unclean_shutdown=true") {
		t.Errorf("restart after kill -9 does not report unclean_shutdown=true")
	}
	// Without fsync an acknowledged record sits in the page cache, which a
	// killed process does not take with it: every acked record must be back.
	got := consumeAll(t, b2.Addr(), topic)
	checkContiguous(t, got)
	for i, r := range got {
		if string(r.Value) != strconv.Itoa(i) {
			t.Fatalf("record at offset %d is %q, want %q", r.Offset, r.Value, strconv.Itoa(i))
		}
	}
	// At most the one request in flight at the kill may have landed unacked.
	if n := int64(len(got)); n < last+1 || n > last+2 {
		t.Fatalf("after kill -9: %d records, %d were acknowledged", n, last+1)
	}
	t.Logf("acknowledged %d, recovered %d", last+1, len(got))
}

// corruptTail damages the newest batch of a partition on disk (or appends
// garbage after it) and checks that the broker keeps every intact record,
// never hands an offset out twice, and says what it found.
func corruptTail(t *testing.T, engine, mode string) {
	dir := t.TempDir()
	b := startBroker(t, engine, dir)
	const topic = "tail"
	createTopic(t, b.Addr(), topic, 1, nil)
	cl := newClient(t, b.Addr(), kgo.ManualFlushing())
	const batches, per = 5, 10
	for i := range batches {
		var rs []*kgo.Record
		for j := range per {
			rs = append(rs, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("r%d", i*per+j))})
		}
		produceBatch(t, cl, rs...)
	}
	cl.Close()
	b.Stop()

	path := newestLogFile(t, dir, topic, 0)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bounds := batchBounds(t, data)
	// The client may split a flush into more batches than we produced;
	// only the last one is damaged either way.
	if len(bounds) < batches || bounds[len(bounds)-1][1] != len(data) {
		t.Fatalf("expected at least %d batches filling the file, found %v in %d bytes", batches, bounds, len(data))
	}
	lastBatch := bounds[len(bounds)-1]
	// Records that must survive: all before the last batch (its base offset).
	good := int64(binary.BigEndian.Uint64(data[lastBatch[0]:]))
	switch mode {
	case "flip-byte":
		// A byte inside the records, covered by the CRC.
		data[lastBatch[1]-3] ^= 0xff
		err = os.WriteFile(path, data, 0o644)
	case "append-garbage":
		garbage := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 25)
		data = append(data, garbage...)
		err = os.WriteFile(path, data, 0o644)
		good = batches * per // the last batch itself is intact
	case "truncate-mid-batch":
		err = os.Truncate(path, int64(lastBatch[0]+(lastBatch[1]-lastBatch[0])/2))
	}
	if err != nil {
		t.Fatal(err)
	}

	b2 := startBroker(t, engine, dir)
	const end = batches * per
	if mode == "append-garbage" {
		// Bytes past the last batch that no acknowledged write produced:
		// cut off with a warning, nothing lost.
		if !strings.Contains(b2.Log(), "torn tail") || !strings.Contains(b2.Log(), "level=WARN") {
			t.Errorf("restart does not warn about cutting the torn tail")
		}
	} else if !strings.Contains(b2.Log(), "damaged log segment") || !strings.Contains(b2.Log(), fmt.Sprintf("first_lost_offset=%d", good)) {
		// The last batch was flushed (the broker stopped cleanly) and then
		// damaged: its offsets become a gap, reported at ERROR.
		t.Errorf("restart does not report the damaged range starting at offset %d", good)
	}
	// Offsets are never handed out twice: the end does not rewind over a
	// damaged range, and new records continue after it.
	if e := endOffsets(t, b2.Addr(), topic)[0]; e != end {
		t.Fatalf("end offset after recovery %d, want %d (never rewound)", e, end)
	}
	cl2 := newClient(t, b2.Addr())
	r := &kgo.Record{Topic: topic, Value: []byte("after-recovery")}
	produceSync(t, cl2, r)
	if r.Offset != end {
		t.Fatalf("first record after recovery got offset %d, want %d", r.Offset, end)
	}
	// Every intact record is served, then the gap, then the new record.
	got := consumeAll(t, b2.Addr(), topic)
	if int64(len(got)) != good+1 {
		t.Fatalf("recovered %d records, want %d intact plus the new one", len(got), good+1)
	}
	checkContiguous(t, got[:good])
	for i, r := range got[:good] {
		if string(r.Value) != fmt.Sprintf("r%d", i) {
			t.Fatalf("record %d is %q", i, r.Value)
		}
	}
	if last := got[good]; last.Offset != end || string(last.Value) != "after-recovery" {
		t.Fatalf("after the gap: offset %d %q, want offset %d %q", last.Offset, last.Value, end, "after-recovery")
	}
}
