package replica

import (
	"errors"
	"reflect"
	"testing"

	"github.com/sluice-io/sluice/segment"
)

// Role changes, step by step: what each allows and what the epoch cache
// says after it.
func TestRoles(t *testing.T) {
	fs := segment.NewMemFS()
	p := openPartition(t, fs, 3, testConfig())
	if !p.IsLeader() || p.LeaderEpochStartOffset() != 0 {
		t.Fatalf("opened: leader %v since %d, want a leader since 0", p.IsLeader(), p.LeaderEpochStartOffset())
	}
	mustAppend(t, p, makeBatch(t, plain(2))) // 0-1, epoch 3
	steps := []struct {
		name    string
		do      func() error
		err     error
		leader  bool
		epoch   int32
		since   int64
		entries []EpochEntry
	}{
		// Kafka's makeLeader: the new epoch is in the cache before any
		// append of it.
		{"lead in 5", func() error { return p.BecomeLeader(5) }, nil, true, 5, 2, []EpochEntry{{3, 0}, {5, 2}}},
		{"again", func() error { return p.BecomeLeader(5) }, nil, true, 5, 2, []EpochEntry{{3, 0}, {5, 2}}},
		{"append", func() error { _, err := p.Append(makeBatch(t, plain(3))); return err }, nil, true, 5, 2, []EpochEntry{{3, 0}, {5, 2}}},
		{"lead in an older epoch", func() error { return p.BecomeLeader(4) }, ErrStaleLeaderEpoch, true, 5, 2, []EpochEntry{{3, 0}, {5, 2}}},
		{"follow in an older epoch", func() error { return p.BecomeFollower(4) }, ErrStaleLeaderEpoch, true, 5, 2, []EpochEntry{{3, 0}, {5, 2}}},
		{"follow in 6", func() error { return p.BecomeFollower(6) }, nil, false, 6, -1, []EpochEntry{{3, 0}, {5, 2}}},
		{"append as follower", func() error { _, err := p.Append(makeBatch(t, plain(1))); return err }, ErrNotLeader, false, 6, -1, []EpochEntry{{3, 0}, {5, 2}}},
		{"serve a follower", func() error { _, err := p.ReadForFollower(0, 1<<20, true); return err }, ErrNotLeader, false, 6, -1, []EpochEntry{{3, 0}, {5, 2}}},
		{"lead in 7", func() error { return p.BecomeLeader(7) }, nil, true, 7, 5, []EpochEntry{{3, 0}, {5, 2}, {7, 5}}},
		// Leading again in 7 after following in it keeps nothing stale:
		// the entry is there, the epoch starts where it led from.
		{"follow in 7", func() error { return p.BecomeFollower(7) }, nil, false, 7, -1, []EpochEntry{{3, 0}, {5, 2}, {7, 5}}},
		{"lead in 7 again", func() error { return p.BecomeLeader(7) }, nil, true, 7, 5, []EpochEntry{{3, 0}, {5, 2}, {7, 5}}},
	}
	for _, s := range steps {
		err := s.do()
		if !errors.Is(err, s.err) || (s.err == nil) != (err == nil) {
			t.Fatalf("%s: %v, want %v", s.name, err, s.err)
		}
		if p.IsLeader() != s.leader || p.LeaderEpoch() != s.epoch || p.LeaderEpochStartOffset() != s.since {
			t.Fatalf("%s: leader %v in %d since %d, want %v in %d since %d", s.name,
				p.IsLeader(), p.LeaderEpoch(), p.LeaderEpochStartOffset(), s.leader, s.epoch, s.since)
		}
		if got := p.EpochEntries(); !reflect.DeepEqual(got, s.entries) {
			t.Fatalf("%s: entries %v, want %v", s.name, got, s.entries)
		}
	}
	// The entry of the epoch that has not appended is on disk once
	// BecomeLeader returned. Open drops entries at the LEO (an epoch that
	// appended nothing), and the restarted leader enters it again.
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	c, err := LoadEpochCache(fs, testDir, testLogger())
	if want := []EpochEntry{{3, 0}, {5, 2}, {7, 5}}; err != nil || !reflect.DeepEqual(c.Entries(), want) {
		t.Fatalf("after a crash: checkpoint %v (%v), want %v", c.Entries(), err, want)
	}
	p = openPartition(t, fs, 7, testConfig())
	defer p.Close()
	if err := p.BecomeLeader(7); err != nil {
		t.Fatal(err)
	}
	if got, want := p.EpochEntries(), []EpochEntry{{3, 0}, {5, 2}, {7, 5}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("leading again after a restart: entries %v, want %v", got, want)
	}
	if r := mustAppend(t, p, makeBatch(t, plain(1))); r.BaseOffset != 5 {
		t.Fatalf("append after reopen: %+v", r)
	}
	if hs := readBatches(t, p, 5); len(hs) != 1 || hs[0].PartitionLeaderEpoch != 7 {
		t.Fatalf("batch of epoch 7: %+v", hs)
	}
}

// The leader serves a follower up to its LEO, a consumer only up to HW,
// both as file ranges of the same log.
func TestReadForFollowerGoesToTheLEO(t *testing.T) {
	cfg := testConfig()
	cfg.Replicated = true
	p := openPartition(t, segment.NewMemFS(), 1, cfg)
	defer p.Close()
	mustAppend(t, p, makeBatch(t, plain(2)), makeBatch(t, plain(3)))
	if p.HighWatermark() != 0 || p.LogEndOffset() != 5 {
		t.Fatalf("replicated leader after appends: HW %d LEO %d, want 0 5", p.HighWatermark(), p.LogEndOffset())
	}
	if hs := readBatches(t, p, 0); len(hs) != 0 {
		t.Fatalf("consumer read above HW: %d batches", len(hs))
	}
	res, err := p.ReadForFollower(0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ranges) == 0 || res.Ranges[0].File == nil || res.Next != 5 {
		t.Fatalf("follower read: %d ranges, next %d, want file ranges up to 5", len(res.Ranges), res.Next)
	}
	res.Release()
	if _, err := p.SetHighWatermark(2); err != nil {
		t.Fatal(err)
	}
	if hs := readBatches(t, p, 0); len(hs) != 1 || hs[0].LastOffset() != 1 {
		t.Fatalf("consumer read below HW 2: %+v", hs)
	}
}
