package broker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replicamgr"
)

// twoDirBroker is a broker with log.dirs=a,b and topic t of four partitions,
// which the broker spreads over both dirs.
func twoDirBroker(t *testing.T) (tb *testBroker, a, b string) {
	t.Helper()
	root := t.TempDir()
	a, b = filepath.Join(root, "a"), filepath.Join(root, "b")
	tb = startTestBroker(t, "log.dirs="+a+","+b)
	tb.createTopic(t, "t", 4, nil)
	tb.createTopic(t, "other", 1, nil)
	return tb, a, b
}

func describeDirs(t *testing.T, tb *testBroker, s kadm.TopicsSet) kadm.DescribedLogDirs {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	all, err := tb.admin(t).DescribeAllLogDirs(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("answers from brokers %v, want one", all)
	}
	return all[tb.cfg.NodeID]
}

// checkDirs asserts that every partition of topics is reported once, in the
// dir that holds its files, with its replica's size and no lag.
func checkDirs(t *testing.T, tb *testBroker, ds kadm.DescribedLogDirs, dirs []string, topics ...string) {
	t.Helper()
	if len(ds) != len(dirs) {
		t.Fatalf("described dirs %v, want %v", keys(ds), dirs)
	}
	for _, d := range dirs {
		got, ok := ds[d]
		if !ok || got.Err != nil {
			t.Fatalf("dir %s: described %v, err %v", d, ok, got.Err)
		}
		if got.TotalBytes <= 0 || got.UsableBytes < 0 || got.UsableBytes > got.TotalBytes {
			t.Fatalf("dir %s: total %d usable %d bytes", d, got.TotalBytes, got.UsableBytes)
		}
	}
	want := 0
	for _, name := range topics {
		rt := tb.replicas.Topic(name)
		for i := range rt.Partitions {
			p := &rt.Partitions[i]
			want++
			var found []string
			for _, d := range dirs {
				if dp, ok := ds[d].Topics.Lookup(name, p.Index); ok {
					found = append(found, d)
					if dp.Size != p.Replica.Size() || dp.OffsetLag != 0 || dp.IsFuture {
						t.Fatalf("%s-%d in %s: size %d lag %d future %v, replica size %d",
							name, p.Index, d, dp.Size, dp.OffsetLag, dp.IsFuture, p.Replica.Size())
					}
				}
			}
			if len(found) != 1 || found[0] != p.Dir {
				t.Fatalf("%s-%d reported in %v, held in %s", name, p.Index, found, p.Dir)
			}
			if _, err := os.Stat(filepath.Join(found[0], replicamgr.DirName(name, p.Index))); err != nil {
				t.Fatalf("%s-%d: reported in %s but not there: %v", name, p.Index, found[0], err)
			}
		}
	}
	got := 0
	for _, d := range ds {
		for _, name := range topics {
			got += len(d.Topics[name])
		}
	}
	if got != want {
		t.Fatalf("%d partitions reported, want %d", got, want)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDescribeLogDirsReportsEveryDirAndPartition(t *testing.T) {
	tb, a, b := twoDirBroker(t)
	ds := describeDirs(t, tb, nil)
	checkDirs(t, tb, ds, []string{a, b}, "t", "other")
	if len(ds[a].Topics["t"]) == 0 || len(ds[b].Topics["t"]) == 0 {
		t.Fatalf("t's partitions not spread over both dirs: %v / %v", ds[a].Topics, ds[b].Topics)
	}

	// A produce grows the partition's reported size by what it wrote.
	before := ds[tb.replicas.Topic("t").Partitions[2].Dir].Topics["t"][2].Size
	cl := tb.client(t, kgo.DefaultProduceTopic("t"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	produceSync(t, cl, &kgo.Record{Partition: 2, Value: make([]byte, 4096)})
	ds = describeDirs(t, tb, nil)
	checkDirs(t, tb, ds, []string{a, b}, "t", "other")
	after := ds[tb.replicas.Topic("t").Partitions[2].Dir].Topics["t"][2].Size
	if after < before+4096 {
		t.Fatalf("t-2 size %d after a 4 KiB record, %d before", after, before)
	}
}

// Asked for some partitions, the broker reports only those it hosts, and
// still every dir.
func TestDescribeLogDirsFiltersByTopic(t *testing.T) {
	tb, a, b := twoDirBroker(t)
	var s kadm.TopicsSet
	s.Add("t", 0, 3)
	ds := describeDirs(t, tb, s)
	if len(ds) != 2 {
		t.Fatalf("described dirs %v, want %s and %s", keys(ds), a, b)
	}
	got := map[int32]string{}
	for dir, d := range ds {
		for name, ps := range d.Topics {
			if name != "t" {
				t.Fatalf("topic %s reported in %s; not asked for", name, dir)
			}
			for p := range ps {
				got[p] = dir
			}
		}
	}
	rt := tb.replicas.Topic("t")
	if len(got) != 2 || got[0] != rt.Partitions[0].Dir || got[3] != rt.Partitions[3].Dir {
		t.Fatalf("reported %v, want t-0 in %s and t-3 in %s", got, rt.Partitions[0].Dir, rt.Partitions[3].Dir)
	}

	// A topic or partition the broker does not host is left out, not an
	// error (kgo refuses to shard such a request, so this asks directly).
	req := kmsg.NewPtrDescribeLogDirsRequest()
	for _, name := range []string{"missing", "t"} {
		rt := kmsg.NewDescribeLogDirsRequestTopic()
		rt.Topic, rt.Partitions = name, []int32{99}
		req.Topics = append(req.Topics, rt)
	}
	resp := do[*kmsg.DescribeLogDirsResponse](tb.raw(t), req, 4)
	for _, d := range resp.Dirs {
		if d.ErrorCode != 0 || len(d.Topics) != 0 {
			t.Fatalf("asked for missing partitions, %s answers error %d, topics %+v", d.Dir, d.ErrorCode, d.Topics)
		}
	}
	if len(resp.Dirs) != 2 || resp.ErrorCode != 0 {
		t.Fatalf("asked for missing partitions: error %d, dirs %+v", resp.ErrorCode, resp.Dirs)
	}
}

// v0 has no volume sizes; v4 does, and v5 adds IsCordoned (never, here).
func TestDescribeLogDirsVersions(t *testing.T) {
	tb, a, b := twoDirBroker(t)
	c := tb.raw(t)
	for _, v := range []int16{0, 1, 2, 3, 4, 5} {
		req := kmsg.NewPtrDescribeLogDirsRequest()
		resp := do[*kmsg.DescribeLogDirsResponse](c, req, v)
		if resp.ErrorCode != 0 || len(resp.Dirs) != 2 || resp.Dirs[0].Dir != a || resp.Dirs[1].Dir != b {
			t.Fatalf("v%d: error %d, dirs %+v", v, resp.ErrorCode, resp.Dirs)
		}
		n := 0
		for _, d := range resp.Dirs {
			switch {
			case d.ErrorCode != 0 || d.IsCordoned:
				t.Fatalf("v%d %s: error %d cordoned %v", v, d.Dir, d.ErrorCode, d.IsCordoned)
			case v < 4 && (d.TotalBytes != -1 || d.UsableBytes != -1):
				t.Fatalf("v%d %s: volume %d/%d bytes decoded from a version without them", v, d.Dir, d.UsableBytes, d.TotalBytes)
			case v >= 4 && (d.TotalBytes <= 0 || d.UsableBytes < 0):
				t.Fatalf("v%d %s: volume %d/%d bytes", v, d.Dir, d.UsableBytes, d.TotalBytes)
			}
			for _, dt := range d.Topics {
				n += len(dt.Partitions)
			}
		}
		if n != 5 {
			t.Fatalf("v%d: %d partitions reported, want 5", v, n)
		}
	}
}

// A dir failing writes answers KAFKA_STORAGE_ERROR, and still lists its
// replicas, which are still served.
func TestDescribeLogDirsFailingDir(t *testing.T) {
	tb, a, b := twoDirBroker(t)
	c := tb.raw(t)
	var resp *kmsg.DescribeLogDirsResponse
	// A write to b in between (a checkpoint) clears the mark, as a disk
	// taking writes again should; a few tries get past that.
	for try := 0; try < 5; try++ {
		tb.storage.dirs[1].down.Store(true)
		resp = do[*kmsg.DescribeLogDirsResponse](c, kmsg.NewPtrDescribeLogDirsRequest(), 4)
		if len(resp.Dirs) == 2 && resp.Dirs[1].ErrorCode != 0 {
			break
		}
	}
	if len(resp.Dirs) != 2 || resp.Dirs[0].Dir != a || resp.Dirs[1].Dir != b {
		t.Fatalf("dirs %+v", resp.Dirs)
	}
	if resp.Dirs[0].ErrorCode != 0 || resp.Dirs[1].ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("errors %d, %d; want 0 and KAFKA_STORAGE_ERROR", resp.Dirs[0].ErrorCode, resp.Dirs[1].ErrorCode)
	}
	if len(resp.Dirs[1].Topics) == 0 {
		t.Fatalf("failing dir %s lists no partitions", b)
	}
}
