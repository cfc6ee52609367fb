package replica

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sluice-io/sluice/segment"
)

const testDir = "/data/t-0"

func newEpochCache(t *testing.T) (*segment.MemFS, *EpochCache) {
	t.Helper()
	fs := segment.NewMemFS()
	if err := fs.MkdirAll(testDir, 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := LoadEpochCache(fs, testDir, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	return fs, c
}

func mustAssign(t *testing.T, c *EpochCache, epoch int32, start int64) {
	t.Helper()
	if err := c.Assign(epoch, start); err != nil {
		t.Fatalf("Assign(%d, %d): %v", epoch, start, err)
	}
}

func wantEntries(t *testing.T, c *EpochCache, want ...EpochEntry) {
	t.Helper()
	if got := c.Entries(); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("entries = %v, want %v", got, want)
	}
}

func TestEpochAssign(t *testing.T) {
	_, c := newEpochCache(t)
	if c.LatestEpoch() != UndefinedEpoch {
		t.Fatalf("empty cache latest = %d", c.LatestEpoch())
	}
	mustAssign(t, c, 0, 0)
	mustAssign(t, c, 0, 5) // same epoch, later offset: no-op
	mustAssign(t, c, 2, 10)
	mustAssign(t, c, 4, 20)
	wantEntries(t, c, EpochEntry{0, 0}, EpochEntry{2, 10}, EpochEntry{4, 20})

	// An epoch that never appended is replaced by the next one at the same offset.
	mustAssign(t, c, 5, 30)
	mustAssign(t, c, 6, 30)
	wantEntries(t, c, EpochEntry{0, 0}, EpochEntry{2, 10}, EpochEntry{4, 20}, EpochEntry{6, 30})

	// A lower start offset drops every later entry it conflicts with.
	mustAssign(t, c, 7, 15)
	wantEntries(t, c, EpochEntry{0, 0}, EpochEntry{2, 10}, EpochEntry{7, 15})

	// A lower epoch (follower replaying history) drops entries >= it.
	mustAssign(t, c, 3, 16)
	wantEntries(t, c, EpochEntry{0, 0}, EpochEntry{2, 10}, EpochEntry{3, 16})

	if err := c.Assign(-1, 0); err == nil {
		t.Fatal("negative epoch accepted")
	}
}

func TestEpochEndOffsetFor(t *testing.T) {
	_, c := newEpochCache(t)
	if e, o := c.EndOffsetFor(0, 10); e != UndefinedEpoch || o != UndefinedEpochOffset {
		t.Fatalf("empty cache: (%d, %d)", e, o)
	}
	mustAssign(t, c, 2, 5)
	mustAssign(t, c, 4, 10)
	mustAssign(t, c, 7, 20)
	const leo = 25
	cases := []struct {
		req       int32
		epoch     int32
		endOffset int64
	}{
		{UndefinedEpoch, UndefinedEpoch, UndefinedEpochOffset},
		{0, 0, 5},   // older than every entry: requested epoch, first start offset
		{2, 2, 10},  // exact: next epoch's start
		{3, 2, 10},  // gap: largest epoch below
		{4, 4, 20},  // exact
		{6, 4, 20},  // gap before latest
		{7, 7, leo}, // latest: LEO
		{8, UndefinedEpoch, UndefinedEpochOffset}, // newer than any known
	}
	for _, tc := range cases {
		e, o := c.EndOffsetFor(tc.req, leo)
		if e != tc.epoch || o != tc.endOffset {
			t.Errorf("EndOffsetFor(%d) = (%d, %d), want (%d, %d)", tc.req, e, o, tc.epoch, tc.endOffset)
		}
	}
}

func TestEpochTruncate(t *testing.T) {
	_, c := newEpochCache(t)
	mustAssign(t, c, 1, 0)
	mustAssign(t, c, 2, 10)
	mustAssign(t, c, 3, 20)
	mustAssign(t, c, 4, 30)

	if err := c.TruncateFromEnd(31); err != nil {
		t.Fatal(err)
	}
	wantEntries(t, c, EpochEntry{1, 0}, EpochEntry{2, 10}, EpochEntry{3, 20}, EpochEntry{4, 30})
	if err := c.TruncateFromEnd(20); err != nil { // entries starting at >= 20 go
		t.Fatal(err)
	}
	wantEntries(t, c, EpochEntry{1, 0}, EpochEntry{2, 10})

	if err := c.TruncateFromStart(0); err != nil {
		t.Fatal(err)
	}
	wantEntries(t, c, EpochEntry{1, 0}, EpochEntry{2, 10})
	if err := c.TruncateFromStart(12); err != nil { // epoch 2 covers 12: moved up
		t.Fatal(err)
	}
	wantEntries(t, c, EpochEntry{2, 12})
	mustAssign(t, c, 5, 40)
	if err := c.TruncateFromStart(40); err != nil {
		t.Fatal(err)
	}
	wantEntries(t, c, EpochEntry{5, 40})
	if err := c.TruncateFromEnd(0); err != nil {
		t.Fatal(err)
	}
	wantEntries(t, c)
}

func TestEpochPersistence(t *testing.T) {
	fs, c := newEpochCache(t)
	mustAssign(t, c, 0, 0)
	mustAssign(t, c, 3, 42)
	fs.Crash() // Assign must have made it durable

	data := readFile(t, fs, filepath.Join(testDir, EpochCheckpointFile))
	if want := "0\n2\n0 0\n3 42\n"; string(data) != want {
		t.Fatalf("checkpoint = %q, want %q", data, want)
	}
	c2, err := LoadEpochCache(fs, testDir, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	wantEntries(t, c2, EpochEntry{0, 0}, EpochEntry{3, 42})
}

func TestEpochCorruptCheckpoint(t *testing.T) {
	for name, content := range map[string]string{
		"version":     "1\n0\n",
		"count":       "0\n2\n1 0\n",
		"garbage":     "0\n1\nx y\n",
		"nonmonotone": "0\n2\n3 10\n2 20\n",
		"trailing":    "0\n1\n1 0\n2 5\n",
	} {
		t.Run(name, func(t *testing.T) {
			fs := segment.NewMemFS()
			_ = fs.MkdirAll(testDir, 0o755)
			writeFile(t, fs, filepath.Join(testDir, EpochCheckpointFile), []byte(content))
			c, err := LoadEpochCache(fs, testDir, testLogger())
			if !errors.Is(err, errCorruptCheckpoint) {
				t.Fatalf("err = %v, want corrupt checkpoint", err)
			}
			if c == nil || len(c.Entries()) != 0 {
				t.Fatal("want an empty usable cache alongside the error")
			}
		})
	}
}

func readFile(t *testing.T, fs segment.FS, path string) []byte {
	t.Helper()
	f, err := fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil && n > 0 {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, fs segment.FS, path string, data []byte) {
	t.Helper()
	f, err := fs.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := fs.SyncDir(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
}
