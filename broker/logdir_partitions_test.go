package broker

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replicamgr"
	"github.com/sluice-io/sluice/segment"
)

// faultyFS fails every open of a file whose path ends with suffix, as a
// disk with a bad sector (EIO) or a file with the wrong owner (EACCES)
// would; the tests run as root, where chmod cannot make a file unreadable.
type faultyFS struct {
	segment.FS
	suffix string
	err    syscall.Errno
}

func (f faultyFS) OpenFile(name string, flag int, perm os.FileMode) (segment.File, error) {
	if strings.HasSuffix(name, f.suffix) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: f.err}
	}
	return f.FS.OpenFile(name, flag, perm)
}

// failing is an FS on which precious-0's partition.metadata cannot be read.
func failing(errno syscall.Errno) func() segment.FS {
	return func() segment.FS {
		return faultyFS{segment.OSFS(), "precious-0/" + replicamgr.PartitionMetadataFile, errno}
	}
}

func strays(t *testing.T, dir, prefix string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, prefix+".*"+replicamgr.StraySuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A partition directory whose topic is gone from the metadata, or beyond
// the topic's partition count, is set aside as a stray with its data; it
// used to be deleted.
func TestStrayPartitionDirectoriesAreSetAside(t *testing.T) {
	dir := populated(t)
	for _, name := range []string{"ghost-0", "precious-5"} {
		pd := filepath.Join(dir, name)
		if err := os.MkdirAll(pd, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := replicamgr.WritePartitionMetadata(segment.OSFS(), pd, "AAAAAAAAAAAAAAAAAAAAAA"); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pd, "00000000000000000000.log"), []byte("acknowledged"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tb, err := tryStart(t, segment.OSFS(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ghost-0", "precious-5"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Fatalf("%s still in place: %v", name, err)
		}
		s := strays(t, dir, name)
		if len(s) != 1 {
			t.Fatalf("%s set aside as %v", name, s)
		}
		if b, err := os.ReadFile(filepath.Join(s[0], "00000000000000000000.log")); err != nil || string(b) != "acknowledged" {
			t.Fatalf("stray lost its data: %q %v", b, err)
		}
	}
	if end := tb.topics.get("precious").parts[0].LogEndOffset(); end != 7 {
		t.Fatalf("live topic lost data: end offset %d", end)
	}
	// A stray is left alone by the next start.
	_ = tb.Shutdown(context.Background())
	if _, err := tryStart(t, segment.OSFS(), dir); err != nil {
		t.Fatal(err)
	}
	if s := strays(t, dir, "ghost-0"); len(s) != 1 {
		t.Fatalf("strays after a second start: %v", s)
	}
}

// A lost partition.metadata does not make the partition a leftover: the
// data is kept and served, the file written again.
func TestMissingPartitionMetadataKeepsData(t *testing.T) {
	dir := populated(t)
	pmd := filepath.Join(dir, "precious-1", replicamgr.PartitionMetadataFile)
	want, _ := os.ReadFile(pmd)
	if err := os.Remove(pmd); err != nil {
		t.Fatal(err)
	}
	tb, err := tryStart(t, segment.OSFS(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if end := tb.topics.get("precious").parts[1].LogEndOffset(); end != 7 {
		t.Fatalf("end offset %d, want 7", end)
	}
	if got, _ := os.ReadFile(pmd); string(got) != string(want) {
		t.Fatalf("partition.metadata %q, want %q", got, want)
	}
}

// Only a readable partition.metadata naming another topic id marks a
// directory as not ours (a deleted topic's leftover); it is set aside, not
// removed, and the partition starts empty beside it.
func TestPartitionMetadataOfAnotherTopicIsSetAside(t *testing.T) {
	dir := populated(t)
	pd := filepath.Join(dir, "precious-0")
	if err := replicamgr.WritePartitionMetadata(segment.OSFS(), pd, "AAAAAAAAAAAAAAAAAAAAAA"); err != nil {
		t.Fatal(err)
	}
	tb, err := tryStart(t, segment.OSFS(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if end := tb.topics.get("precious").parts[0].LogEndOffset(); end != 0 {
		t.Fatalf("another topic's data served: end offset %d", end)
	}
	s := strays(t, dir, "precious-0")
	if len(s) != 1 {
		t.Fatalf("set aside as %v", s)
	}
	if id, err := replicamgr.ReadPartitionMetadata(segment.OSFS(), s[0]); err != nil || id != "AAAAAAAAAAAAAAAAAAAAAA" {
		t.Fatalf("stray: %q %v", id, err)
	}
}

// A partition.metadata that cannot be read (EIO, EACCES) or says nothing
// takes that partition offline: KAFKA_STORAGE_ERROR to clients, files left
// exactly as they were, the other partitions served.
func TestUnreadablePartitionMetadataTakesThePartitionOffline(t *testing.T) {
	for name, c := range map[string]struct {
		fsys   func() segment.FS
		damage string // content written into the file, if any
	}{
		"EIO":     {fsys: failing(syscall.EIO)},
		"EACCES":  {fsys: failing(syscall.EACCES)},
		"garbage": {fsys: segment.OSFS, damage: "\x00\x00garbage"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := populated(t)
			pd := filepath.Join(dir, "precious-0")
			if c.damage != "" {
				if err := os.WriteFile(filepath.Join(pd, replicamgr.PartitionMetadataFile), []byte(c.damage), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := dirState(t, pd)
			tb, err := tryStart(t, c.fsys(), dir)
			if err != nil {
				t.Fatal(err)
			}
			top := tb.topics.get("precious")
			if top.partition(0) != nil || top.partitionError(0) == nil {
				t.Fatal("partition 0 is served")
			}
			if end := top.partition(1).LogEndOffset(); end != 7 {
				t.Fatalf("partition 1 end offset %d", end)
			}
			c := tb.raw(t)
			md := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr("precious")
			md.Topics = append(md.Topics, rt)
			mresp := do[*kmsg.MetadataResponse](c, md, 12)
			if got := mresp.Topics[0].Partitions[0].ErrorCode; got != kerr.KafkaStorageError.Code {
				t.Fatalf("metadata error code %d for the offline partition", got)
			}
			fresp := do[*kmsg.FetchResponse](c, fetchReq("precious", top.id, 0, 0), 12)
			if got := fresp.Topics[0].Partitions[0].ErrorCode; got != kerr.KafkaStorageError.Code {
				t.Fatalf("fetch error code %d for the offline partition", got)
			}
			if got := fresp.Topics[0].Partitions[1].ErrorCode; got != 0 {
				t.Fatalf("fetch error code %d for the online partition", got)
			}
			batch, err := segment.BuildBatch([]segment.KV{{Value: []byte("v")}}, 1)
			if err != nil {
				t.Fatal(err)
			}
			preq := kmsg.NewPtrProduceRequest()
			preq.Acks, preq.TimeoutMillis = -1, 5000
			pt := kmsg.NewProduceRequestTopic()
			pt.Topic = "precious"
			pp := kmsg.NewProduceRequestTopicPartition()
			pp.Records = batch
			pt.Partitions = append(pt.Partitions, pp)
			preq.Topics = append(preq.Topics, pt)
			presp := do[*kmsg.ProduceResponse](c, preq, 9)
			if got := presp.Topics[0].Partitions[0].ErrorCode; got != kerr.KafkaStorageError.Code {
				t.Fatalf("produce error code %d for the offline partition", got)
			}
			lreq := kmsg.NewPtrListOffsetsRequest()
			lreq.ReplicaID = -1
			lt := kmsg.NewListOffsetsRequestTopic()
			lt.Topic = "precious"
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Timestamp = -1
			lt.Partitions = append(lt.Partitions, lp)
			lreq.Topics = append(lreq.Topics, lt)
			lresp := do[*kmsg.ListOffsetsResponse](c, lreq, 7)
			if got := lresp.Topics[0].Partitions[0].ErrorCode; got != kerr.KafkaStorageError.Code {
				t.Fatalf("list offsets error code %d for the offline partition", got)
			}
			_ = tb.Shutdown(context.Background())
			if _, err := os.Stat(pd); err != nil {
				t.Fatal(err)
			}
			sameState(t, before, dirState(t, pd))
			if s := strays(t, dir, "precious-0"); len(s) != 0 {
				t.Fatalf("offline partition set aside: %v", s)
			}
		})
	}
}

// A topic created at run time over a leftover directory without
// partition.metadata (a deletion cut short) does not take its records for
// its own: the leftover is set aside and the new partition starts empty.
func TestCreateOverALeftoverSetsItAside(t *testing.T) {
	dir := t.TempDir()
	tb := startTestBrokerIn(t, dir)
	pd := filepath.Join(dir, "fresh-0")
	if err := os.MkdirAll(pd, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pd, "00000000000000000000.log"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	tb.createTopic(t, "fresh", 1, nil)
	if end := tb.topics.get("fresh").parts[0].LogEndOffset(); end != 0 {
		t.Fatalf("end offset %d", end)
	}
	s := strays(t, dir, "fresh-0")
	if len(s) != 1 {
		t.Fatalf("set aside as %v", s)
	}
	if b, err := os.ReadFile(filepath.Join(s[0], "00000000000000000000.log")); err != nil || string(b) != "old" {
		t.Fatalf("leftover lost: %q %v", b, err)
	}
}
