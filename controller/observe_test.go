package controller

import (
	"errors"
	"testing"

	"github.com/sluice-io/sluice/segment"
)

// An observer that starts from a snapshot and applies the controller's
// batches holds the same metadata, offset for offset, as the controller;
// broker epochs (the offsets of registrations) come out the same.
func TestObserverFollowsTheStore(t *testing.T) {
	s, err := Create(segment.NewMemFS(), "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	snap, at, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewObserver(snap, 1)
	if err != nil {
		t.Fatal(err)
	}
	if o.Next() != at || o.ClusterID() != s.ClusterID() {
		t.Fatalf("observer from a snapshot at %d: next %d, cluster %s (store's %s)", at, o.Next(), o.ClusterID(), s.ClusterID())
	}
	mustCommit(t, s, createTopic("a", 2, nil))
	mustCommit(t, s, func(st *State) ([]Record, error) {
		two := Broker{ID: 2, Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "localhost", Port: 9093}}}
		return st.PlanBrokerStart(two), nil
	})
	mustCommit(t, s, createTopic("b", 1, map[string]string{"retention.ms": "1000"}))

	// Small reads still return whole batches, one at least.
	for o.Next() < s.End() {
		batches, err := s.BatchesFrom(o.Next(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(batches) != 1 {
			t.Fatalf("BatchesFrom(%d, 1 byte) returned %d batches, want 1", o.Next(), len(batches))
		}
		if err := o.Apply(batches[0]); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := encodeState(t, o.Image().st), encodeState(t, s.Image().st); got != want {
		t.Fatalf("observer's state\n%s\ncontroller's\n%s", got, want)
	}
	if b, ok := o.Image().Broker(2); !ok || b.Epoch == 0 {
		t.Fatalf("broker 2 on the observer: %+v, %v", b, ok)
	}
	if batches, err := s.BatchesFrom(s.End(), 1<<20); err != nil || len(batches) != 0 {
		t.Fatalf("BatchesFrom(end) = %d batches, %v; want none", len(batches), err)
	}
	// A batch out of order is refused, and changes nothing.
	before := o.Image()
	if err := o.Apply(Batch{Offset: o.Next() + 1, Records: []Record{ProducerIDsRecord{NextProducerID: 5}}}); err == nil {
		t.Fatal("observer applied a batch past a gap")
	}
	if o.Image() != before {
		t.Fatal("a refused batch published a new image")
	}
}

// A follower behind the log's start (folded into the snapshot), ahead of
// its end, or inside a batch is told to fetch a snapshot, and Reset from
// one catches it up.
func TestObserverBehindTheLogNeedsASnapshot(t *testing.T) {
	s, err := Create(segment.NewMemFS(), "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	mustCommit(t, s, createTopic("three", 3, nil)) // TopicRecord + 3 PartitionRecords
	snap, _, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	inside := s.End() - 2
	if _, err := s.BatchesFrom(inside, 1<<20); !errors.Is(err, ErrSnapshotNeeded) {
		t.Fatalf("BatchesFrom inside a batch: %v, want ErrSnapshotNeeded", err)
	}
	if _, err := s.BatchesFrom(s.End()+1, 1<<20); !errors.Is(err, ErrSnapshotNeeded) {
		t.Fatalf("BatchesFrom past the end: %v, want ErrSnapshotNeeded", err)
	}
	if err := s.Close(); err != nil { // folds the log into the snapshot
		t.Fatal(err)
	}
	if _, err := s.BatchesFrom(0, 1<<20); !errors.Is(err, ErrSnapshotNeeded) {
		t.Fatalf("BatchesFrom(0) after the log was folded: %v, want ErrSnapshotNeeded", err)
	}
	o, err := NewObserver(snap, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := o.Image().Topic("three"); !ok {
		t.Fatal("observer from a snapshot lacks its topic")
	}
	other, err := Create(segment.NewMemFS(), "/o", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	foreign, _, err := other.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Reset(foreign); err == nil {
		t.Fatal("observer took a snapshot of another cluster")
	}
}

// Batches survive the trip through Kafka record batches with their offsets
// and records; a partial batch at the end of a size-limited read is left
// for the next fetch, a damaged one is refused.
func TestMetadataBatchesRoundTrip(t *testing.T) {
	in := []Batch{
		{Offset: 7, Records: []Record{RegisterBrokerRecord{BrokerID: 2, Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "h", Port: 1}}}}},
		{Offset: 8, Records: []Record{TopicRecord{Name: "t", ID: TopicID{1}}, ProducerIDsRecord{NextProducerID: 1000}}},
	}
	data, err := EncodeBatches(in, 1)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeBatches(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Offset != 7 || out[1].Offset != 8 || len(out[1].Records) != 2 {
		t.Fatalf("decoded %+v", out)
	}
	if tr, ok := out[1].Records[0].(TopicRecord); !ok || tr.Name != "t" || tr.ID != (TopicID{1}) {
		t.Fatalf("record 8 decoded as %#v", out[1].Records[0])
	}
	if out, err := DecodeBatches(data[:len(data)-3]); err != nil || len(out) != 1 {
		t.Fatalf("a partial last batch: %d batches, %v; want the first only", len(out), err)
	}
	bad := append([]byte(nil), data...)
	bad[len(bad)-2] ^= 0xff
	if _, err := DecodeBatches(bad); err == nil {
		t.Fatal("a damaged batch decoded")
	}
}

// Blocks of producer ids handed to other brokers and this node's own ids
// never overlap, also after a restart.
func TestProducerIDBlocksNeverOverlap(t *testing.T) {
	fsys := segment.NewMemFS()
	s, err := Create(fsys, "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]string{}
	take := func(id int64, who string) {
		t.Helper()
		if prev, dup := seen[id]; dup {
			t.Fatalf("producer id %d given to %s and to %s", id, prev, who)
		}
		seen[id] = who
	}
	for round := range 3 {
		for range producerIDBlock + 5 {
			id, err := s.NextProducerID()
			if err != nil {
				t.Fatal(err)
			}
			take(id, "the controller")
		}
		start, err := s.AllocateProducerIDs(1000)
		if err != nil {
			t.Fatal(err)
		}
		for id := start; id < start+1000; id++ {
			take(id, "a broker's block")
		}
		if round == 1 {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err = Load(fsys, "/d", 1, quiet()); err != nil {
				t.Fatal(err)
			}
		}
	}
}
