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

func TestStateTopicLifecycle(t *testing.T) {
	s := NewState(3)
	tp, err := s.CreateTopic("t", 2, 1, map[string]string{"retention.ms": "1000"}, noLimit)
	if err != nil {
		t.Fatal(err)
	}
	if tp.ID.IsZero() || len(tp.Partitions) != 2 || tp.Partitions[1].Leader != 3 || tp.Partitions[1].ISR[0] != 3 {
		t.Fatalf("bad topic %+v", tp)
	}
	if _, err := s.CreateTopic("t", 1, 1, nil, noLimit); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := s.CreateTopic("u", 0, 1, nil, noLimit); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("zero partitions: %v", err)
	}
	if _, err := s.CreateTopic("u", 1, 3, nil, noLimit); !errors.Is(err, ErrInvalidReplication) {
		t.Fatalf("rf 3 on one node: %v", err)
	}
	if _, err := s.CreatePartitions("t", 2, noLimit); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("shrink/same: %v", err)
	}
	tp, err = s.CreatePartitions("t", 5, noLimit)
	if err != nil || len(tp.Partitions) != 5 || tp.Partitions[4].Index != 4 {
		t.Fatalf("grow: %v %+v", err, tp)
	}
	if _, err := s.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteTopic("t"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestStorePersistsAndFailedChangeIsInvisible(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(segment.OSFS(), dir, 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	created, err := s.Apply(func(st *State) (*Topic, error) { return st.CreateTopic("a", 3, 1, nil, noLimit) })
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Apply(func(st *State) (*Topic, error) {
		if _, err := st.CreateTopic("b", 1, 1, nil, noLimit); err != nil {
			return nil, err
		}
		return st.CreateTopic("a", 1, 1, nil, noLimit) // fails: the whole change must vanish
	})
	if !errors.Is(err, ErrTopicExists) {
		t.Fatalf("got %v", err)
	}
	if _, ok := s.Topic("b"); ok {
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
	got, ok := s2.Topic("a")
	if !ok || got.ID != created.ID || len(got.Partitions) != 3 {
		t.Fatalf("reloaded %+v", got)
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

func TestStoreRejectsCorruptMetadata(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, metadataFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(segment.OSFS(), dir, 0, quiet()); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("got %v", err)
	}
}

func TestBumpLeaderEpochs(t *testing.T) {
	s := NewState(1)
	if _, err := s.CreateTopic("t", 2, 1, nil, noLimit); err != nil {
		t.Fatal(err)
	}
	s.BumpLeaderEpochs()
	s.BumpLeaderEpochs()
	for _, p := range s.Topics["t"].Partitions {
		if p.LeaderEpoch != 2 {
			t.Fatalf("partition %d epoch %d, want 2", p.Index, p.LeaderEpoch)
		}
	}
}

// TestHugePartitionCountsAreRefusedBeforeAllocating: a request for 2^31-1
// partitions used to allocate them all and kill the process with out of
// memory; now it is an error and allocates next to nothing.
func TestHugePartitionCountsAreRefusedBeforeAllocating(t *testing.T) {
	s := NewState(1)
	if _, err := s.CreateTopic("small", 2, 1, nil, 10); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, errCreate := s.CreateTopic("boom", math.MaxInt32, 1, nil, 10)
	_, errGrow := s.CreatePartitions("small", math.MaxInt32, 10)
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
	s := NewState(1)
	if _, err := s.CreateTopic("a", 6, 1, nil, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTopic("b", 5, 1, nil, 10); !errors.Is(err, ErrPartitionLimit) {
		t.Fatalf("6+5 partitions under a cap of 10: %v", err)
	}
	if _, err := s.CreateTopic("b", 4, 1, nil, 10); err != nil {
		t.Fatalf("6+4 partitions under a cap of 10: %v", err)
	}
	if _, err := s.CreatePartitions("a", 7, 10); !errors.Is(err, ErrPartitionLimit) {
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

func TestUndoCreatePartitions(t *testing.T) {
	s := NewState(1)
	if _, err := s.CreateTopic("t", 2, 1, nil, noLimit); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePartitions("t", 5, noLimit); err != nil {
		t.Fatal(err)
	}
	tp, err := s.UndoCreatePartitions("t", 2)
	if err != nil || len(tp.Partitions) != 2 {
		t.Fatalf("undo: %v, %d partitions", err, len(tp.Partitions))
	}
	// Growing again must not see the dropped partitions through the
	// slice's spare capacity.
	tp, _ = s.CreatePartitions("t", 3, noLimit)
	if tp.Partitions[2].Index != 2 {
		t.Fatalf("regrown partition %+v", tp.Partitions[2])
	}
	for _, had := range []int32{0, 4} {
		if _, err := s.UndoCreatePartitions("t", had); !errors.Is(err, ErrInvalidPartitions) {
			t.Errorf("undo to %d of 3: %v", had, err)
		}
	}
	if _, err := s.UndoCreatePartitions("nope", 1); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("undo on unknown topic: %v", err)
	}
}
