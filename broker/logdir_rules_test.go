package broker

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/replicamgr"
	"github.com/sluice-io/sluice/segment"
)

// The data-safety rules of the log dirs (logdirs.go), on MemFS and on the
// error-injecting segment.ErrorFS: a locked dir refuses a second broker, a
// read error never deletes or rewrites anything, strays are moved aside.

// memTree is every file below dir with its content, and every directory
// (as "dir/"), read through fsys.
func memTree(t *testing.T, fsys segment.FS, dir string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	var walk func(string)
	walk = func(d string) {
		names, err := fsys.ReadDir(d)
		if err != nil {
			t.Fatalf("list %s: %v", d, err)
		}
		for _, n := range names {
			p := filepath.Join(d, n)
			fi, err := fsys.Stat(p)
			if err != nil {
				t.Fatalf("stat %s: %v", p, err)
			}
			if fi.IsDir() {
				tree[p+"/"] = ""
				walk(p)
				continue
			}
			if n == lockFile {
				continue
			}
			b, err := segment.ReadFile(fsys, p)
			if err != nil {
				t.Fatalf("read %s: %v", p, err)
			}
			tree[p] = string(b)
		}
	}
	walk(dir)
	return tree
}

func sameTree(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, b := range before {
		if a, ok := after[p]; !ok {
			t.Errorf("%s: %s is gone", what, p)
		} else if a != b {
			t.Errorf("%s: %s changed (%d bytes, was %d)", what, p, len(a), len(b))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s appeared", what, p)
		}
	}
}

// populatedMem is a MemFS whose log dir holds topic t (flush.messages=1)
// with records a, b, c, after a clean shutdown.
func populatedMem(t *testing.T, clock *fakeClock) (*segment.MemFS, [16]byte) {
	t.Helper()
	mem := segment.NewMemFS()
	b := openMem(t, mem, clock)
	id := b.createTopic("t", map[string]string{"flush.messages": "1"})
	b.mustProduce("t", "a", "b")
	b.mustProduce("t", "c")
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return mem, id
}

func TestLogDirLockRefusesASecondBrokerInMemory(t *testing.T) {
	clock := newFakeClock()
	mem, id := populatedMem(t, clock)
	b1 := openMem(t, mem, clock)
	before := memTree(t, mem, memLogDir)
	if _, err := tryOpenMem(t, mem, clock); !errors.Is(err, segment.ErrLocked) || !strings.Contains(err.Error(), "Failed to acquire lock") {
		t.Fatalf("second broker on a locked log dir: %v, want ErrLocked", err)
	}
	sameTree(t, "after a refused second broker", before, memTree(t, mem, memLogDir))
	sameValues(t, "the first broker after the refusal", b1.mustFetch("t", id), "a", "b", "c")
	if err := b1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	b3 := openMem(t, mem, clock) // the lock went with the first broker
	defer b3.Shutdown(context.Background())

	// A lock that cannot even be tried (a disk error) refuses as well.
	efs := segment.NewErrorFS(segment.NewMemFS())
	efs.Inject(segment.Fault{Ops: segment.OpLock})
	if _, err := tryOpenMem(t, efs, clock); err == nil || !strings.Contains(err.Error(), "Disk error while locking directory") {
		t.Fatalf("broker whose lock fails: %v", err)
	}
}

// Whatever read of a partition's files fails at start (listing its
// directory, opening or reading partition.metadata, reading its log), the
// broker either refuses to start or serves the partition as offline
// (KAFKA_STORAGE_ERROR); it never deletes, recreates or rewrites anything
// of it. Once the fault is gone, a restart serves every record.
func TestReadErrorsNeverDeleteInMemory(t *testing.T) {
	clock := newFakeClock()
	part := filepath.Join(memLogDir, "t-0")
	for _, tc := range []struct {
		name  string
		fault segment.Fault
	}{
		{"list partition dir", segment.Fault{Ops: segment.OpReadDir, Path: func(p string) bool { return p == part }, Sticky: true}},
		{"open partition.metadata", segment.Fault{Ops: segment.OpOpen, Path: segment.PathSuffix(replicamgr.PartitionMetadataFile), Sticky: true}},
		{"read partition.metadata", segment.Fault{Ops: segment.OpRead, Path: segment.PathSuffix(replicamgr.PartitionMetadataFile), Sticky: true}},
		{"read the log", segment.Fault{Ops: segment.OpRead, Path: segment.PathSuffix(".log"), Sticky: true}},
		{"stat anything of it", segment.Fault{Ops: segment.OpStat | segment.OpReadDir | segment.OpOpen | segment.OpRead, Path: segment.PathUnder(part), Sticky: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, id := populatedMem(t, clock)
			before := memTree(t, mem, memLogDir)
			efs := segment.NewErrorFS(mem)
			in := efs.Inject(tc.fault)
			b, err := tryOpenMem(t, efs, clock)
			if err == nil {
				if _, perr := b.produce("t", "x"); !errors.Is(perr, kerr.KafkaStorageError) {
					// A fault the start never met leaves the partition
					// served; only one it met must take it offline.
					if in.Failed() > 0 {
						t.Fatalf("produce to a partition whose files failed to read (%d faults): %v, want KAFKA_STORAGE_ERROR", in.Failed(), perr)
					}
					t.Skipf("the start never read what the fault fails (%v)", perr)
				}
				if _, _, ferr := b.fetchAll("t", id); !errors.Is(ferr, kerr.KafkaStorageError) {
					t.Fatalf("fetch from an offline partition: %v, want KAFKA_STORAGE_ERROR", ferr)
				}
				if err := b.Shutdown(context.Background()); err != nil {
					t.Fatal(err)
				}
			} else if in.Failed() == 0 {
				t.Fatalf("start failed without the fault: %v", err)
			}
			after := memTree(t, mem, memLogDir)
			for p := range before {
				if strings.HasPrefix(p, part) && after[p] != before[p] {
					t.Errorf("%s changed or went after a read error (start error: %v)", p, err)
				}
			}
			for p := range after {
				if strings.HasSuffix(strings.TrimSuffix(p, "/"), replicamgr.StraySuffix) {
					t.Errorf("%s was set aside after a read error", p)
				}
			}
			efs.Heal()
			b2 := openMem(t, mem, clock)
			defer b2.Shutdown(context.Background())
			sameValues(t, "after the fault is gone", b2.mustFetch("t", id), "a", "b", "c")
		})
	}
}

// A partition directory the metadata does not name is renamed aside, not
// deleted, and the rename is durable; one that cannot be renamed stays
// where it is, and the broker starts anyway.
func TestStraysAreMovedAsideInMemory(t *testing.T) {
	clock := newFakeClock()
	mem, id := populatedMem(t, clock)
	gone := filepath.Join(memLogDir, "gone-0")
	if err := mem.MkdirAll(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := segment.WriteFileAtomic(mem, filepath.Join(gone, "00000000000000000000.log"), []byte("only copy")); err != nil {
		t.Fatal(err)
	}

	efs := segment.NewErrorFS(mem)
	efs.Inject(segment.Fault{Ops: segment.OpRename, Path: segment.PathUnder(gone)})
	b1 := openMem(t, efs, clock)
	if _, err := mem.Stat(gone); err != nil {
		t.Fatalf("a stray that could not be renamed: %v, want it left in place", err)
	}
	if len(b1.log.lines("it stays where it is")) != 1 {
		t.Fatal("the failed set-aside was not logged")
	}
	if err := b1.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	b2 := openMem(t, mem, clock)
	b2.kill()
	mem.Crash() // the rename was made durable before the broker went on
	names, err := mem.ReadDir(memLogDir)
	if err != nil {
		t.Fatal(err)
	}
	var stray string
	for _, n := range names {
		if strings.HasPrefix(n, "gone-0.") && strings.HasSuffix(n, replicamgr.StraySuffix) {
			stray = n
		}
		if n == "gone-0" {
			t.Fatalf("stray still at its partition name after a restart: %v", names)
		}
	}
	if stray == "" {
		t.Fatalf("no set-aside stray in %v", names)
	}
	if b, err := segment.ReadFile(mem, filepath.Join(memLogDir, stray, "00000000000000000000.log")); err != nil || string(b) != "only copy" {
		t.Fatalf("stray's data: %q %v", b, err)
	}
	b3 := openMem(t, mem, clock)
	defer b3.Shutdown(context.Background())
	sameValues(t, "the topic beside the stray", b3.mustFetch("t", id), "a", "b", "c")
}
