package broker

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/coordinator"
	"github.com/sluice-io/sluice/segment"
)

// failFS wraps the broker's FS: creating a file under the directory named
// failIn fails with EMFILE, as when the process runs out of descriptors, and
// the files it opened under dirs matching track are counted until closed.
// With writes set, creating works and writes under failIn fail with that
// errno instead (ENOSPC: a full disk).
type failFS struct {
	segment.FS
	failIn, track string
	writes        syscall.Errno
	healed        atomic.Bool // stop failing, as when space is freed

	mu   sync.Mutex
	open map[string]int // path -> open handles
}

func (f *failFS) OpenFile(name string, flag int, perm os.FileMode) (segment.File, error) {
	under := strings.Contains(name, "/"+f.failIn+"/")
	if f.writes == 0 && flag&os.O_CREATE != 0 && under && !f.healed.Load() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EMFILE}
	}
	file, err := f.FS.OpenFile(name, flag, perm)
	if err == nil && f.writes != 0 && under {
		file = &fullFile{File: file, fs: f, name: name}
	}
	if err != nil || !strings.Contains(name, "/"+f.track) {
		return file, err
	}
	f.mu.Lock()
	f.open[name]++
	f.mu.Unlock()
	return &trackedFile{File: file, fs: f, name: name}, nil
}

// openUnder lists the files still open below partition directories whose
// name starts with prefix.
func (f *failFS) openUnder(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for name, n := range f.open {
		if n > 0 && strings.Contains(name, "/"+prefix) {
			out = append(out, name)
		}
	}
	return out
}

type trackedFile struct {
	segment.File
	fs   *failFS
	name string
	once sync.Once
}

func (t *trackedFile) Close() error {
	t.once.Do(func() {
		t.fs.mu.Lock()
		t.fs.open[t.name]--
		t.fs.mu.Unlock()
	})
	return t.File.Close()
}

// fullFile fails its writes with the failFS's errno until it is healed;
// the rest of the file works, as on a full disk, where a truncate to cut a
// torn append off still succeeds.
type fullFile struct {
	segment.File
	fs   *failFS
	name string
}

func (f *fullFile) Write(p []byte) (int, error) {
	if !f.fs.healed.Load() {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: f.fs.writes}
	}
	return f.File.Write(p)
}

// startBrokerWithFS is startTestBrokerIn on the OS's FS wrapped by wrap.
func startBrokerWithFS(t *testing.T, dir string, wrap func(segment.FS) segment.FS) *testBroker {
	t.Helper()
	cfg, err := config.Load("", []string{"listeners=PLAINTEXT://127.0.0.1:0", "admin.listener=", "log.dirs=" + dir})
	if err != nil {
		t.Fatal(err)
	}
	b, err := open(cfg, slog.New(slog.DiscardHandler), wrap(segment.OSFS()))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	return &testBroker{Broker: b, dir: dir, addr: b.Addr().String()}
}

func partitionDirs(t *testing.T, dir, prefix string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestFailedCreateRollsBack: a CreateTopics whose fourth partition cannot
// be opened (EMFILE) used to stay in the metadata with its partitions
// missing (the topic could be neither used nor deleted, and the next start
// tried to open it again) and to leak the descriptors of the partitions it
// had opened. Now it leaves no trace, and the broker restarts.
func TestFailedCreateRollsBack(t *testing.T) {
	dir := t.TempDir()
	ffs := &failFS{failIn: "boom-3", track: "boom-", open: map[string]int{}}
	tb := startBrokerWithFS(t, dir, func(inner segment.FS) segment.FS { ffs.FS = inner; return ffs })
	c := tb.raw(t)

	st := do[*kmsg.CreateTopicsResponse](c, createTopicsReq(false, "boom", 6, 1), 7).Topics[0]
	if st.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("create with a failing partition: %d %q, want KAFKA_STORAGE_ERROR", st.ErrorCode, strOrEmpty(st.ErrorMessage))
	}
	if _, ok := tb.meta.Image().Topic("boom"); ok {
		t.Fatal("the failed topic stayed in the metadata")
	}
	if tb.topics.get("boom") != nil {
		t.Fatal("the failed topic is served")
	}
	if open := ffs.openUnder("boom-"); len(open) > 0 {
		t.Fatalf("the failed create leaked %d open files: %v", len(open), open)
	}
	if left := partitionDirs(t, dir, "boom-"); len(left) > 0 {
		t.Fatalf("directories of the failed create left behind: %v", left)
	}
	// The name is free again, and the rest of the broker works.
	tb.createTopic(t, "other", 1, nil)
	if err := tb.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	tb = startTestBrokerIn(t, dir)
	if _, ok := tb.meta.Image().Topic("boom"); ok {
		t.Fatal("the failed topic came back after a restart")
	}
	tb.createTopic(t, "boom", 6, nil)
}

// TestFailedGrowRollsBack: the same for CreatePartitions: the topic keeps
// its old partitions, in the metadata and on disk, and nothing leaks.
func TestFailedGrowRollsBack(t *testing.T) {
	dir := t.TempDir()
	ffs := &failFS{failIn: "grow-3", track: "grow-", open: map[string]int{}}
	tb := startBrokerWithFS(t, dir, func(inner segment.FS) segment.FS { ffs.FS = inner; return ffs })
	tb.createTopic(t, "grow", 2, nil)
	fill(t, tb, "grow", 2, 4, 10)
	c := tb.raw(t)

	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "grow", Count: 5}}
	if r := do[*kmsg.CreatePartitionsResponse](c, cp, 3).Topics[0]; r.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("grow with a failing partition: %d %q, want KAFKA_STORAGE_ERROR", r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	if mt, _ := tb.meta.Image().Topic("grow"); len(mt.Partitions) != 2 {
		t.Fatalf("metadata has %d partitions after the failed grow, want 2", len(mt.Partitions))
	}
	if n := len(tb.topics.get("grow").parts); n != 2 {
		t.Fatalf("registry has %d partitions, want 2", n)
	}
	if open := ffs.openUnder("grow-2"); len(open) > 0 {
		t.Fatalf("the failed grow leaked open files: %v", open)
	}
	if left := partitionDirs(t, dir, "grow-"); len(left) != 2 {
		t.Fatalf("partition directories after the failed grow: %v", left)
	}
	if err := tb.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	tb = startTestBrokerIn(t, dir)
	if n := len(tb.topics.get("grow").parts); n != 2 {
		t.Fatalf("%d partitions after restart", n)
	}
	for p, end := range map[int]int64{0: 4, 1: 4} {
		if got := tb.topics.get("grow").parts[p].LogEndOffset(); got != end {
			t.Fatalf("partition %d end offset %d, want %d", p, got, end)
		}
	}
}

// TestOffsetsTopicCreatedOnceStorageRecovers: when __consumer_offsets was
// first created while the disk was failing, its half-made topic stayed in
// the metadata, and every later attempt found it "already existing" but not
// open: the coordinator answered COORDINATOR_NOT_AVAILABLE until a restart,
// even after space was freed. With the failed create rolled back, the next
// request creates it.
func TestOffsetsTopicCreatedOnceStorageRecovers(t *testing.T) {
	dir := t.TempDir()
	ffs := &failFS{failIn: coordinator.OffsetsTopic + "-1", track: coordinator.OffsetsTopic, open: map[string]int{}}
	tb := startBrokerWithFS(t, dir, func(inner segment.FS) segment.FS { ffs.FS = inner; return ffs })
	c := tb.raw(t)
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g"
	if r := do[*kmsg.FindCoordinatorResponse](c, fc, 3); r.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("FindCoordinator with failing storage: %d, want COORDINATOR_NOT_AVAILABLE", r.ErrorCode)
	}
	if open := ffs.openUnder(coordinator.OffsetsTopic); len(open) > 0 {
		t.Fatalf("the failed create leaked %d open files", len(open))
	}
	ffs.healed.Store(true)
	if r := do[*kmsg.FindCoordinatorResponse](c, fc, 3); r.ErrorCode != 0 {
		t.Fatalf("FindCoordinator once storage works again: %d %q", r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	tb.createTopic(t, "t", 1, nil)
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation = "g", -1
	oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 0}}}}
	if r := do[*kmsg.OffsetCommitResponse](c, oc, 8); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("OffsetCommit once storage works again: %d", r.Topics[0].Partitions[0].ErrorCode)
	}
}
