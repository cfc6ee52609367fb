package broker

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/replicamgr"
	"github.com/sluice-io/sluice/segment"
)

// tryStart starts a broker on fsys the way `sluice broker` does (New, then
// Listen, then Shutdown if Listen fails) and returns its error instead of
// failing the test.
func tryStart(t *testing.T, fsys segment.FS, dir string, sets ...string) (*testBroker, error) {
	t.Helper()
	w := io.Writer(io.Discard)
	if os.Getenv("SLUICE_TEST_LOG") != "" {
		w = os.Stderr
	}
	return tryStartLogging(t, fsys, w, dir, sets...)
}

// tryStartLogging is tryStart with the broker's log lines, in slog's text
// format, going to w.
func tryStartLogging(t *testing.T, fsys segment.FS, w io.Writer, dir string, sets ...string) (*testBroker, error) {
	t.Helper()
	all := append([]string{"listeners=PLAINTEXT://127.0.0.1:0", "admin.listener=127.0.0.1:0", "log.dirs=" + dir}, sets...)
	cfg, err := config.Load("", all)
	if err != nil {
		t.Fatal(err)
	}
	b, err := open(cfg, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), fsys)
	if err != nil {
		return nil, err
	}
	if err := b.Listen(); err != nil {
		_ = b.Shutdown(context.Background())
		return nil, err
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	return &testBroker{Broker: b, dir: dir, addr: b.Addr().String()}, nil
}

// dirState is every file under dir (but the lock file) with its size,
// modification time and content hash: two equal states mean nothing was
// written, rewritten, created or removed.
func dirState(t *testing.T, dir string) map[string]string {
	t.Helper()
	st := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == lockFile {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		st[path] = fmt.Sprintf("%d %d %x", info.Size(), info.ModTime().UnixNano(), sha256.Sum256(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func sameState(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s changed: %q -> %q", p, v, after[p])
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s was created", p)
		}
	}
}

// A second broker on a log dir in use is refused before it reads anything,
// naming the directory and the holder's pid, and the first broker's files
// are left exactly as they were.
func TestSecondBrokerOnALogDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	tb := startTestBrokerIn(t, dir)
	tb.createTopic(t, "held", 2, nil)
	fill(t, tb, "held", 2, 5, 10)
	before := dirState(t, dir)

	_, err := tryStart(t, segment.OSFS(), dir)
	if err == nil {
		t.Fatal("a second broker started on a log dir in use")
	}
	want := fmt.Sprintf("Failed to acquire lock on file .lock in %s. Process %d", dir, os.Getpid())
	if !strings.Contains(err.Error(), want) || !errors.Is(err, segment.ErrLocked) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	sameState(t, before, dirState(t, dir))
	fill(t, tb, "held", 2, 1, 10) // the first broker still serves
	if end := tb.topics.get("held").parts[1].LogEndOffset(); end != 6 {
		t.Fatalf("end offset %d, want 6", end)
	}
	// Once the first is stopped, the directory is free again.
	_ = tb.Shutdown(context.Background())
	if _, err := tryStart(t, segment.OSFS(), dir); err != nil {
		t.Fatalf("start after the holder stopped: %v", err)
	}
}

// One dir listed twice would lock the broker out of itself; it is refused
// with Kafka's message.
func TestDuplicateLogDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	_, err := tryStart(t, segment.OSFS(), dir, "log.dirs="+dir+","+dir+"/.")
	if err == nil || !strings.Contains(err.Error(), "Duplicate log directory found") {
		t.Fatalf("got %v", err)
	}
}

// A broker whose port is taken fails without writing into its log dir:
// no clean-shutdown marker removed or rewritten, no index, snapshot or
// checkpoint touched.
func TestFailedStartWritesNothing(t *testing.T) {
	dir := t.TempDir()
	tb := startTestBrokerIn(t, dir)
	tb.createTopic(t, "quiet", 2, nil)
	fill(t, tb, "quiet", 2, 50, 100)
	if err := tb.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	before := dirState(t, dir)
	if _, err := os.Stat(filepath.Join(dir, cleanShutdownFile)); err != nil {
		t.Fatalf("no clean shutdown marker to begin with: %v", err)
	}
	_, err = tryStart(t, segment.OSFS(), dir, "listeners=PLAINTEXT://"+busy.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("start on a busy port: %v", err)
	}
	sameState(t, before, dirState(t, dir))
}

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
			if _, err := os.Stat(filepath.Join(dir, replicamgr.DirName("spread", int32(p)))); err == nil {
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

// Partitions are found whatever the order of log.dirs, and the metadata is
// found in whichever dir holds it.
func TestLogDirsOrderDoesNotMatter(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	tb := startTestBrokerIn(t, a, "log.dirs="+a+","+b)
	tb.createTopic(t, "order", 4, nil)
	fill(t, tb, "order", 4, 5, 10)
	_ = tb.Shutdown(context.Background())

	tb2, err := tryStart(t, segment.OSFS(), b, "log.dirs="+b+","+a)
	if err != nil {
		t.Fatal(err)
	}
	for p, part := range tb2.topics.get("order").parts {
		if part.LogEndOffset() != 5 {
			t.Fatalf("partition %d: end offset %d after reordering log.dirs", p, part.LogEndOffset())
		}
	}
	if tb2.meta.(*controller.Store).Dir() != a {
		t.Fatalf("metadata read from %s, written in %s", tb2.meta.(*controller.Store).Dir(), a)
	}
	for _, d := range []string{a, b} {
		if strays, _ := filepath.Glob(filepath.Join(d, "*"+replicamgr.StraySuffix)); len(strays) > 0 {
			t.Fatalf("strays after reordering: %v", strays)
		}
		mp, err := readMetaProperties(segment.OSFS(), d)
		if err != nil || mp == nil || mp.clusterID != tb2.meta.ClusterID() || mp.directoryID == "" {
			t.Fatalf("%s: meta.properties %+v, %v", d, mp, err)
		}
	}
}

// populated returns a stopped broker's log dir with data in two topics.
func populated(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	tb := startTestBrokerIn(t, dir)
	tb.createTopic(t, "precious", 2, nil)
	tb.createTopic(t, "other", 1, nil)
	fill(t, tb, "precious", 2, 7, 10)
	if err := tb.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A missing, corrupt or emptied cluster-metadata.json next to partition
// data stops the start with an error naming the file and the way out; it
// used to start a new cluster and delete every partition directory.
func TestDamagedClusterMetadataRefusesToStart(t *testing.T) {
	emptied := func(t *testing.T, path string) {
		b, _ := os.ReadFile(path)
		var st map[string]any
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		st["topics"] = map[string]any{}
		b, _ = json.Marshal(st)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]struct {
		damage func(t *testing.T, path string)
		want   string
	}{
		"missing": {func(t *testing.T, p string) { os.Remove(p) }, "is in none of the log dirs"},
		"corrupt": {func(t *testing.T, p string) { os.WriteFile(p, []byte(`{"topics": {`), 0o644) }, "is corrupt"},
		"blank":   {func(t *testing.T, p string) { os.WriteFile(p, []byte(`{}`), 0o644) }, "names no cluster_id"},
		"emptied": {emptied, "names no topics"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := populated(t)
			c.damage(t, filepath.Join(dir, controller.MetadataFile))
			before := dirState(t, dir)
			_, err := tryStart(t, segment.OSFS(), dir)
			if err == nil {
				t.Fatal("started over damaged cluster metadata")
			}
			for _, w := range []string{c.want, controller.MetadataFile, "backup"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			sameState(t, before, dirState(t, dir))
		})
	}
}

// A log dir of another cluster, or of another node, is refused; so is a
// copy of a log dir (same directory.id).
func TestLogDirOfAnotherClusterOrNodeIsRefused(t *testing.T) {
	other := populated(t) // a cluster of its own
	t.Run("cluster", func(t *testing.T) {
		mine := populated(t)
		_, err := tryStart(t, segment.OSFS(), mine, "log.dirs="+mine+","+other)
		if err == nil || !strings.Contains(err.Error(), "Invalid cluster.id in: "+filepath.Join(other, metaPropertiesFile)) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("node", func(t *testing.T) {
		a, b := t.TempDir(), t.TempDir()
		tb := startTestBrokerIn(t, a, "log.dirs="+a+","+b)
		_ = tb.Shutdown(context.Background())
		mp, err := readMetaProperties(segment.OSFS(), b)
		if err != nil {
			t.Fatal(err)
		}
		mp.nodeID = 7
		if err := writeMetaProperties(segment.OSFS(), b, mp); err != nil {
			t.Fatal(err)
		}
		_, err = tryStart(t, segment.OSFS(), a, "log.dirs="+a+","+b)
		if err == nil || !strings.Contains(err.Error(), "Stored node id 7 doesn't match") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("copy", func(t *testing.T) {
		a, b := t.TempDir(), t.TempDir()
		tb := startTestBrokerIn(t, a, "log.dirs="+a+","+b)
		_ = tb.Shutdown(context.Background())
		data, _ := os.ReadFile(filepath.Join(a, metaPropertiesFile))
		os.WriteFile(filepath.Join(b, metaPropertiesFile), data, 0o644)
		_, err := tryStart(t, segment.OSFS(), a, "log.dirs="+a+","+b)
		if err == nil || !strings.Contains(err.Error(), "have the same directory.id") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		dir := populated(t)
		os.WriteFile(filepath.Join(dir, metaPropertiesFile), []byte("version=1\ngarbage\n"), 0o644)
		_, err := tryStart(t, segment.OSFS(), dir)
		if err == nil || !strings.Contains(err.Error(), "is malformed") {
			t.Fatalf("got %v", err)
		}
	})
}

// A log dir written before meta.properties existed is adopted, its data
// kept, and gets an identity.
func TestLogDirWithoutIdentityIsAdopted(t *testing.T) {
	dir := populated(t)
	if err := os.Remove(filepath.Join(dir, metaPropertiesFile)); err != nil {
		t.Fatal(err)
	}
	tb, err := tryStart(t, segment.OSFS(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if end := tb.topics.get("precious").parts[1].LogEndOffset(); end != 7 {
		t.Fatalf("end offset %d", end)
	}
	if mp, err := readMetaProperties(segment.OSFS(), dir); err != nil || mp == nil || mp.clusterID != tb.meta.ClusterID() {
		t.Fatalf("meta.properties %+v, %v", mp, err)
	}
}

func TestParseMetaProperties(t *testing.T) {
	mp := &metaProperties{clusterID: "c1", nodeID: 3, directoryID: "d1"}
	got, err := parseMetaProperties("x", mp.encode())
	if err != nil || *got != *mp {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "version=1\ncluster.id=c\n", "version=0\ncluster.id=c\nnode.id=1\n", "version=1\nnode.id=1\n", "version=1\ncluster.id=c\nnode.id=x\n"} {
		if _, err := parseMetaProperties("x", []byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
