package controller

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
	tp, err := s.CreateTopic("t", 2, 1, map[string]string{"retention.ms": "1000"})
	if err != nil {
		t.Fatal(err)
	}
	if tp.ID.IsZero() || len(tp.Partitions) != 2 || tp.Partitions[1].Leader != 3 || tp.Partitions[1].ISR[0] != 3 {
		t.Fatalf("bad topic %+v", tp)
	}
	if _, err := s.CreateTopic("t", 1, 1, nil); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := s.CreateTopic("u", 0, 1, nil); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("zero partitions: %v", err)
	}
	if _, err := s.CreateTopic("u", 1, 3, nil); !errors.Is(err, ErrInvalidReplication) {
		t.Fatalf("rf 3 on one node: %v", err)
	}
	if _, err := s.CreatePartitions("t", 2); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("shrink/same: %v", err)
	}
	tp, err = s.CreatePartitions("t", 5)
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
	s, err := Open(dir, 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	created, err := s.Apply(func(st *State) (*Topic, error) { return st.CreateTopic("a", 3, 1, nil) })
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Apply(func(st *State) (*Topic, error) {
		if _, err := st.CreateTopic("b", 1, 1, nil); err != nil {
			return nil, err
		}
		return st.CreateTopic("a", 1, 1, nil) // fails: the whole change must vanish
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

	s2, err := Open(dir, 1, quiet())
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
	if _, err := Open(dir, 2, quiet()); err == nil {
		t.Fatal("opening metadata of node 1 as node 2 must fail")
	}
}

func TestStoreRejectsCorruptMetadata(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, metadataFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, 0, quiet()); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("got %v", err)
	}
}

func TestBumpLeaderEpochs(t *testing.T) {
	s := NewState(1)
	if _, err := s.CreateTopic("t", 2, 1, nil); err != nil {
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
