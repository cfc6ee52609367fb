package broker

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/segment"
)

// An fsync of a partition's segment fails once: the produce that needed it
// answers KAFKA_STORAGE_ERROR, and so does every later produce to that
// partition even though the disk works again (Linux may have dropped the
// pages the failed fsync could not write, so a later fsync would succeed
// over lost data). Metadata reports the partition offline, the metric
// counts it, other partitions are untouched, and reads stop at what was
// made durable. A restart re-validates the log and it takes writes again
// with every acknowledged record in place.
func TestFsyncFailurePoisonsPartition(t *testing.T) {
	dir := t.TempDir()
	efs := segment.NewErrorFS(segment.OSFS())
	var logs lockedBuffer
	tb, err := tryStartLogging(t, efs, &logs, dir)
	if err != nil {
		t.Fatal(err)
	}
	one := "1"
	tb.createTopic(t, "sick", 1, map[string]*string{"flush.messages": &one})
	tb.createTopic(t, "well", 1, map[string]*string{"flush.messages": &one})
	batch := func(v string) []byte {
		b, err := segment.BuildBatch([]segment.KV{{Value: []byte(v)}}, time.Now().UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, v := range []string{"a", "b"} {
		if r := produceRaw(t, tb, "sick", batch(v)); r.ErrorCode != 0 {
			t.Fatalf("produce %s: %d %q", v, r.ErrorCode, strOrEmpty(r.ErrorMessage))
		}
	}

	in := efs.Inject(segment.Fault{Ops: segment.OpSync, Path: segment.PathSuffix(".log")})
	// Only sick-0 is written to: the one fsync that fails is its.
	if r := produceRaw(t, tb, "sick", batch("lost")); r.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("produce whose fsync failed: %d %q, want KAFKA_STORAGE_ERROR", r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	if in.Failed() != 1 {
		t.Fatalf("%d fsyncs failed, want 1", in.Failed())
	}
	r := produceRaw(t, tb, "sick", batch("c"))
	if r.ErrorCode != kerr.KafkaStorageError.Code || !strings.Contains(strOrEmpty(r.ErrorMessage), "poisoned") {
		t.Fatalf("produce after the failed fsync, disk healthy again: %d %q, want KAFKA_STORAGE_ERROR saying the log is poisoned",
			r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	if r := produceRaw(t, tb, "well", batch("w")); r.ErrorCode != 0 {
		t.Fatalf("produce to another partition: %d %q", r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	if len(logs.lines("log poisoned")) != 1 {
		t.Errorf("want one ERROR line saying the log is poisoned, got:\n%s", strings.Join(logs.lines("poisoned"), "\n"))
	}

	mr := kmsg.NewPtrMetadataRequest()
	for _, n := range []string{"sick", "well"} {
		mr.Topics = append(mr.Topics, kmsg.MetadataRequestTopic{Topic: kmsg.StringPtr(n)})
	}
	meta := do[*kmsg.MetadataResponse](tb.raw(t), mr, 12)
	for _, mt := range meta.Topics {
		want := int16(0)
		if *mt.Topic == "sick" {
			want = kerr.KafkaStorageError.Code
		}
		if got := mt.Partitions[0].ErrorCode; got != want {
			t.Errorf("metadata of %s-0: error %d, want %d", *mt.Topic, got, want)
		}
	}
	if v := mustValue(t, tb.scrape(t), "sluice_log_poisoned_partitions"); v != 1 {
		t.Errorf("sluice_log_poisoned_partitions = %v, want 1", v)
	}
	// Reads stop at the last successful fsync: "lost" was written but its
	// fsync failed, so no consumer may see it.
	if got := fetchValues(t, tb, "sick"); strings.Join(got, ",") != "a,b" {
		t.Errorf("fetch from the poisoned partition: %v, want [a b]", got)
	}

	if err := tb.Shutdown(t.Context()); err != nil {
		t.Logf("shutdown: %v", err) // the poisoned log refuses its last flush
	}
	// Its last flush refused, the shutdown is not clean: the restart must
	// re-validate the log above its recovery point.
	if _, err := os.Stat(filepath.Join(dir, cleanShutdownFile)); err == nil {
		t.Error("clean-shutdown marker written over a poisoned log")
	}
	tb2, err := tryStartLogging(t, segment.OSFS(), &logs, dir)
	if err != nil {
		t.Fatal(err)
	}
	if r := produceRaw(t, tb2, "sick", batch("d")); r.ErrorCode != 0 {
		t.Fatalf("produce after restart: %d %q", r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	got := strings.Join(fetchValues(t, tb2, "sick"), ",")
	// "lost" was never acknowledged; the page cache kept it here, so
	// recovery may keep it too. Acknowledged records must all be there.
	if got != "a,b,d" && got != "a,b,lost,d" {
		t.Errorf("after restart: %s, want a,b[,lost],d", got)
	}
	if v := mustValue(t, tb2.scrape(t), "sluice_log_poisoned_partitions"); v != 0 {
		t.Errorf("sluice_log_poisoned_partitions after restart = %v, want 0", v)
	}
}

// fetchValues reads partition 0 of topic from offset 0 to the end that
// Fetch serves, returning the record values.
func fetchValues(t *testing.T, tb *testBroker, topic string) []string {
	t.Helper()
	c := tb.raw(t)
	var out []string
	for off := int64(0); ; {
		fr := kmsg.NewPtrFetchRequest()
		fr.ReplicaID, fr.MaxWaitMillis, fr.MaxBytes = -1, 0, 1<<20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = topic
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = off, 1<<20, -1
		ft.Partitions = append(ft.Partitions, fp)
		fr.Topics = append(fr.Topics, ft)
		resp := do[*kmsg.FetchResponse](c, fr, 11)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("fetch %s at %d: error %d", topic, off, p.ErrorCode)
		}
		n := 0
		for raw := p.RecordBatches; len(raw) > 0; {
			var b kmsg.RecordBatch
			if err := b.ReadFrom(raw); err != nil {
				t.Fatalf("decoding record batch: %v", err)
			}
			raw = raw[12+int(b.Length):]
			recs := b.Records
			for i := int32(0); i < b.NumRecords; i++ {
				l, w := binary.Varint(recs)
				if w <= 0 || int(l) > len(recs)-w {
					t.Fatalf("record %d of batch at %d: bad length", i, b.FirstOffset)
				}
				var r kmsg.Record
				if err := r.ReadFrom(recs[:w+int(l)]); err != nil {
					t.Fatal(err)
				}
				recs = recs[w+int(l):]
				if o := b.FirstOffset + int64(r.OffsetDelta); o >= off {
					out = append(out, string(r.Value))
					off = o + 1
					n++
				}
			}
		}
		if n == 0 {
			return out
		}
	}
}
