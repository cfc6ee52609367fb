package replica

import (
	"errors"
	"reflect"
	"testing"

	"github.com/sluice-io/sluice/segment"
)

func TestPartitionDeleteRecords(t *testing.T) {
	fs := segment.NewMemFS()
	p := openPartition(t, fs, 0, testConfig())
	defer p.Close()
	for i := 0; i < 4; i++ {
		mustAppend(t, p, makeBatch(t, plain(2)))
	}
	if _, err := p.DeleteRecords(9); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("before > HW: %v", err)
	}
	lw, err := p.DeleteRecords(4)
	if err != nil || lw != 4 || p.LogStartOffset() != 4 {
		t.Fatalf("DeleteRecords(4) = %d, %v; start %d", lw, err, p.LogStartOffset())
	}
	if lw, err := p.DeleteRecords(2); err != nil || lw != 4 {
		t.Fatalf("moving back = %d, %v", lw, err)
	}
	if _, err := p.Read(1, 1<<20, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	if got := p.EpochEntries(); !reflect.DeepEqual(got, []EpochEntry{{0, 4}}) {
		t.Fatalf("entries = %v", got)
	}
	if lw, err := p.DeleteRecords(-1); err != nil || lw != 8 {
		t.Fatalf("DeleteRecords(-1) = %d, %v", lw, err)
	}
	if r := mustAppend(t, p, makeBatch(t, plain(1))); r.BaseOffset != 8 || r.LogStartOffset != 8 {
		t.Fatalf("append after delete: %+v", r)
	}
}

func TestPartitionExpireProducers(t *testing.T) {
	fs := segment.NewMemFS()
	cfg := testConfig()
	cfg.ProducerIDExpirationMs = 500
	p := openPartition(t, fs, 0, cfg)
	defer p.Close()
	mustAppend(t, p, makeBatch(t, idem(1, 0, 0, 1))) // timestamp now-1000
	if n := p.ExpireProducers(); n != 1 {
		t.Fatalf("expired %d", n)
	}
	// Unknown again: any sequence is accepted.
	mustAppend(t, p, makeBatch(t, idem(1, 0, 9, 1)))
}

func TestPartitionDelete(t *testing.T) {
	fs := segment.NewMemFS()
	p := openPartition(t, fs, 0, testConfig())
	mustAppend(t, p, makeBatch(t, plain(1)))
	if err := p.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.ReadDir(testDir); err == nil {
		t.Fatal("directory still exists")
	}
}

func TestPartitionRetention(t *testing.T) {
	fs := segment.NewMemFS()
	cfg := testConfig()
	cfg.Log.SegmentBytes = 150 // about two small batches per segment
	p := openPartition(t, fs, 0, cfg)
	for i := 0; i < 3; i++ {
		mustAppend(t, p, makeBatch(t, idem(1, 0, int32(i), 1)))
	}
	p.Close()
	p = openPartition(t, fs, 1, cfg)
	defer p.Close()
	for i := 3; i < 8; i++ {
		mustAppend(t, p, makeBatch(t, idem(1, 0, int32(i), 1)))
	}
	if p.NumSegments() < 3 {
		t.Fatalf("only %d segments; test needs rolls", p.NumSegments())
	}
	if n, err := p.ApplyRetention(); n != 0 || err != nil {
		t.Fatalf("unlimited retention deleted %d, %v", n, err)
	}
	cfg.Log.RetentionBytes = 1
	p.SetConfig(cfg)
	n, err := p.ApplyRetention()
	if err != nil || n == 0 {
		t.Fatalf("ApplyRetention = %d, %v", n, err)
	}
	start := p.LogStartOffset()
	if start <= 3 || p.NumSegments() != 1 {
		t.Fatalf("start %d after retention, %d segments", start, p.NumSegments())
	}
	if got := p.EpochEntries(); !reflect.DeepEqual(got, []EpochEntry{{1, start}}) {
		t.Fatalf("entries = %v", got)
	}
	// Producer state outlives the deleted records (KIP-360): a retry of a
	// batch that retention removed is still answered as a duplicate.
	if r := mustAppend(t, p, makeBatch(t, idem(1, 0, 3, 1))); !r.Duplicate || r.BaseOffset != 3 {
		t.Fatalf("retry of a deleted batch: %+v", r)
	}
	if _, err := p.Append(makeBatch(t, idem(1, 0, 9, 1))); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap after retention: %v", err)
	}
}

func TestPartitionTruncateTo(t *testing.T) {
	fs := segment.NewMemFS()
	p := openPartition(t, fs, 0, testConfig())
	mustAppend(t, p, makeBatch(t, idem(1, 0, 0, 2))) // 0-1
	if err := p.Flush(); err != nil {                // snapshot at 2
		t.Fatal(err)
	}
	p.Close()
	p = openPartition(t, fs, 1, testConfig())
	defer p.Close()
	mustAppend(t, p, makeBatch(t, idem(1, 0, 2, 2))) // 2-3, epoch 1
	if err := p.Flush(); err != nil {                // snapshot at 4
		t.Fatal(err)
	}
	mustAppend(t, p, makeBatch(t, idem(1, 0, 4, 1))) // 4

	if err := p.TruncateTo(2); !errors.Is(err, ErrNotFollower) {
		t.Fatalf("truncation on the leader: %v, want ErrNotFollower", err)
	}
	if err := p.BecomeFollower(1); err != nil {
		t.Fatal(err)
	}
	if err := p.TruncateTo(2); err != nil {
		t.Fatal(err)
	}
	if p.LogEndOffset() != 2 || p.HighWatermark() != 2 {
		t.Fatalf("LEO %d HW %d", p.LogEndOffset(), p.HighWatermark())
	}
	if got := p.EpochEntries(); !reflect.DeepEqual(got, []EpochEntry{{0, 0}}) {
		t.Fatalf("entries = %v", got)
	}
	if got := snapshotFiles(t, fs); len(got) != 1 || got[0] != SnapshotName(2) {
		t.Fatalf("snapshots = %v", got)
	}
	// Producer state is back at sequence 1: 2 follows, the truncated 4 does not.
	if err := p.BecomeLeader(1); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(makeBatch(t, idem(1, 0, 4, 1))); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("sequence from truncated state: %v", err)
	}
	if r := mustAppend(t, p, makeBatch(t, idem(1, 0, 2, 1))); r.BaseOffset != 2 || r.Duplicate {
		t.Fatalf("append after truncation: %+v", r)
	}
	if got := p.EpochEntries(); !reflect.DeepEqual(got, []EpochEntry{{0, 0}, {1, 2}}) {
		t.Fatalf("entries = %v", got)
	}
}
