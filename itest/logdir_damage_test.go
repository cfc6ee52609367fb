package itest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// filled starts a broker on dirs (comma-separated), writes n records to a
// two-partition topic and stops it cleanly.
func filled(t *testing.T, engine, dirs string, n int) {
	t.Helper()
	b := startBroker(t, engine, dirs)
	createTopic(t, b.Addr(), "kept", 2, nil)
	cl := newClient(t, b.Addr())
	for i := 0; i < n; i++ {
		produceSync(t, cl, &kgo.Record{Topic: "kept", Value: []byte(itoa(i))})
	}
	cl.Close()
	b.Stop()
}

// Without its cluster-metadata.json a log dir with data is not taken for a
// new cluster (which deleted every partition): the broker exits naming the
// file and the way out, and once the file is back every record is there.
func TestMissingClusterMetadataStopsTheStart(t *testing.T) {
	engines.Run(t, func(t *testing.T, engine string) {
		dir := t.TempDir()
		filled(t, engine, dir, 120)
		meta := filepath.Join(dir, "cluster-metadata.json")
		if err := os.Rename(meta, meta+".bak"); err != nil {
			t.Fatal(err)
		}
		code, stderr := runFailingBroker(t, engine, dir)
		if code == 0 || !strings.Contains(stderr, "cluster-metadata.json is in none of the log dirs") || !strings.Contains(stderr, "backup") {
			t.Fatalf("exit %d:\n%s", code, stderr)
		}
		if err := os.Rename(meta+".bak", meta); err != nil {
			t.Fatal(err)
		}
		b := startBroker(t, engine, dir)
		if got := len(consumeAll(t, b.Addr(), "kept")); got != 120 {
			t.Fatalf("%d of 120 records", got)
		}
	})
}

// A lost partition.metadata keeps the partition's records, and log.dirs in
// another order finds every partition.
func TestLostPartitionMetadataAndReorderedLogDirsKeepRecords(t *testing.T) {
	engines.Run(t, func(t *testing.T, engine string) {
		a, b := t.TempDir(), t.TempDir()
		filled(t, engine, a+","+b, 150)
		for _, d := range []string{a, b} {
			_ = os.Remove(filepath.Join(d, "kept-0", "partition.metadata"))
		}
		br := startBroker(t, engine, b+","+a)
		if got := len(consumeAll(t, br.Addr(), "kept")); got != 150 {
			t.Fatalf("%d of 150 records", got)
		}
		for _, d := range []string{a, b} {
			if s, _ := filepath.Glob(filepath.Join(d, "*-stray")); len(s) > 0 {
				t.Fatalf("set aside: %v", s)
			}
		}
	})
}
