package replicamgr

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// fakeFetcher is Deps.Followers that checks the order of the role
// changes around it: a replica is handed to it only once it follows in
// the epoch it is to be fetched in, and is taken from it before it leads.
type fakeFetcher struct {
	following map[TopicPartition]*replica.Partition
	wrong     []string // order violations seen
}

func newFakeFetcher() *fakeFetcher {
	return &fakeFetcher{following: map[TopicPartition]*replica.Partition{}}
}

func (f *fakeFetcher) Follow(topic string, _ controller.TopicID, partition int32, r *replica.Partition, _ int32, epoch int32) {
	tp := TopicPartition{topic, partition}
	switch {
	case r == nil:
		f.wrong = append(f.wrong, fmt.Sprintf("%v: handed no replica", tp))
	case r.IsLeader() || r.LeaderEpoch() != epoch:
		f.wrong = append(f.wrong, fmt.Sprintf("%v: handed in epoch %d while its replica leads %v in epoch %d", tp, epoch, r.IsLeader(), r.LeaderEpoch()))
	}
	f.following[tp] = r
}

func (f *fakeFetcher) Unfollow(topic string, partition int32) {
	tp := TopicPartition{topic, partition}
	if r := f.following[tp]; r != nil && r.IsLeader() {
		f.wrong = append(f.wrong, fmt.Sprintf("%v: still fetched into after it became leader", tp))
	}
	delete(f.following, tp)
}

// epochWritesFS counts the atomic writes of leader-epoch checkpoints (the
// renames onto them); role changes make them on several goroutines.
type epochWritesFS struct {
	segment.FS
	writes atomic.Int64
}

func (f *epochWritesFS) Rename(from, to string) error {
	if filepath.Base(to) == replica.EpochCheckpointFile {
		f.writes.Add(1)
	}
	return f.FS.Rename(from, to)
}

// managerOn is a manager of the cluster's node on fsys, fed by fetcher.
func (c *cluster) managerOn(fsys segment.FS, fetcher Followers) *Manager {
	c.t.Helper()
	m, err := New(Deps{FS: fsys, Config: c.cfg, NodeID: self, Clock: c.clock, Followers: fetcher})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = m.Close() })
	return m
}

// followerTopic creates a topic of n partitions led by broker 2 and
// followed here, applies it, and gives partition i i%3 records of
// leader epoch 0, as the fetcher would have copied them.
func followerTopic(t *testing.T, c *cluster, n int) controller.TopicID {
	t.Helper()
	var rs [][]int32
	for range n {
		rs = append(rs, []int32{2, 1})
	}
	id := c.createTopic("t", nil, rs...)
	c.apply()
	for i, p := range c.m.Topic("t").Partitions {
		if p.Role != Follower || p.Replica == nil {
			t.Fatalf("partition %d: role %v replica %v, want an open follower", i, p.Role, p.Replica)
		}
		if i%3 == 0 {
			continue
		}
		var recs []testkit.Record
		for range i % 3 {
			recs = append(recs, testkit.Record{Value: []byte("v")})
		}
		if _, err := p.Replica.AppendAsFollower(testkit.Batch{PartitionLeaderEpoch: 0, Records: recs}.Encode()); err != nil {
			t.Fatal(err)
		}
		if err := p.Replica.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// takeover commits the image of broker 2's death: this node leads every
// partition of the topic, in leader epoch 1.
func takeover(c *cluster, id controller.TopicID, n int) {
	var rs []controller.Record
	for i := range n {
		rs = append(rs, controller.PartitionChangeRecord{TopicID: id, Partition: int32(i), Leader: self, ISR: []int32{1}})
	}
	c.commit(rs...)
}

// A takeover of many partitions (their role changes run on the worker
// pool) leaves every one leader in the new epoch, each having written its
// epoch checkpoint once, with the fetcher stopped before each became
// leader; the checkpoints survive a crash, so after it every partition's
// history is its followed epoch then the new one at its log end, and a
// restart leading in that epoch writes none again.
func TestTakeoverOfManyPartitions(t *testing.T) {
	const n = 60
	c := newCluster(t)
	efs := &epochWritesFS{FS: c.fs}
	fetcher := newFakeFetcher()
	c.m = c.managerOn(efs, fetcher)
	id := followerTopic(t, c, n)
	if len(fetcher.following) != n {
		t.Fatalf("%d partitions fetched, want %d", len(fetcher.following), n)
	}
	takeover(c, id, n)
	before := efs.writes.Load()
	ch := c.apply()
	if got := efs.writes.Load() - before; got != n {
		t.Fatalf("%d epoch checkpoint writes for %d new leaders, want one each", got, n)
	}
	if len(fetcher.wrong) > 0 || len(fetcher.following) != 0 {
		t.Fatalf("fetcher: %v; still following %d", fetcher.wrong, len(fetcher.following))
	}
	if len(ch.Elected) != n {
		t.Fatalf("elected %d, want %d", len(ch.Elected), n)
	}
	for i, tp := range ch.Elected {
		if tp != (TopicPartition{"t", int32(i)}) {
			t.Fatalf("elected[%d] = %v: not in partition order", i, tp)
		}
		r, err := c.m.Leader("t", int32(i))
		if err != nil || r.LeaderEpoch() != 1 || r.LeaderEpochStartOffset() != int64(i%3) || c.m.Topic("t").Partitions[i].Repl == nil {
			t.Fatalf("partition %d: %v, want led in epoch 1 from %d with replication", i, err, i%3)
		}
	}

	// The same image again, and an ISR change: no role changes, no writes.
	before = efs.writes.Load()
	c.apply()
	c.commit(controller.PartitionChangeRecord{TopicID: id, Partition: 0, Leader: controller.NoLeaderChange, ISR: []int32{1, 2}})
	c.apply()
	if got := efs.writes.Load() - before; got != 0 {
		t.Fatalf("%d epoch checkpoint writes without a new epoch", got)
	}

	c.fs.Crash()
	for i := range n {
		cache, err := replica.LoadEpochCache(c.fs, filepath.Join("/data", DirName("t", int32(i))), testLogger())
		if err != nil {
			t.Fatal(err)
		}
		want := []replica.EpochEntry{{Epoch: 1, StartOffset: int64(i % 3)}}
		if i%3 != 0 {
			want = append([]replica.EpochEntry{{Epoch: 0, StartOffset: 0}}, want...)
		}
		if got := cache.Entries(); !reflect.DeepEqual(got, want) {
			t.Fatalf("partition %d: checkpoint after a crash %v, want %v", i, got, want)
		}
	}
	before = efs.writes.Load()
	m := c.managerOn(efs, newFakeFetcher())
	if err := m.Load(c.meta.Image()); err != nil {
		t.Fatal(err)
	}
	if got := efs.writes.Load() - before; got != 0 {
		t.Fatalf("%d epoch checkpoint writes leading again in the epoch the checkpoints hold", got)
	}
	for i := range n {
		r, err := m.Leader("t", int32(i))
		if err != nil || r.LeaderEpoch() != 1 || r.LogEndOffset() != int64(i%3) {
			t.Fatalf("partition %d after the restart: %v", i, err)
		}
	}
}

// A replica that cannot write its epoch checkpoint as it takes the lead
// is closed and its partition alone goes offline (KAFKA_STORAGE_ERROR,
// not led, not in Elected); the topic does not fail and its other
// partitions lead. Later images leave it offline; a restart on a healed
// disk leads it.
func TestTakeoverFailureTakesOnlyThatPartitionOffline(t *testing.T) {
	const n, bad = 20, 7
	c := newCluster(t)
	efs := segment.NewErrorFS(c.fs)
	fetcher := newFakeFetcher()
	c.m = c.managerOn(efs, fetcher)
	id := followerTopic(t, c, n)
	badReplica, _ := c.m.Topic("t").Local(bad)
	in := efs.Inject(segment.Fault{Ops: segment.OpSync, Sticky: true,
		Path: segment.PathUnder(filepath.Join("/data", DirName("t", bad)))})
	takeover(c, id, n)
	ch := c.m.ApplyImage(c.meta.Image())
	if len(ch.Failed) != 0 || in.Failed() == 0 {
		t.Fatalf("failed %v, %d faults injected: want the topic applied and the fault hit", ch.Failed, in.Failed())
	}
	if len(ch.Elected) != n-1 || len(fetcher.wrong) > 0 || len(fetcher.following) != 0 {
		t.Fatalf("elected %v; fetcher %v, following %d", ch.Elected, fetcher.wrong, len(fetcher.following))
	}
	for i := range n {
		_, err := c.m.Leader("t", int32(i))
		if i != bad {
			if err != nil {
				t.Fatalf("partition %d: %v, want led", i, err)
			}
			continue
		}
		if !errors.Is(err, kerr.KafkaStorageError) || !errors.Is(err, segment.ErrInjected) {
			t.Fatalf("partition %d: %v, want KAFKA_STORAGE_ERROR with the cause", i, err)
		}
		if slicesContain(ch.Elected, TopicPartition{"t", bad}) {
			t.Fatalf("the offline partition was reported elected")
		}
	}
	if err := badReplica.Flush(); !errors.Is(err, replica.ErrClosed) {
		t.Fatalf("the offline partition's replica: flush %v, want it closed", err)
	}

	// It stays offline through later images, and the others keep leading.
	c.commit(controller.PartitionChangeRecord{TopicID: id, Partition: bad, Leader: controller.NoLeaderChange, ISR: []int32{1, 2}})
	c.apply()
	if p := c.m.Topic("t").Partitions[bad]; p.Offline == nil || p.Replica != nil || p.Repl != nil {
		t.Fatalf("partition %d after another image: offline %v replica %v", bad, p.Offline, p.Replica)
	}

	efs.Heal()
	m := c.managerOn(c.fs, newFakeFetcher())
	if err := m.Load(c.meta.Image()); err != nil {
		t.Fatal(err)
	}
	if r, err := m.Leader("t", bad); err != nil || r.LeaderEpoch() != 1 {
		t.Fatalf("partition %d after a restart on a healed disk: %v", bad, err)
	}
}

// An offline follower is never handed to the fetcher: an image that
// changes its ISR, but not its epoch, leaves it alone.
func TestOfflineFollowerIsNotFetched(t *testing.T) {
	c := newCluster(t)
	id := c.createTopic("t", nil, []int32{2, 1}, []int32{2, 1})
	c.apply()
	if err := c.m.Close(); err != nil {
		t.Fatal(err)
	}
	efs := segment.NewErrorFS(c.fs)
	efs.Inject(segment.Fault{Ops: segment.OpReadDir, Sticky: true, Path: segment.PathUnder("/data/t-0")})
	fetcher := newFakeFetcher()
	c.m = c.managerOn(efs, fetcher)
	if err := c.m.Load(c.meta.Image()); err != nil {
		t.Fatal(err)
	}
	if p := c.m.Topic("t").Partitions[0]; p.Offline == nil {
		t.Fatal("partition 0 should be offline: its directory cannot be listed")
	}
	c.commit(controller.PartitionChangeRecord{TopicID: id, Partition: 0, Leader: controller.NoLeaderChange, ISR: []int32{2}})
	c.apply()
	if len(fetcher.wrong) > 0 {
		t.Fatal(fetcher.wrong)
	}
	if _, ok := fetcher.following[TopicPartition{"t", 1}]; !ok || len(fetcher.following) != 1 {
		t.Fatalf("following %v, want partition 1 only", fetcher.following)
	}
}

func slicesContain(tps []TopicPartition, tp TopicPartition) bool {
	for _, x := range tps {
		if x == tp {
			return true
		}
	}
	return false
}
