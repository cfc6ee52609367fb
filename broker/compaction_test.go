package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testkit"
)

// A compacted topic as a Kafka user drives it: keyed records overwritten
// many times, a tombstone, then the cleaner running in the background. A
// consumer from the start reads the latest value of each key at its
// original offset (the log has gaps), the deleted key is gone once
// delete.retention.ms passed, ListOffsets still gives the log's bounds, a
// group commits and resumes across the gaps, and the metrics count the
// pass.
func TestCompactedTopicEndToEnd(t *testing.T) {
	tb := startTestBroker(t, "log.cleaner.backoff.ms=50")
	str := func(s string) *string { return &s }
	tb.createTopic(t, "kv", 1, map[string]*string{
		"cleanup.policy":            str("compact"),
		"segment.bytes":             str("1024"),
		"min.cleanable.dirty.ratio": str("0.01"),
		"delete.retention.ms":       str("0"),
	})
	cl := tb.client(t, kgo.DefaultProduceTopic("kv"))
	ctx := context.Background()
	want := map[string]string{}
	for v := range 40 {
		for _, k := range []string{"a", "b", "c", "d"} {
			val := fmt.Sprintf("%s-%d", k, v)
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte(val)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			want[k] = val
		}
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("d")}).FirstErr(); err != nil { // a tombstone
		t.Fatal(err)
	}
	delete(want, "d")
	// Fill the active segment past its size so the tombstone's segment is
	// no longer active and can be cleaned.
	produceE := func(from, to int) {
		for v := from; v < to; v++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("e"), Value: fmt.Appendf(nil, "e-%d", v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produceE(0, 20)
	end := int64(4*40 + 1 + 20)

	// The first pass removes the older versions and leaves the tombstone:
	// a tombstone goes only in a later pass, once its segment is clean
	// and delete.retention.ms (0 here) passed, as Kafka's.
	waitFor := func(what string, ok func(count map[string]int) bool) (map[string]string, []int64) {
		var got map[string]string
		var offsets []int64
		testkit.EventuallyNil(t, 20*time.Second, func() error {
			var count map[string]int
			got, offsets, count = readCompacted(t, tb, "kv", end)
			if !ok(count) {
				return fmt.Errorf("records per key %v: want %s", count, what)
			}
			return nil
		})
		return got, offsets
	}
	waitFor("a, b and c once", func(c map[string]int) bool { return c["a"] == 1 && c["b"] == 1 && c["c"] == 1 })
	produceE(20, 40) // new dirt: a second pass
	end += 20
	want["e"] = "e-39"
	got, offsets := waitFor("a, b and c once, d (deleted) not at all", func(c map[string]int) bool {
		return c["a"] == 1 && c["b"] == 1 && c["c"] == 1 && c["d"] == 0
	})
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("key %s reads %q, want the latest %q (all: %v)", k, got[k], v, got)
		}
	}
	if offsets[len(offsets)-1] != end-1 {
		t.Fatalf("last offset %d, want %d: the last record keeps its offset", offsets[len(offsets)-1], end-1)
	}

	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, "kv")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("kv", 0); o.Offset != end {
		t.Fatalf("end offset %d after compaction, want %d", o.Offset, end)
	}

	// A group commits an offset inside a gap and resumes from there.
	i := 0
	for i+1 < len(offsets) && offsets[i+1] == offsets[i]+1 {
		i++
	}
	if i+1 == len(offsets) {
		t.Fatalf("no gap among the offsets read: %v", offsets)
	}
	gap, next := offsets[i]+1, offsets[i+1]
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: "kv", Partition: 0, At: gap, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx, "g", commit); err != nil {
		t.Fatal(err)
	}
	gc := tb.client(t, kgo.ConsumerGroup("g"), kgo.ConsumeTopics("kv"))
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fs := gc.PollFetches(fctx)
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	// The cleaner may have removed more since the read above, so the
	// first record is at next or later, never before the commit.
	if recs := fs.Records(); len(recs) == 0 || recs[0].Offset < next {
		var offs []int64
		for _, r := range recs {
			offs = append(offs, r.Offset)
		}
		t.Fatalf("resumed inside a gap at %d: offsets %v, want none below %d", gap, offs, next)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{b: tb.Broker})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got2 := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetName() + "=" + l.GetValue()
			}
			got2[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for _, name := range []string{"sluice_log_cleaner_runs_total", "sluice_log_cleaner_dropped_records_total", "sluice_log_cleaner_read_bytes_total"} {
		if got2[name] == 0 {
			t.Errorf("%s = 0 after the passes", name)
		}
	}
	if _, ok := got2["sluice_log_cleaner_seconds_since_last_clean,partition=0,topic=kv"]; !ok {
		t.Errorf("no time since the last clean of kv-0 among %d series", len(got2))
	}
}

// readCompacted consumes topic's partition 0 from the start to end and
// returns the latest value per key (a tombstone removes the key), every
// offset read, in order, and how many records each key had.
func readCompacted(t *testing.T, tb *testBroker, topic string, end int64) (map[string]string, []int64, map[string]int) {
	t.Helper()
	c := tb.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	kv := map[string]string{}
	count := map[string]int{}
	var offsets []int64
	deadline := time.Now().Add(10 * time.Second)
	for (len(offsets) == 0 || offsets[len(offsets)-1] < end-1) && time.Now().Before(deadline) {
		fctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := c.PollFetches(fctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			offsets = append(offsets, r.Offset)
			count[string(r.Key)]++
			if r.Value == nil {
				delete(kv, string(r.Key))
			} else {
				kv[string(r.Key)] = string(r.Value)
			}
		})
	}
	if len(offsets) == 0 || offsets[len(offsets)-1] != end-1 {
		t.Fatalf("read offsets %v of %s, want up to %d", offsets, topic, end-1)
	}
	return kv, offsets, count
}
