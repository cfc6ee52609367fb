package replicamgr

import (
	"strconv"
	"testing"
	"time"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/clock"
	"github.com/sluice-io/sluice/segment"
)

// BenchmarkTakeover measures, on the real disk, the image a broker
// applies when another one died: -replicamgr.partitions partitions
// (issue 17: 3,300 of 10,000 on each of the two brokers left) that this
// node followed, open, are made led here in a new leader epoch, each
// writing its leader-epoch checkpoint. serial gives the replicas their
// roles one at a time, as before; pool on the ioWorkers goroutines.
// takeover-ms is the ApplyImage; fsyncs are counted per partition.
//
//	nice -n 19 go test -run '^$' -bench Takeover -benchtime 1x -count 3 ./replicamgr/ -args -replicamgr.partitions=3300
func BenchmarkTakeover(b *testing.B) {
	for _, bc := range []struct {
		name    string
		workers int
	}{{"serial", 1}, {"pool", ioWorkers}} {
		b.Run(bc.name, func(b *testing.B) { benchTakeover(b, bc.workers) })
	}
}

func benchTakeover(b *testing.B, workers int) {
	const perTopic = 50
	n := *benchPartitions
	fsys := &countingFS{FS: segment.OSFS()}
	var took time.Duration
	var syncs syncCount
	for range b.N {
		b.StopTimer()
		commit := benchMetadata(b)
		var moves []controller.Record
		for t := 0; t*perTopic < n; t++ {
			id := controller.NewTopicID()
			rs := []controller.Record{controller.TopicRecord{Name: "t" + strconv.Itoa(t), ID: id}}
			for p := 0; p < perTopic && t*perTopic+p < n; p++ {
				r := []int32{2, 1, 3} // broker 2 leads, this node follows
				rs = append(rs, controller.PartitionRecord{TopicID: id, Partition: int32(p), Replicas: r, ISR: r, Leader: 2})
				moves = append(moves, controller.PartitionChangeRecord{TopicID: id, Partition: int32(p), Leader: self, ISR: []int32{1, 3}})
			}
			commit(rs...)
		}
		cfg, err := config.Load("", []string{"log.dirs=" + b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		m, err := New(Deps{FS: fsys, Files: segment.NewFileCache(segment.DefaultFileCacheLimit()),
			Config: cfg, NodeID: self, Clock: clock.Real(), Logger: testLogger()})
		if err != nil {
			b.Fatal(err)
		}
		m.roleWorkers = workers
		if ch := m.ApplyImage(commit()); len(ch.Failed) > 0 {
			b.Fatal(ch.Failed)
		}
		img := commit(moves...) // broker 2 died: this node leads its partitions
		b.StartTimer()

		t0, c0 := time.Now(), fsys.count()
		ch := m.ApplyImage(img)
		took += time.Since(t0)
		c1 := fsys.count()
		syncs.files += c1.files - c0.files
		syncs.dirs += c1.dirs - c0.dirs

		b.StopTimer()
		if len(ch.Failed) > 0 || len(ch.Elected) != n {
			b.Fatalf("takeover: %d elected of %d, failed %v", len(ch.Elected), n, ch.Failed)
		}
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(took.Milliseconds())/float64(b.N), "takeover-ms")
	b.ReportMetric(float64(syncs.files)/float64(b.N*n), "fsyncs/partition")
	b.ReportMetric(float64(syncs.dirs)/float64(b.N*n), "dirsyncs/partition")
}
