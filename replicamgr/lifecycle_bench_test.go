package replicamgr

import (
	"flag"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/clock"
	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// benchPartitions sizes BenchmarkPartitionLifecycle: issue 17's benchmark
// holds 10,000 replicas per broker (go test -bench PartitionLifecycle
// -benchtime 1x -args -replicamgr.partitions=10000).
var benchPartitions = flag.Int("replicamgr.partitions", 1000, "replicas BenchmarkPartitionLifecycle creates, closes and loads")

// benchRecords: records appended to each partition this node leads (a
// third of them) between create and close, one batch each, so that close
// and load also pay for logs with data.
var benchRecords = flag.Int("replicamgr.records", 1, "records BenchmarkPartitionLifecycle appends to each led partition before closing")

// BenchmarkPartitionLifecycle measures, on the real disk, the three paths
// a broker with many replicas takes: creating them (ApplyImage of images
// that each add a topic of 50 partitions, RF 3 over nodes 1-3, so this
// node leads a third and follows the rest, as after CreateTopics), closing
// them all (Manager.Close, the clean shutdown) and opening them again
// (Manager.Load after that clean close, the restart). Each is reported as
// ms for all of them; the benchmark's own ns/op is the sum.
func BenchmarkPartitionLifecycle(b *testing.B) {
	const perTopic = 50
	n := *benchPartitions
	var create, closing, load time.Duration
	var syncs [3]syncCount
	fsys := &countingFS{FS: segment.OSFS()}
	for range b.N {
		b.StopTimer()
		commit := benchMetadata(b)
		var imgs []*controller.Image
		for t := 0; t*perTopic < n; t++ {
			id := controller.NewTopicID()
			rs := []controller.Record{controller.TopicRecord{Name: "t" + strconv.Itoa(t), ID: id}}
			for p := 0; p < perTopic && t*perTopic+p < n; p++ {
				r := []int32{1, 2, 3}
				r = append(r[p%3:], r[:p%3]...)
				rs = append(rs, controller.PartitionRecord{TopicID: id, Partition: int32(p), Replicas: r, ISR: r, Leader: r[0]})
			}
			imgs = append(imgs, commit(rs...))
		}
		dir := b.TempDir()
		cfg, err := config.Load("", []string{"log.dirs=" + dir})
		if err != nil {
			b.Fatal(err)
		}
		newManager := func() *Manager {
			m, err := New(Deps{FS: fsys, Files: segment.NewFileCache(segment.DefaultFileCacheLimit()),
				Config: cfg, NodeID: self, Clock: clock.Real(), Logger: testLogger()})
			if err != nil {
				b.Fatal(err)
			}
			return m
		}
		m := newManager()
		b.StartTimer()

		t0, c0 := time.Now(), fsys.count()
		for _, img := range imgs {
			if ch := m.ApplyImage(img); len(ch.Failed) > 0 {
				b.Fatal(ch.Failed)
			}
		}
		t1, c1 := time.Now(), fsys.count()
		create += t1.Sub(t0)
		syncs[0].files += c1.files - c0.files
		syncs[0].dirs += c1.dirs - c0.dirs
		b.StopTimer()
		if *benchRecords > 0 {
			var recs []testkit.Record
			for range *benchRecords {
				recs = append(recs, testkit.Record{Value: []byte("value")})
			}
			batch := testkit.Batch{PartitionLeaderEpoch: -1, Records: recs}.Encode()
			for _, t := range m.Topics() {
				for i := range t.Partitions {
					if r, err := t.Leader(int32(i)); err == nil {
						if _, err := r.Append(append([]byte(nil), batch...)); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
		}
		b.StartTimer()
		t1, c1 = time.Now(), fsys.count()
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
		t2, c2 := time.Now(), fsys.count()
		m = newManager()
		if err := m.Load(imgs[len(imgs)-1]); err != nil {
			b.Fatal(err)
		}
		t3, c3 := time.Now(), fsys.count()
		for i, c := range [][2]syncCount{{c1, c2}, {c2, c3}} {
			i++
			syncs[i].files += c[1].files - c[0].files
			syncs[i].dirs += c[1].dirs - c[0].dirs
		}
		closing, load = closing+t2.Sub(t1), load+t3.Sub(t2)

		b.StopTimer()
		if got := countReplicas(m); got != n {
			b.Fatalf("loaded %d replicas, want %d", got, n)
		}
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	per := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N) }
	b.ReportMetric(per(create), "create-ms")
	b.ReportMetric(per(closing), "close-ms")
	b.ReportMetric(per(load), "load-ms")
	for i, phase := range []string{"create", "close", "load"} {
		b.ReportMetric(float64(syncs[i].files)/float64(b.N*n), phase+"-fsyncs/partition")
		b.ReportMetric(float64(syncs[i].dirs)/float64(b.N*n), phase+"-dirsyncs/partition")
	}
}

// countingFS counts the fsyncs of files and directories made through it.
type countingFS struct {
	segment.FS
	files, dirs atomic.Int64
}

type syncCount struct{ files, dirs int64 }

func (c *countingFS) count() syncCount { return syncCount{c.files.Load(), c.dirs.Load()} }

func (c *countingFS) OpenFile(name string, flag int, perm os.FileMode) (segment.File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &countingFile{File: f, fs: c}, nil
}

func (c *countingFS) SyncDir(dir string) error {
	c.dirs.Add(1)
	return c.FS.SyncDir(dir)
}

type countingFile struct {
	segment.File
	fs *countingFS
}

func (f *countingFile) Sync() error {
	f.fs.files.Add(1)
	return f.File.Sync()
}

func countReplicas(m *Manager) int {
	n := 0
	m.eachReplica(func(*Topic, *replica.Partition) { n++ })
	return n
}

// benchMetadata starts a controller in memory with brokers 1-3 registered
// and returns how a benchmark commits records to it.
func benchMetadata(b *testing.B) func(rs ...controller.Record) *controller.Image {
	b.Helper()
	meta, err := controller.Create(segment.NewMemFS(), "/meta", self, testLogger())
	if err != nil {
		b.Fatal(err)
	}
	commit := func(rs ...controller.Record) *controller.Image {
		img, err := meta.Commit(func(*controller.State) ([]controller.Record, error) { return rs, nil })
		if err != nil {
			b.Fatal(err)
		}
		return img
	}
	commit(controller.RegisterBrokerRecord{BrokerID: 1}, controller.RegisterBrokerRecord{BrokerID: 2},
		controller.RegisterBrokerRecord{BrokerID: 3})
	return commit
}
