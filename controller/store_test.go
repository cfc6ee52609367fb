package controller

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/segment"
)

func encodeState(t *testing.T, s *State) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var self = Broker{ID: 1, Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "localhost", Port: 9092}}}

func createTopic(name string, partitions int32, configs map[string]string) Plan {
	return func(s *State) ([]Record, error) {
		return s.PlanCreateTopic(NewTopic{Name: name, ID: NewTopicID(), Partitions: partitions, ReplicationFactor: 1, Configs: configs}, noLimit)
	}
}

func mustCommit(t *testing.T, s *Store, plan Plan) *Image {
	t.Helper()
	img, err := s.Commit(plan)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestStorePersistsAndFailedChangeIsInvisible(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(segment.OSFS(), dir, 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	img := mustCommit(t, s, createTopic("a", 3, nil))
	created, _ := img.Topic("a")
	_, err = s.Commit(func(st *State) ([]Record, error) {
		rs, _ := st.PlanCreateTopic(NewTopic{Name: "b", ID: NewTopicID(), Partitions: 1, ReplicationFactor: 1}, noLimit)
		// A record that cannot apply: the whole batch must vanish.
		return append(rs, TopicRecord{Name: "a", ID: NewTopicID()}), nil
	})
	if !errors.Is(err, ErrTopicExists) || !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("got %v", err)
	}
	if _, ok := s.Image().Topic("b"); ok {
		t.Fatal("a failed change leaked topic b")
	}
	pid1, _ := s.NextProducerID()
	pid2, _ := s.NextProducerID()
	if pid2 != pid1+1 {
		t.Fatalf("producer ids %d %d", pid1, pid2)
	}

	s2, err := Open(segment.OSFS(), dir, 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	got, ok := s2.Image().Topic("a")
	if !ok || got.ID != created.ID || len(got.Partitions) != 3 {
		t.Fatalf("reloaded %+v", got)
	}
	if _, ok := s2.Image().Topic("b"); ok {
		t.Fatal("the failed change came back after a restart")
	}
	if s2.ClusterID() != s.ClusterID() {
		t.Fatal("cluster id changed across restart")
	}
	pid3, _ := s2.NextProducerID()
	if pid3 <= pid2 {
		t.Fatalf("producer id %d reused after restart (had handed out %d)", pid3, pid2)
	}
	if _, err := Open(segment.OSFS(), dir, 2, quiet()); err == nil {
		t.Fatal("opening metadata of node 1 as node 2 must fail")
	}
}

// TestStoreReplaysRecords: a sequence of committed batches, replayed from
// the log after a crash (no compaction ran), gives the same image.
func TestStoreReplaysRecords(t *testing.T) {
	fsys := segment.NewMemFS()
	s, err := Create(fsys, "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	mustCommit(t, s, createTopic("a", 2, map[string]string{"retention.ms": "10"}))
	mustCommit(t, s, createTopic("b", 1, nil))
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanCreatePartitions("a", 4, nil, noLimit) })
	mustCommit(t, s, func(st *State) ([]Record, error) {
		return st.PlanTopicConfigs("a", map[string]string{"segment.bytes": "100"})
	})
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanDeleteTopic("b") })
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	if _, err := s.NextProducerID(); err != nil {
		t.Fatal(err)
	}
	want := s.Image()
	if b, _ := segment.ReadFile(fsys, "/d/"+MetadataLogFile); strings.Count(string(b), "\n") != 8 {
		t.Fatalf("log holds %d batches, want 8", strings.Count(string(b), "\n"))
	}
	fsys.Crash()
	s2, err := Load(fsys, "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	got := s2.Image()
	if encodeState(t, got.st) != encodeState(t, want.st) || got.Offset() != want.Offset() {
		t.Fatalf("replayed image differs:\n%s @%d\n%s @%d", encodeState(t, got.st), got.Offset(), encodeState(t, want.st), want.Offset())
	}
	a, _ := got.Topic("a")
	if p := a.Partitions[0]; p.LeaderEpoch != 1 || p.PartitionEpoch != 1 {
		t.Fatalf("partition 0 after one restart of its leader: %+v", p)
	}
	// Load compacted: a second load reads it all from the snapshot.
	if b, _ := segment.ReadFile(fsys, "/d/"+MetadataLogFile); len(b) != 0 {
		t.Fatalf("log not emptied after load: %q", b)
	}
	s3, err := Load(fsys, "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if encodeState(t, s3.Image().st) != encodeState(t, want.st) || s3.Image().Offset() != want.Offset() {
		t.Fatal("image differs after loading the compacted snapshot")
	}
}

// TestBrokerEpochIsItsRecordOffset: the KRaft rule, so that a restarted
// broker is told apart from its previous run.
func TestBrokerEpochIsItsRecordOffset(t *testing.T) {
	s, err := Create(segment.NewMemFS(), "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, createTopicOnNoBroker)
	before := s.Image().Offset()
	img := mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	if b, ok := img.Broker(1); !ok || b.Epoch != before {
		t.Fatalf("broker %+v, want epoch %d", b, before)
	}
}

// createTopicOnNoBroker commits a producer-id block, a change that needs no
// broker, to move the log offset.
func createTopicOnNoBroker(*State) ([]Record, error) {
	return []Record{ProducerIDsRecord{NextProducerID: 1000}}, nil
}

func TestStoreDropsATornLastBatch(t *testing.T) {
	fsys := segment.NewMemFS()
	s, err := Create(fsys, "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	mustCommit(t, s, createTopic("kept", 1, nil))
	f, err := fsys.OpenFile("/d/"+MetadataLogFile, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	// What a crash in the middle of the next append leaves.
	if _, err := f.Write([]byte(`0badc0de {"offset":3,"records":[{"type":"topic","da`)); err != nil {
		t.Fatal(err)
	}
	f.Sync()
	f.Close()
	var logs bytes.Buffer
	s2, err := Load(fsys, "/d", 1, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("a torn last batch must not stop the start: %v", err)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "torn last batch") {
		t.Errorf("dropping the torn batch was not logged at WARN:\n%s", out)
	}
	if _, ok := s2.Image().Topic("kept"); !ok {
		t.Fatal("lost a committed topic")
	}
	// The next commit is at the offset the torn batch had.
	img := mustCommit(t, s2, createTopic("next", 1, nil))
	if _, ok := img.Topic("next"); !ok {
		t.Fatal("commit after a torn batch failed")
	}
}

func TestStoreRefusesADamagedBatchInTheMiddle(t *testing.T) {
	fsys := segment.NewMemFS()
	s, err := Create(fsys, "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	mustCommit(t, s, createTopic("a", 1, nil))
	path := "/d/" + MetadataLogFile
	b, _ := segment.ReadFile(fsys, path)
	b[12] ^= 1 // inside the first batch's JSON
	if err := segment.WriteFileAtomic(fsys, path, b); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(fsys, "/d", 1, quiet()); err == nil || !strings.Contains(err.Error(), "corrupt at line 1") {
		t.Fatalf("got %v", err)
	}
}

// TestStoreRecoversFromAFailedAppend: an append that fails part way leaves
// bytes the store must never append after; the next commit writes a
// snapshot instead, and a restart sees every committed change.
func TestStoreRecoversFromAFailedAppend(t *testing.T) {
	mem := segment.NewMemFS()
	efs := segment.NewErrorFS(mem)
	s, err := Create(efs, "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	efs.Inject(segment.Fault{Ops: segment.OpWrite, Path: segment.PathSuffix(MetadataLogFile), Written: 20})
	if _, err := s.Commit(createTopic("lost", 1, nil)); err == nil {
		t.Fatal("the failed append was not reported")
	}
	if _, ok := s.Image().Topic("lost"); ok {
		t.Fatal("a change that failed to persist is visible")
	}
	mustCommit(t, s, createTopic("kept", 1, nil))
	mustCommit(t, s, createTopic("kept2", 1, nil))
	mem.Crash()
	s2, err := Load(mem, "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	img := s2.Image()
	_, lost := img.Topic("lost")
	_, kept := img.Topic("kept")
	_, kept2 := img.Topic("kept2")
	if lost || !kept || !kept2 {
		t.Fatalf("after restart: lost=%v kept=%v kept2=%v", lost, kept, kept2)
	}
}

// TestStoreReadsTheFirstFormat loads a cluster-metadata.json written by the
// store before records existed (testdata/v0, made by that code): every
// topic, partition, epoch and config must come back, and the next start
// reads what this one wrote.
func TestStoreReadsTheFirstFormat(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("testdata", "v0", MetadataFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, MetadataFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store) {
		t.Helper()
		img := s.Image()
		if img.ClusterID() != "WwmZDWAXI7EXjxcTDa4wCQ" || img.st.NextProducerID != 1000 {
			t.Fatalf("cluster %q, next producer id %d", img.ClusterID(), img.st.NextProducerID)
		}
		orders, ok := img.Topic("orders")
		if !ok || len(orders.Partitions) != 4 || orders.Configs["retention.ms"] != "3600000" {
			t.Fatalf("orders: %+v", orders)
		}
		if byID, ok := img.TopicByID(orders.ID); !ok || byID != orders {
			t.Fatal("topic not found by id")
		}
		for _, p := range orders.Partitions {
			if p.Leader != 1 || p.LeaderEpoch != 2 || len(p.Replicas) != 1 || p.ISR[0] != 1 {
				t.Fatalf("orders partition %+v", p)
			}
		}
		if off, ok := img.Topic("__consumer_offsets"); !ok || len(off.Partitions) != 2 || off.Configs["cleanup.policy"] != "compact" {
			t.Fatalf("__consumer_offsets: %+v", off)
		}
	}
	if _, err := Load(segment.OSFS(), dir, 2, quiet()); err == nil {
		t.Fatal("node 1's metadata loaded as node 2")
	}
	s, err := Load(segment.OSFS(), dir, 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	check(s)
	if n := len(s.Image().Brokers()); n != 0 {
		t.Fatalf("the first format had no brokers, got %d", n)
	}
	// The broker registers itself, as every start: epochs go up by one.
	img := mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	if p, _ := img.Partition("orders", 3); p.LeaderEpoch != 3 {
		t.Fatalf("epoch after the start %d, want 3", p.LeaderEpoch)
	}
	s2, err := Load(segment.OSFS(), dir, 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if encodeState(t, s2.Image().st) != encodeState(t, img.st) {
		t.Fatal("the second start reads something else")
	}
}

// TestImageNeverChanges: an image a reader holds stays as it was while
// changes are committed.
func TestImageNeverChanges(t *testing.T) {
	s, err := Create(segment.NewMemFS(), "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	old := mustCommit(t, s, createTopic("a", 1, map[string]string{"x": "1"}))
	before := encodeState(t, old.st)
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanCreatePartitions("a", 3, nil, noLimit) })
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanTopicConfigs("a", map[string]string{"x": "2"}) })
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanDeleteTopic("a") })
	if encodeState(t, old.st) != before {
		t.Fatal("a published image changed")
	}
	if s.Image().Offset() <= old.Offset() || old.ControllerID() != 1 {
		t.Fatalf("offsets %d then %d, controller %d", old.Offset(), s.Image().Offset(), old.ControllerID())
	}
	if bs := old.Brokers(); len(bs) != 1 || bs[0].ID != 1 {
		t.Fatalf("brokers %+v", bs)
	}
	if e, ok := old.Brokers()[0].Endpoint("OTHER"); !ok || e.Port != 9092 {
		t.Fatalf("endpoint fallback %+v", e)
	}
}

// TestStoreFoldsItsLog: the log is folded into the snapshot after
// compactAfterBatches batches and by Close, so it stays short and a clean
// shutdown leaves the whole metadata in cluster-metadata.json.
func TestStoreFoldsItsLog(t *testing.T) {
	fsys := segment.NewMemFS()
	s, err := Create(fsys, "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	logLines := func() int {
		b, _ := segment.ReadFile(fsys, "/d/"+MetadataLogFile)
		return strings.Count(string(b), "\n")
	}
	for i := range compactAfterBatches + 3 {
		mustCommit(t, s, func(*State) ([]Record, error) {
			return []Record{ProducerIDsRecord{NextProducerID: int64(i + 1)}}, nil
		})
	}
	if n := logLines(); n != 3 {
		t.Fatalf("%d batches in the log after %d commits, want 3", n, compactAfterBatches+3)
	}
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := logLines(); n != 0 {
		t.Fatalf("%d batches in the log after Close", n)
	}
	b, _ := segment.ReadFile(fsys, "/d/"+MetadataFile)
	var snap snapshotFile
	if err := json.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.NextProducerID != compactAfterBatches+3 || len(snap.Brokers) != 1 || snap.Offset != s.Image().Offset() {
		t.Fatalf("snapshot after Close: next pid %d, %d brokers, offset %d (image at %d)", snap.NextProducerID, len(snap.Brokers), snap.Offset, s.Image().Offset())
	}
}

// A change copies only the topics it touches: the others stay the same
// *Topic from Image to Image (what lets a broker skip them), and the
// Image before the change still shows the changed topic as it was.
func TestCommitCopiesOnlyTheTopicsItChanges(t *testing.T) {
	s, err := Create(segment.NewMemFS(), "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	mustCommit(t, s, createTopic("a", 2, nil))
	before := mustCommit(t, s, createTopic("b", 2, nil))
	a0, _ := before.Topic("a")
	b0, _ := before.Topic("b")
	after := mustCommit(t, s, func(st *State) ([]Record, error) {
		return []Record{ConfigRecord{ResourceType: ConfigResourceTopic, ResourceName: "a", Name: "retention.ms", Value: ptr("1000")},
			PartitionChangeRecord{TopicID: a0.ID, Partition: 1, Leader: NoLeaderChange, ISR: []int32{1}}}, nil
	})
	a1, _ := after.Topic("a")
	b1, _ := after.Topic("b")
	if b1 != b0 {
		t.Error("a topic the change did not touch was copied")
	}
	if a1 == a0 {
		t.Fatal("the changed topic was changed in place")
	}
	if a0.Configs != nil || a0.Partitions[1].PartitionEpoch != a1.Partitions[1].PartitionEpoch-1 {
		t.Errorf("the Image before the change shows it: configs %v, partition epoch %d (after: %d)",
			a0.Configs, a0.Partitions[1].PartitionEpoch, a1.Partitions[1].PartitionEpoch)
	}
	if a1.Configs["retention.ms"] != "1000" {
		t.Errorf("configs after the change: %v", a1.Configs)
	}
}

func ptr[T any](v T) *T { return &v }
