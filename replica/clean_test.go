package replica

import (
	"fmt"
	"testing"

	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/segment"
)

// keyed is a batch of one record per key, values "<key>=<version>",
// from producer pid (-1: not idempotent) at sequence seq.
func keyed(pid int64, seq int32, version int, keys ...string) []byte {
	b := testkit.Batch{PartitionLeaderEpoch: -1}
	if pid >= 0 {
		b.Producer = &testkit.Producer{ID: pid, FirstSequence: seq}
	}
	for _, k := range keys {
		b.Records = append(b.Records, testkit.Record{Key: []byte(k), Value: fmt.Appendf(nil, "%s=%d", k, version)})
	}
	return b.Encode()
}

// all reads the partition from its start to its log end and returns each
// record's offset and value.
func all(t *testing.T, p *Partition) map[int64]string {
	t.Helper()
	res, err := p.ReadForFollower(p.LogStartOffset(), 1<<30, true)
	if err != nil {
		t.Fatal(err)
	}
	buf := readAll(t, res)
	out := map[int64]string{}
	for len(buf) > 0 {
		h, err := segment.ParseBatchHeader(buf)
		if err != nil {
			t.Fatal(err)
		}
		if err := segment.EachRecord(buf[:h.Size()], func(r segment.Record) error {
			out[r.Offset] = string(r.Value)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		buf = buf[h.Size():]
	}
	return out
}

func compactedConfig() Config {
	cfg := testConfig()
	cfg.Log.SegmentBytes = 300 // a few batches per segment
	cfg.Replicated = true      // the test sets the HW
	return cfg
}

// A pass keeps the latest value of every key, with its offset, up to the
// high watermark and no further; nothing committed means nothing cleaned.
func TestCleanStopsAtTheHighWatermark(t *testing.T) {
	p := openPartition(t, segment.NewMemFS(), 0, compactedConfig())
	if err := p.BecomeLeader(0); err != nil {
		t.Fatal(err)
	}
	for v := range 6 {
		mustAppend(t, p, keyed(-1, 0, v, "a", "b"))
	}
	if st, err := p.Clean(segment.CleanOptions{}); err != nil || st.RecordsDropped != 0 {
		t.Fatalf("pass with HW 0: %+v, %v; want nothing cleaned", st, err)
	}
	if d := p.Dirtiness(segment.CleanOptions{}); d.DirtyBytes != 0 || d.Ratio != 0 {
		t.Fatalf("dirtiness with HW 0: %+v", d)
	}
	if _, err := p.SetHighWatermark(10); err != nil { // versions 0-4 committed
		t.Fatal(err)
	}
	if d := p.Dirtiness(segment.CleanOptions{}); d.DirtyBytes == 0 || d.Ratio <= 0 {
		t.Fatalf("dirtiness with HW 10: %+v, want dirty bytes", d)
	}
	st, err := p.Clean(segment.CleanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := all(t, p)
	if got[0] != "" || got[1] != "" {
		t.Errorf("version 0 survived (%v): newer committed versions replace it", got)
	}
	if got[10] != "a=5" || got[11] != "b=5" {
		t.Errorf("version 5, above the HW, was cleaned away: %v", got)
	}
	if st.RecordsDropped == 0 || st.EndOffset > 10 || len(got) != 12-int(st.RecordsDropped) {
		t.Fatalf("stats %+v and %d records left: want records dropped and the checkpoint at most the HW", st, len(got))
	}
}

// An idempotent producer's newest batch keeps its header even when a
// newer version of every key it wrote replaces its records, so the state
// rebuilt from the log still knows its last sequence: a retry of that
// batch after a restart is a duplicate, not a second write.
func TestCleanKeepsTheProducersLastBatch(t *testing.T) {
	fs := segment.NewMemFS()
	cfg := compactedConfig()
	p := openPartition(t, fs, 0, cfg)
	if err := p.BecomeLeader(0); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, p, keyed(7, 0, 0, "a"))
	mustAppend(t, p, keyed(7, 1, 1, "a"))
	for v := 2; v < 12; v++ {
		mustAppend(t, p, keyed(-1, 0, v, "a"))
	}
	if _, err := p.SetHighWatermark(p.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Clean(segment.CleanOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := all(t, p); got[0] != "" || got[1] != "" {
		t.Fatalf("the producer's replaced records survived: %v", got)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopen without a producer snapshot, so the state comes from the log.
	for _, name := range listDir(t, fs, testDir) {
		if len(name) > 9 && name[len(name)-9:] == ".snapshot" {
			if err := fs.Remove(testDir + "/" + name); err != nil {
				t.Fatal(err)
			}
		}
	}
	p = openPartition(t, fs, 0, cfg)
	defer p.Close()
	e := p.producers.Entry(7)
	if e == nil || e.Batches[len(e.Batches)-1].LastSeq != 1 || e.Batches[len(e.Batches)-1].LastOffset != 1 {
		t.Fatalf("producer 7 after cleaning and reopening: %+v, want its last batch (seq 1 at offset 1)", e)
	}
}

func listDir(t *testing.T, fs segment.FS, dir string) []string {
	t.Helper()
	names, err := fs.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return names
}
