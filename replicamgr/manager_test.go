package replicamgr

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/clock"
	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/segment"
)

const self = int32(1)

// cluster is a metadata store on a MemFS and a manager for node 1 on the
// same FS, with a clock the test moves.
type cluster struct {
	t     testing.TB
	fs    *segment.MemFS
	meta  *controller.Store
	cfg   *config.Broker
	clock *clock.Fake
	m     *Manager
}

func newCluster(t testing.TB, sets ...string) *cluster {
	t.Helper()
	fs := segment.NewMemFS()
	if err := fs.MkdirAll("/data", 0o755); err != nil {
		t.Fatal(err)
	}
	meta, err := controller.Create(fs, "/meta", self, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("", append([]string{"log.dirs=/data"}, sets...))
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, fs: fs, meta: meta, cfg: cfg, clock: clock.NewFake(time.UnixMilli(1_700_000_000_000))}
	c.commit(controller.RegisterBrokerRecord{BrokerID: 1}, controller.RegisterBrokerRecord{BrokerID: 2})
	c.m = c.newManager()
	return c
}

func (c *cluster) newManager() *Manager {
	m, err := New(Deps{FS: c.fs, Config: c.cfg, NodeID: self, Clock: c.clock})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = m.Close() })
	return m
}

func testLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func (c *cluster) commit(rs ...controller.Record) *controller.Image {
	c.t.Helper()
	img, err := c.meta.Commit(func(*controller.State) ([]controller.Record, error) { return rs, nil })
	if err != nil {
		c.t.Fatal(err)
	}
	return img
}

// createTopic records a topic whose partition i has replicas[i], led by
// the first of them.
func (c *cluster) createTopic(name string, configs map[string]string, replicas ...[]int32) controller.TopicID {
	c.t.Helper()
	id := controller.NewTopicID()
	rs := []controller.Record{controller.TopicRecord{Name: name, ID: id}}
	for i, r := range replicas {
		rs = append(rs, controller.PartitionRecord{TopicID: id, Partition: int32(i), Replicas: r, ISR: r, Leader: r[0]})
	}
	for k, v := range configs {
		rs = append(rs, controller.ConfigRecord{ResourceType: controller.ConfigResourceTopic, ResourceName: name, Name: k, Value: &v})
	}
	c.commit(rs...)
	return id
}

// apply applies the current image and fails on any open failure.
func (c *cluster) apply() Changes {
	c.t.Helper()
	ch := c.m.ApplyImage(c.meta.Image())
	if len(ch.Failed) > 0 {
		c.t.Fatalf("apply: %v", ch.Failed)
	}
	return ch
}

func (c *cluster) exists(path string) bool {
	_, err := c.fs.Stat(path)
	return err == nil
}

func (c *cluster) produce(topic string, p int32, values ...string) {
	c.t.Helper()
	r, err := c.m.Leader(topic, p)
	if err != nil {
		c.t.Fatal(err)
	}
	var recs []testkit.Record
	for _, v := range values {
		recs = append(recs, testkit.Record{Value: []byte(v)})
	}
	if _, err := r.Append(testkit.Batch{PartitionLeaderEpoch: -1, Records: recs}.Encode()); err != nil {
		c.t.Fatal(err)
	}
}

// The image decides each partition's role on this node: leader where it
// names this node leader, follower where this node is another replica,
// and not hosted (no directory, no replica) elsewhere. Only a leader is
// handed to requests; the rest answer NOT_LEADER_OR_FOLLOWER, and a
// partition or topic the image does not have UNKNOWN_TOPIC_OR_PARTITION.
func TestApplyImageGivesEachPartitionItsRole(t *testing.T) {
	c := newCluster(t)
	c.createTopic("t", nil, []int32{1}, []int32{2, 1}, []int32{2})
	c.apply()
	tp := c.m.Topic("t")
	for i, want := range []Role{Leader, Follower, NotHosted} {
		if got := tp.Partitions[i].Role; got != want {
			t.Errorf("partition %d: role %v, want %v", i, got, want)
		}
	}
	if _, err := c.m.Leader("t", 0); err != nil {
		t.Fatalf("leader of partition 0: %v", err)
	}
	for _, p := range []int32{1, 2} {
		if _, err := c.m.Leader("t", p); !errors.Is(err, ErrNotLeaderOrFollower) || !errors.Is(err, kerr.NotLeaderForPartition) {
			t.Errorf("partition %d: %v, want NOT_LEADER_OR_FOLLOWER", p, err)
		}
	}
	if r, err := tp.Local(1); err != nil || r == nil || !c.exists("/data/t-1") {
		t.Errorf("the follower's replica is not open: %v", err)
	}
	if c.exists("/data/t-2") {
		t.Error("a directory was made for a partition this node does not host")
	}
	for _, k := range []struct {
		topic string
		p     int32
	}{{"t", 3}, {"t", -1}, {"nope", 0}} {
		if _, err := c.m.Leader(k.topic, k.p); !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("%s-%d: %v, want UNKNOWN_TOPIC_OR_PARTITION", k.topic, k.p, err)
		}
	}
}

// Leadership moving to this node makes the open replica the leader (not a
// new one); this node leaving a partition's replicas closes it (and
// deletes it: TestReplicaMovedAwayIsDeleted).
func TestApplyImageFollowsLeaderChangesAndClosesMovedReplicas(t *testing.T) {
	c := newCluster(t)
	id := c.createTopic("t", nil, []int32{1}, []int32{2, 1})
	c.apply()
	c.produce("t", 0, "a", "b")
	follower, _ := c.m.Topic("t").Local(1)

	c.commit(controller.PartitionChangeRecord{TopicID: id, Partition: 1, Leader: 1})
	c.apply()
	if r, err := c.m.Leader("t", 1); err != nil || r != follower {
		t.Fatalf("after leadership moved here: %v (same replica: %v)", err, r == follower)
	}

	c.commit(controller.PartitionChangeRecord{TopicID: id, Partition: 0, Leader: 2, Replicas: []int32{2}, ISR: []int32{2}})
	old, _ := c.m.Topic("t").Local(0)
	if ch := c.apply(); len(ch.Resigned) != 1 || ch.Resigned[0] != (TopicPartition{"t", 0}) {
		t.Fatalf("resigned %+v, want t-0 (the waits on it are answered)", ch.Resigned)
	}
	if _, err := c.m.Leader("t", 0); !errors.Is(err, ErrNotLeaderOrFollower) {
		t.Fatalf("partition 0 moved away: %v", err)
	}
	if err := old.Flush(); err == nil {
		t.Fatal("the moved replica was not closed")
	}
}

// A topic gone from the image has its replicas deleted, followers' too,
// and is reported so waiting requests can be answered. An image older than
// one applied is ignored: it would bring the deleted topic back.
func TestApplyImageDeletesRemovedTopicsAndIgnoresOlderImages(t *testing.T) {
	c := newCluster(t)
	id := c.createTopic("t", nil, []int32{1}, []int32{2, 1})
	c.apply()
	c.produce("t", 0, "a")
	before := c.meta.Image()

	c.commit(controller.RemoveTopicRecord{TopicID: id})
	ch := c.apply()
	if len(ch.Removed) != 1 || ch.Removed[0] != (Removed{Name: "t", Partitions: 2}) {
		t.Fatalf("removed %+v", ch.Removed)
	}
	if c.m.Topic("t") != nil || c.m.TopicByID(id) != nil || c.exists("/data/t-0") || c.exists("/data/t-1") {
		t.Fatal("the removed topic's replicas are still there")
	}
	if ch := c.m.ApplyImage(before); len(ch.Removed)+len(ch.Failed) != 0 || c.m.Topic("t") != nil || c.exists("/data/t-0") {
		t.Fatal("an older image brought the deleted topic back")
	}
}

// A replica moved away from this node by a reassignment is deleted once the
// image no longer lists this node (Kafka's stopPartitions with delete); the
// partition it keeps is untouched, and a later move back starts it afresh.
func TestReplicaMovedAwayIsDeleted(t *testing.T) {
	c := newCluster(t)
	id := c.createTopic("t", nil, []int32{1, 2}, []int32{1, 2})
	c.apply()
	c.produce("t", 0, "a", "b")
	c.commit(controller.PartitionChangeRecord{TopicID: id, Partition: 0, Leader: 2, Replicas: []int32{2}, ISR: []int32{2}})
	c.apply()
	if c.exists("/data/t-0") {
		t.Fatal("the replica moved away still has its directory")
	}
	if !c.exists("/data/t-1") {
		t.Fatal("the partition still hosted here lost its directory")
	}
	if _, err := c.m.Leader("t", 0); err == nil {
		t.Fatal("the moved partition is still led here")
	}
	c.commit(controller.PartitionChangeRecord{TopicID: id, Partition: 0, Leader: 2, Replicas: []int32{2, 1}, ISR: []int32{2}})
	c.apply()
	tp := c.m.Topic("t")
	if p := tp.Partitions[0]; p.Role != Follower || p.Replica == nil || p.Replica.LogEndOffset() != 0 {
		t.Fatalf("moved back: role %v, replica %v; want a follower starting from an empty log", p.Role, p.Replica)
	}
}

// Load opens what the image assigns here and sets aside, never deletes,
// the directories of partitions this node does not host.
func TestLoadSetsAsideDirectoriesOfPartitionsHostedElsewhere(t *testing.T) {
	c := newCluster(t)
	id := c.createTopic("t", nil, []int32{1}, []int32{1})
	c.apply()
	c.produce("t", 1, "a")
	if err := c.m.Close(); err != nil {
		t.Fatal(err)
	}
	c.commit(controller.PartitionChangeRecord{TopicID: id, Partition: 1, Leader: 2, Replicas: []int32{2}, ISR: []int32{2}})

	m := c.newManager()
	if err := m.Load(c.meta.Image()); err != nil {
		t.Fatal(err)
	}
	if c.exists("/data/t-1") {
		t.Fatal("the directory of a partition hosted elsewhere was left in place")
	}
	names, _ := c.fs.ReadDir("/data")
	var kept bool
	for _, n := range names {
		if len(n) > 4 && n[:4] == "t-1." {
			_, err := c.fs.Stat("/data/" + n + "/00000000000000000000.log")
			kept = err == nil
		}
	}
	if !kept {
		t.Fatalf("its data was not kept aside: %v", names)
	}
}

// flush.ms is decided on the manager's clock: a replica whose flush.ms has
// not passed since the flush task first saw it loses its unsynced records
// in a crash; once it has, they survive.
func TestScheduleFlushesByTheManagersClock(t *testing.T) {
	for _, tc := range []struct {
		wait  time.Duration
		kept  int64
		label string
	}{{500 * time.Millisecond, 0, "before flush.ms"}, {1500 * time.Millisecond, 1, "after flush.ms"}} {
		t.Run(tc.label, func(t *testing.T) {
			c := newCluster(t, "log.flush.scheduler.interval.ms=100")
			c.createTopic("t", map[string]string{"flush.ms": "1000"}, []int32{1})
			c.apply()
			c.produce("t", 0, "a")
			if wait := c.m.RunDue(); wait != 100*time.Millisecond {
				t.Fatalf("next task due in %v, want the flush interval", wait)
			}
			c.clock.Advance(100 * time.Millisecond)
			c.m.RunDue() // the flush task first sees the partition
			c.clock.Advance(tc.wait)
			c.m.RunDue()
			c.fs.Crash()
			m := c.newManager()
			if err := m.Load(c.meta.Image()); err != nil {
				t.Fatal(err)
			}
			r, err := m.Leader("t", 0)
			if err != nil {
				t.Fatal(err)
			}
			if end := r.LogEndOffset(); end != tc.kept {
				t.Fatalf("log end after a crash %v: %d, want %d", tc.label, end, tc.kept)
			}
		})
	}
}

func TestParseDirName(t *testing.T) {
	for name, want := range map[string]bool{
		"t-0": true, "my.topic-12": true, "a-b-3": true, "__consumer_offsets-49": true,
		"t-0.0a1b-stray": false, "t-": false, "-1": false, "t-x": false, "t-+1": false, "t!-1": false, "lost+found": false,
		"cluster-metadata.json": false, ".lock": false, "meta.properties": false,
	} {
		if _, _, ok := ParseDirName(name); ok != want {
			t.Errorf("%q: %v", name, ok)
		}
	}
}

// ReadPartitionMetadata tells a missing file (adopt) from an unreadable
// or malformed one (offline), on the FS abstraction.
func TestReadPartitionMetadataOnMemFS(t *testing.T) {
	m := segment.NewMemFS()
	if err := m.MkdirAll("/d/t-0", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPartitionMetadata(m, "/d/t-0"); !errNotExist(err) {
		t.Fatalf("missing: %v", err)
	}
	if err := segment.WriteFileAtomic(m, "/d/t-0/"+PartitionMetadataFile, []byte("version: 0\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPartitionMetadata(m, "/d/t-0"); errNotExist(err) || err == nil {
		t.Fatalf("malformed: %v", err)
	}
	if err := WritePartitionMetadata(m, "/d/t-0", "abc"); err != nil {
		t.Fatal(err)
	}
	m.Crash() // written durably
	if id, err := ReadPartitionMetadata(m, "/d/t-0"); err != nil || id != "abc" {
		t.Fatalf("%q %v", id, err)
	}
}
