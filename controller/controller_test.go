package controller

import (
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/segment"
)

// noLimit is a partition cap no test reaches.
const noLimit = math.MaxInt64

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// cluster returns a State with brokers registered.
func cluster(t *testing.T, brokers ...int32) *State {
	t.Helper()
	s := NewState("test-cluster")
	for _, id := range brokers {
		mustApply(t, s, RegisterBrokerRecord{BrokerID: id, Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "h", Port: 9000 + id}}})
	}
	return s
}

func mustApply(t *testing.T, s *State, rs ...Record) {
	t.Helper()
	for _, r := range rs {
		if err := s.Apply(r); err != nil {
			t.Fatalf("apply %#v: %v", r, err)
		}
	}
}

// create plans and applies a topic, as the Store would.
func create(s *State, name string, partitions int32, rf int16, limit int64) error {
	rs, err := s.PlanCreateTopic(NewTopic{Name: name, ID: NewTopicID(), Partitions: partitions, ReplicationFactor: rf}, limit)
	if err != nil {
		return err
	}
	return applyAll(s, rs)
}

func grow(s *State, name string, count int32, limit int64) error {
	rs, err := s.PlanCreatePartitions(name, count, nil, limit)
	if err != nil {
		return err
	}
	return applyAll(s, rs)
}

func applyAll(s *State, rs []Record) error {
	for _, r := range rs {
		if err := s.Apply(r); err != nil {
			return err
		}
	}
	return nil
}

func TestValidateTopicName(t *testing.T) {
	for _, name := range []string{"a", "orders.v1", "A_b-c.9", strings.Repeat("x", 249)} {
		if err := ValidateTopicName(name); err != nil {
			t.Errorf("%q rejected: %v", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", "has space", "slash/", "ünï", strings.Repeat("x", 250)} {
		if err := ValidateTopicName(name); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("%q: got %v, want ErrInvalidTopic", name, err)
		}
	}
}

func TestPlanTopicLifecycle(t *testing.T) {
	s := cluster(t, 3)
	rs, err := s.PlanCreateTopic(NewTopic{Name: "t", ID: NewTopicID(), Partitions: 2, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "1000"}}, noLimit)
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, rs...)
	tp := s.Topics["t"]
	if tp.ID.IsZero() || len(tp.Partitions) != 2 || tp.Partitions[1].Leader != 3 || tp.Partitions[1].ISR[0] != 3 || tp.Configs["retention.ms"] != "1000" {
		t.Fatalf("bad topic %+v", tp)
	}
	if err := create(s, "t", 1, 1, noLimit); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if err := create(s, "u", 0, 1, noLimit); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("zero partitions: %v", err)
	}
	if err := create(s, "u", 1, 3, noLimit); !errors.Is(err, ErrInvalidReplication) {
		t.Fatalf("rf 3 on one broker: %v", err)
	}
	if err := grow(s, "t", 2, noLimit); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("shrink/same: %v", err)
	}
	if err := grow(s, "t", 5, noLimit); err != nil || len(s.Topics["t"].Partitions) != 5 || s.Topics["t"].Partitions[4].Index != 4 {
		t.Fatalf("grow: %v %+v", err, s.Topics["t"])
	}
	rs, err = s.PlanTopicConfigs("t", map[string]string{"segment.bytes": "1024"})
	if err != nil || len(rs) != 2 {
		t.Fatalf("config change: %v, %d records (want one removal, one set)", err, len(rs))
	}
	mustApply(t, s, rs...)
	if c := s.Topics["t"].Configs; len(c) != 1 || c["segment.bytes"] != "1024" {
		t.Fatalf("configs %v", c)
	}
	rs, err = s.PlanDeleteTopic("t")
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, rs...)
	if _, err := s.PlanDeleteTopic("t"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("second delete: %v", err)
	}
}

// TestApply is the table of what State.Apply accepts and refuses: a
// refused record must leave the State exactly as it was.
func TestApply(t *testing.T) {
	id, other := TopicID{1}, TopicID{2}
	base := func(t *testing.T) *State {
		s := cluster(t, 1, 2, 3)
		mustApply(t, s, TopicRecord{Name: "t", ID: id},
			PartitionRecord{TopicID: id, Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1})
		return s
	}
	part := func(s *State) Partition { return s.Topics["t"].Partitions[0] }
	str := func(v string) *string { return &v }
	cases := []struct {
		name  string
		r     Record
		ok    bool
		check func(*testing.T, *State)
	}{
		{"topic", TopicRecord{Name: "u", ID: other}, true, func(t *testing.T, s *State) {
			if tp, ok := s.byID[other]; !ok || tp.Name != "u" || s.Topics["u"] != tp {
				t.Fatal("topic not indexed by name and id")
			}
		}},
		{"topic name taken", TopicRecord{Name: "t", ID: other}, false, nil},
		{"topic id taken", TopicRecord{Name: "u", ID: id}, false, nil},
		{"topic zero id", TopicRecord{Name: "u"}, false, nil},
		{"topic bad name", TopicRecord{Name: "a b", ID: other}, false, nil},
		{"partition next", PartitionRecord{TopicID: id, Partition: 1, Replicas: []int32{3}, ISR: []int32{3}, Leader: 3}, true, func(t *testing.T, s *State) {
			if p := s.Topics["t"].Partitions[1]; p.Leader != 3 || p.Index != 1 {
				t.Fatalf("%+v", p)
			}
		}},
		{"partition gap", PartitionRecord{TopicID: id, Partition: 2, Replicas: []int32{3}, ISR: []int32{3}, Leader: 3}, false, nil},
		{"partition unknown topic", PartitionRecord{TopicID: other, Partition: 0, Replicas: []int32{3}, ISR: []int32{3}, Leader: 3}, false, nil},
		{"partition leader outside ISR", PartitionRecord{TopicID: id, Partition: 1, Replicas: []int32{1, 3}, ISR: []int32{3}, Leader: 1}, false, nil},
		{"partition ISR outside replicas", PartitionRecord{TopicID: id, Partition: 1, Replicas: []int32{3}, ISR: []int32{2, 3}, Leader: 3}, false, nil},
		{"partition duplicate replica", PartitionRecord{TopicID: id, Partition: 1, Replicas: []int32{3, 3}, ISR: []int32{3}, Leader: 3}, false, nil},
		{"partition no replicas", PartitionRecord{TopicID: id, Partition: 1, Leader: NoLeader}, false, nil},
		{"change ISR keeps leader epoch", PartitionChangeRecord{TopicID: id, Partition: 0, Leader: NoLeaderChange, ISR: []int32{1}}, true, func(t *testing.T, s *State) {
			if p := part(s); p.LeaderEpoch != 0 || p.PartitionEpoch != 1 || len(p.ISR) != 1 || p.Leader != 1 {
				t.Fatalf("%+v", p)
			}
		}},
		{"change leader bumps both epochs", PartitionChangeRecord{TopicID: id, Partition: 0, Leader: 2}, true, func(t *testing.T, s *State) {
			if p := part(s); p.Leader != 2 || p.LeaderEpoch != 1 || p.PartitionEpoch != 1 {
				t.Fatalf("%+v", p)
			}
		}},
		{"same leader is a new leadership", PartitionChangeRecord{TopicID: id, Partition: 0, Leader: 1}, true, func(t *testing.T, s *State) {
			if p := part(s); p.Leader != 1 || p.LeaderEpoch != 1 || p.PartitionEpoch != 1 {
				t.Fatalf("%+v", p)
			}
		}},
		{"no leader", PartitionChangeRecord{TopicID: id, Partition: 0, Leader: NoLeader}, true, func(t *testing.T, s *State) {
			if p := part(s); p.Leader != NoLeader || p.LeaderEpoch != 1 {
				t.Fatalf("%+v", p)
			}
		}},
		{"change leader outside ISR", PartitionChangeRecord{TopicID: id, Partition: 0, Leader: 3}, false, nil},
		{"shrink ISR past leader", PartitionChangeRecord{TopicID: id, Partition: 0, Leader: NoLeaderChange, ISR: []int32{2}}, false, nil},
		{"change missing partition", PartitionChangeRecord{TopicID: id, Partition: 1, Leader: NoLeaderChange}, false, nil},
		{"remove topic", RemoveTopicRecord{TopicID: id}, true, func(t *testing.T, s *State) {
			if _, ok := s.Topics["t"]; ok || len(s.byID) != 0 {
				t.Fatal("topic still there")
			}
		}},
		{"remove unknown topic", RemoveTopicRecord{TopicID: other}, false, nil},
		{"remove partitions to zero", RemovePartitionsRecord{TopicID: id, Count: 0}, false, nil},
		{"remove partitions to more", RemovePartitionsRecord{TopicID: id, Count: 2}, false, nil},
		{"set config", ConfigRecord{ResourceType: ConfigResourceTopic, ResourceName: "t", Name: "retention.ms", Value: str("5")}, true, func(t *testing.T, s *State) {
			if s.Topics["t"].Configs["retention.ms"] != "5" {
				t.Fatal("not set")
			}
		}},
		{"remove unset config", ConfigRecord{ResourceType: ConfigResourceTopic, ResourceName: "t", Name: "retention.ms"}, true, func(t *testing.T, s *State) {
			if s.Topics["t"].Configs != nil {
				t.Fatal("configs not empty")
			}
		}},
		{"config of unknown topic", ConfigRecord{ResourceType: ConfigResourceTopic, ResourceName: "u", Name: "x", Value: str("1")}, false, nil},
		{"config of a resource that names no broker", ConfigRecord{ResourceType: 4, ResourceName: "one", Name: "x", Value: str("1")}, false, nil},
		{"producer ids forward", ProducerIDsRecord{NextProducerID: 1000}, true, func(t *testing.T, s *State) {
			if s.NextProducerID != 1000 {
				t.Fatal(s.NextProducerID)
			}
		}},
		{"broker re-registers", RegisterBrokerRecord{BrokerID: 2, BrokerEpoch: 7, Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "new", Port: 1}}}, true, func(t *testing.T, s *State) {
			if b := s.Brokers[2]; b.Epoch != 7 || b.Endpoints[0].Host != "new" || len(s.Brokers) != 3 {
				t.Fatalf("%+v", b)
			}
		}},
		{"negative broker id", RegisterBrokerRecord{BrokerID: -1}, false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base(t)
			before := encodeState(t, s)
			err := s.Apply(c.r)
			if c.ok != (err == nil) {
				t.Fatalf("ok=%v, err=%v", c.ok, err)
			}
			if !c.ok {
				if !errors.Is(err, ErrInvalidRecord) {
					t.Fatalf("error %v does not wrap ErrInvalidRecord", err)
				}
				if after := encodeState(t, s); after != before {
					t.Fatalf("a refused record changed the state:\n%s\n%s", before, after)
				}
				return
			}
			c.check(t, s)
		})
	}
	t.Run("producer ids never go back", func(t *testing.T) {
		s := base(t)
		mustApply(t, s, ProducerIDsRecord{NextProducerID: 10})
		if err := s.Apply(ProducerIDsRecord{NextProducerID: 9}); err == nil {
			t.Fatal("accepted")
		}
	})
}

// TestHugePartitionCountsAreRefusedBeforeAllocating: a request for 2^31-1
// partitions used to allocate them all and kill the process with out of
// memory; now it is an error and allocates next to nothing.
func TestHugePartitionCountsAreRefusedBeforeAllocating(t *testing.T) {
	s := cluster(t, 1)
	if err := create(s, "small", 2, 1, 10); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	errCreate := create(s, "boom", math.MaxInt32, 1, 10)
	errGrow := grow(s, "small", math.MaxInt32, 10)
	runtime.ReadMemStats(&after)
	if !errors.Is(errCreate, ErrPartitionLimit) || !errors.Is(errGrow, ErrPartitionLimit) {
		t.Fatalf("create: %v; grow: %v; want ErrPartitionLimit", errCreate, errGrow)
	}
	if !strings.Contains(errCreate.Error(), "limit is 10") {
		t.Errorf("error does not name the limit: %v", errCreate)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("refusing allocated %d bytes", grew)
	}
	if _, ok := s.Topics["boom"]; ok || len(s.Topics["small"].Partitions) != 2 {
		t.Fatal("a refused change altered the state")
	}
}

func TestPartitionBudgetCountsEveryTopic(t *testing.T) {
	s := cluster(t, 1)
	if err := create(s, "a", 6, 1, 10); err != nil {
		t.Fatal(err)
	}
	if err := create(s, "b", 5, 1, 10); !errors.Is(err, ErrPartitionLimit) {
		t.Fatalf("6+5 partitions under a cap of 10: %v", err)
	}
	if err := create(s, "b", 4, 1, 10); err != nil {
		t.Fatalf("6+4 partitions under a cap of 10: %v", err)
	}
	if err := grow(s, "a", 7, 10); !errors.Is(err, ErrPartitionLimit) {
		t.Fatalf("growing past the cap: %v", err)
	}
	if got := s.PartitionCount(); got != 10 {
		t.Fatalf("PartitionCount = %d, want 10", got)
	}
	// A cap already exceeded (lowered after the fact) refuses growth but
	// breaks nothing.
	if err := s.CheckPartitionBudget(1, 3); !errors.Is(err, ErrPartitionLimit) {
		t.Fatalf("budget under a lowered cap: %v", err)
	}
	if err := s.CheckPartitionBudget(math.MaxInt32, math.MaxInt64); err != nil {
		t.Fatalf("no overflow near the int64 limit: %v", err)
	}
}

func TestUndoPlans(t *testing.T) {
	s := cluster(t, 1)
	if err := create(s, "t", 2, 1, noLimit); err != nil {
		t.Fatal(err)
	}
	id := s.Topics["t"].ID
	if err := grow(s, "t", 5, noLimit); err != nil {
		t.Fatal(err)
	}
	if rs := s.PlanUndoCreatePartitions("t", id, 2, 4); rs != nil {
		t.Fatalf("undo of a grow to 4 when the topic has 5: %v", rs)
	}
	mustApply(t, s, s.PlanUndoCreatePartitions("t", id, 2, 5)...)
	if n := len(s.Topics["t"].Partitions); n != 2 {
		t.Fatalf("%d partitions after the undo", n)
	}
	// Growing again must not see the dropped partitions through the
	// slice's spare capacity.
	if err := grow(s, "t", 3, noLimit); err != nil || s.Topics["t"].Partitions[2].Index != 2 {
		t.Fatalf("regrow: %v %+v", err, s.Topics["t"].Partitions)
	}
	if rs := s.PlanUndoCreateTopic("t", TopicID{9}); rs != nil {
		t.Fatalf("undo of another topic's create: %v", rs)
	}
	mustApply(t, s, s.PlanUndoCreateTopic("t", id)...)
	if _, ok := s.Topics["t"]; ok {
		t.Fatal("undone topic still there")
	}
}

func TestPlanBrokerStartBumpsItsLeaderEpochs(t *testing.T) {
	s := cluster(t, 1, 2)
	if err := create(s, "t", 4, 1, noLimit); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		rs := s.PlanBrokerStart(Broker{ID: 1, Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "h", Port: 1}}})
		mustApply(t, s, rs...)
	}
	for _, p := range s.Topics["t"].Partitions {
		want := int32(0)
		if p.Leader == 1 {
			want = 2
		}
		if p.LeaderEpoch != want {
			t.Fatalf("partition %d led by %d: epoch %d, want %d", p.Index, p.Leader, p.LeaderEpoch, want)
		}
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	v := "x"
	for _, r := range []Record{
		RegisterBrokerRecord{BrokerID: 1, BrokerEpoch: 3, Endpoints: []Endpoint{{"PLAINTEXT", "h", 9}}},
		TopicRecord{Name: "t", ID: TopicID{1}},
		PartitionRecord{TopicID: TopicID{1}, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 2, PartitionEpoch: 3},
		PartitionChangeRecord{TopicID: TopicID{1}, Leader: NoLeaderChange, ISR: []int32{1}},
		RemoveTopicRecord{TopicID: TopicID{1}},
		RemovePartitionsRecord{TopicID: TopicID{1}, Count: 1},
		ConfigRecord{ResourceType: ConfigResourceTopic, ResourceName: "t", Name: "a", Value: &v},
		ProducerIDsRecord{NextProducerID: 5},
	} {
		roundTrip(t, r)
	}
	if _, err := DecodeRecord([]byte(`{"type":"nope","data":{}}`)); err == nil {
		t.Fatal("unknown type decoded")
	}
}

// roundTrip encodes and decodes r, fails unless it encodes the same
// again, and returns the encoding and the decoded record.
func roundTrip(t *testing.T, r Record) ([]byte, Record) {
	t.Helper()
	b, err := EncodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if gb, _ := EncodeRecord(got); string(gb) != string(b) {
		t.Fatalf("%T: %s came back as %s", r, b, gb)
	}
	return b, got
}

func TestStoreRejectsCorruptMetadata(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, metadataFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(segment.OSFS(), dir, 0, quiet()); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("got %v", err)
	}
}
