package broker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// With several log.dirs, partitions spread over them and are found again,
// with their data, after a restart.
func TestSeveralLogDirs(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	tb := startTestBroker(t, "log.dirs="+a+","+b)
	tb.createTopic(t, "spread", 4, nil)
	fill(t, tb, "spread", 4, 5, 10)
	count := func(dir string) int {
		n := 0
		for p := 0; p < 4; p++ {
			if _, err := os.Stat(filepath.Join(dir, partitionDirName("spread", int32(p)))); err == nil {
				n++
			}
		}
		return n
	}
	if ca, cb := count(a), count(b); ca == 0 || cb == 0 || ca+cb != 4 {
		t.Fatalf("partitions per dir: %d and %d", ca, cb)
	}
	_ = tb.Shutdown(context.Background())
	tb2 := startTestBrokerIn(t, a, "log.dirs="+a+","+b)
	for p, part := range tb2.topics.get("spread").parts {
		if part.LogEndOffset() != 5 {
			t.Fatalf("partition %d: end offset %d after restart", p, part.LogEndOffset())
		}
	}
}

// A partition directory whose topic is gone from the metadata (a deletion
// cut short by a crash) is removed at start; one of a recreated topic with
// the same name but another topic ID is never mistaken for its data.
func TestStrayPartitionDirectoriesAreRemoved(t *testing.T) {
	dir := t.TempDir()
	tb := startTestBrokerIn(t, dir)
	tb.createTopic(t, "kept", 1, nil)
	fill(t, tb, "kept", 1, 3, 10)
	_ = tb.Shutdown(context.Background())

	ghost := filepath.Join(dir, "ghost-0")
	if err := os.MkdirAll(ghost, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writePartitionMetadata(ghost, "AAAAAAAAAAAAAAAAAAAAAA"); err != nil {
		t.Fatal(err)
	}
	tb2 := startTestBrokerIn(t, dir)
	if _, err := os.Stat(ghost); !os.IsNotExist(err) {
		t.Fatalf("stray directory survived the start: %v", err)
	}
	if end := tb2.topics.get("kept").parts[0].LogEndOffset(); end != 3 {
		t.Fatalf("live topic lost data: end offset %d", end)
	}
}
