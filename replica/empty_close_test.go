package replica

import (
	"testing"

	"github.com/sluice-io/sluice/segment"
)

// A replicated partition that never held a record writes neither a
// producer snapshot nor a HW checkpoint when it is flushed and closed:
// both would say what their absence says (no producers at offset 0, HW
// 0). A crash then loses nothing: it opens again with HW 0 and takes
// records; once it holds one, Close writes both.
func TestEmptyReplicatedPartitionWritesNoSnapshotOrHW(t *testing.T) {
	fs := segment.NewMemFS()
	cfg := testConfig()
	cfg.Replicated = true
	for range 2 {
		p := openPartition(t, fs, 0, cfg)
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		for _, name := range listDir(t, fs, testDir) {
			if name == HighWatermarkCheckpointFile || name == SnapshotName(0) {
				t.Fatalf("empty partition wrote %s", name)
			}
		}
		fs.Crash()
	}
	p := openPartition(t, fs, 0, cfg)
	if p.HighWatermark() != 0 || p.LogEndOffset() != 0 {
		t.Fatalf("HW %d LEO %d, want 0 0", p.HighWatermark(), p.LogEndOffset())
	}
	mustAppend(t, p, makeBatch(t, idem(1, 0, 0, 1)))
	if _, err := p.SetHighWatermark(1); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	p = openPartition(t, fs, 0, cfg)
	defer p.Close()
	if p.HighWatermark() != 1 || p.NumProducers() != 1 {
		t.Fatalf("after close and crash: HW %d producers %d, want 1 1", p.HighWatermark(), p.NumProducers())
	}
}
