package replica

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-io/sluice/segment"
)

func replicatedConfig() Config {
	cfg := testConfig()
	cfg.Replicated = true
	return cfg
}

// openFollower opens a replicated partition and makes it follow in epoch.
func openFollower(t *testing.T, fs segment.FS, epoch int32) *Partition {
	t.Helper()
	p := openPartition(t, fs, epoch, replicatedConfig())
	if err := p.BecomeFollower(epoch); err != nil {
		t.Fatal(err)
	}
	return p
}

// readAll copies what r's ranges hold.
func readAll(t *testing.T, r segment.ReadResult) []byte {
	t.Helper()
	defer r.Release()
	var out []byte
	for _, fr := range r.Ranges {
		b := make([]byte, fr.Length)
		if _, err := fr.File.ReadAt(b, fr.Offset); err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// replicate runs a follower's fetch loop against leader until it caught
// up: fetch from the LEO (at most maxBytes), append as follower, take the
// leader's HW, and let the leader's HW follow the follower's LEO (the
// ISR is the two of them).
func replicate(t *testing.T, leader, follower *Partition, maxBytes int) {
	t.Helper()
	for follower.LogEndOffset() < leader.LogEndOffset() {
		res, err := leader.ReadForFollower(follower.LogEndOffset(), maxBytes, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := follower.AppendAsFollower(readAll(t, res)); err != nil {
			t.Fatal(err)
		}
		if _, err := leader.SetHighWatermark(min(follower.LogEndOffset(), leader.LogEndOffset())); err != nil {
			t.Fatal(err)
		}
		if _, err := follower.SetHighWatermark(leader.HighWatermark()); err != nil {
			t.Fatal(err)
		}
	}
}

// A follower fed by the leader's log holds the same bytes, the same epoch
// history and the producer state: once it leads, a retry of the last
// batch is a duplicate and the producer's sequence goes on from there.
func TestFollowerCopiesLeaderLogEpochsAndProducers(t *testing.T) {
	leader := openPartition(t, segment.NewMemFS(), 1, replicatedConfig())
	defer leader.Close()
	follower := openFollower(t, segment.NewMemFS(), 1)
	defer follower.Close()

	mustAppend(t, leader, makeBatch(t, idem(7, 0, 0, 3)), makeBatch(t, plain(2)))
	replicate(t, leader, follower, 1)
	if err := leader.BecomeLeader(4); err != nil {
		t.Fatal(err)
	}
	if err := follower.BecomeFollower(4); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		mustAppend(t, leader, makeBatch(t, idem(7, 0, int32(3+2*i), 2)))
	}
	last := makeBatch(t, idem(8, 2, 0, 4))
	mustAppend(t, leader, last)
	replicate(t, leader, follower, 200)

	if leader.HighWatermark() != 19 || follower.HighWatermark() != 19 || follower.LogEndOffset() != 19 {
		t.Fatalf("HW leader %d follower %d, follower LEO %d, want 19", leader.HighWatermark(), follower.HighWatermark(), follower.LogEndOffset())
	}
	lr, _ := leader.Read(0, 1<<20, true)
	fr, _ := follower.Read(0, 1<<20, true)
	if l, f := readAll(t, lr), readAll(t, fr); !bytes.Equal(l, f) {
		t.Fatalf("follower's log (%d bytes) differs from the leader's (%d bytes)", len(f), len(l))
	}
	want := []EpochEntry{{1, 0}, {4, 5}}
	if got := leader.EpochEntries(); !reflect.DeepEqual(got, want) {
		t.Fatalf("leader entries %v, want %v", got, want)
	}
	if got := follower.EpochEntries(); !reflect.DeepEqual(got, want) {
		t.Fatalf("follower entries %v, want %v", got, want)
	}
	if e := follower.LastFetchedEpoch(); e != 4 {
		t.Fatalf("LastFetchedEpoch %d, want 4", e)
	}
	for _, pid := range []int64{7, 8} {
		if l, f := leader.producers.Entry(pid), follower.producers.Entry(pid); !reflect.DeepEqual(l, f) {
			t.Fatalf("producer %d: leader %+v, follower %+v", pid, l, f)
		}
	}

	// Failover: the follower leads in epoch 5.
	if err := follower.BecomeLeader(5); err != nil {
		t.Fatal(err)
	}
	if r := mustAppend(t, follower, last); !r.Duplicate || r.BaseOffset != 15 || r.LastOffset != 18 {
		t.Fatalf("retry of the last batch on the new leader: %+v, want the duplicate at 15-18", r)
	}
	if _, err := follower.Append(makeBatch(t, idem(7, 0, 14, 1))); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("skipping a sequence on the new leader: %v", err)
	}
	if r := mustAppend(t, follower, makeBatch(t, idem(7, 0, 13, 1))); r.BaseOffset != 19 || r.Duplicate {
		t.Fatalf("next sequence on the new leader: %+v", r)
	}
}

// Fetched batches that go back below the log end, or whose epochs
// contradict the history, are refused and leave everything as it was;
// batches after a gap (a compacted leader's log) are taken.
func TestAppendAsFollowerRefuses(t *testing.T) {
	corrupt := leaderBatches(t, 2, 2, plain(1))
	corrupt[len(corrupt)-1] ^= 1
	for _, tc := range []struct {
		name    string
		batches []byte
		err     error
	}{
		{"overlap", leaderBatches(t, 1, 2, plain(1)), segment.ErrUnexpectedAppendOffset},
		{"overlap between batches", append(leaderBatches(t, 2, 2, plain(2)), leaderBatches(t, 3, 2, plain(1))...), segment.ErrUnexpectedAppendOffset},
		// A compacted leader's log has gaps; its followers keep them.
		{"gap", leaderBatches(t, 3, 2, plain(1)), nil},
		{"gap between batches", append(leaderBatches(t, 2, 2, plain(1)), leaderBatches(t, 4, 2, plain(1))...), nil},
		{"epoch below the log's last", leaderBatches(t, 2, 1, plain(1)), segment.ErrUnexpectedAppendOffset},
		{"no epoch after epoch 2", leaderBatches(t, 2, -1, plain(1)), segment.ErrUnexpectedAppendOffset},
		{"epoch above the one followed", leaderBatches(t, 2, 4, plain(1)), ErrStaleLeaderEpoch},
		{"epochs going back", append(leaderBatches(t, 2, 3, plain(1)), leaderBatches(t, 3, 2, plain(1))...), segment.ErrUnexpectedAppendOffset},
		{"crc", corrupt, segment.ErrCorruptBatch},
		{"continues", append(leaderBatches(t, 2, 2, plain(1)), leaderBatches(t, 3, 3, plain(1))...), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := openFollower(t, segment.NewMemFS(), 3)
			defer p.Close()
			if _, err := p.AppendAsFollower(leaderBatches(t, 0, 2, plain(2))); err != nil {
				t.Fatal(err)
			}
			_, err := p.AppendAsFollower(tc.batches)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
			if tc.err == nil {
				return
			}
			if p.LogEndOffset() != 2 || !reflect.DeepEqual(p.EpochEntries(), []EpochEntry{{2, 0}}) {
				t.Fatalf("refused append changed LEO to %d, entries to %v", p.LogEndOffset(), p.EpochEntries())
			}
		})
	}
	p := openPartition(t, segment.NewMemFS(), 2, testConfig())
	defer p.Close()
	if _, err := p.AppendAsFollower(leaderBatches(t, 0, 2, plain(1))); !errors.Is(err, ErrNotFollower) {
		t.Fatalf("follower append on the leader: %v", err)
	}
}

// A replica that led in an epoch without appending has that epoch's entry
// at its LEO. It is not the epoch of its last batch (LastFetchedEpoch),
// and the leader's log replaces it, whether the fetcher truncates first
// (Kafka's truncateTo at or beyond the LEO) or appends at once.
func TestEpochThatNeverAppendedIsReplaced(t *testing.T) {
	for _, truncate := range []bool{true, false} {
		fs := segment.NewMemFS()
		p := openFollower(t, fs, 1)
		if _, err := p.AppendAsFollower(leaderBatches(t, 0, 1, plain(5))); err != nil {
			t.Fatal(err)
		}
		if err := p.BecomeLeader(2); err != nil { // elected, but appends nothing
			t.Fatal(err)
		}
		if err := p.BecomeFollower(3); err != nil {
			t.Fatal(err)
		}
		if e := p.LastFetchedEpoch(); e != 1 {
			t.Fatalf("LastFetchedEpoch %d, want 1 (epoch 2 has no batch)", e)
		}
		if truncate {
			if err := p.TruncateTo(5); err != nil {
				t.Fatal(err)
			}
			if got := p.EpochEntries(); !reflect.DeepEqual(got, []EpochEntry{{1, 0}}) {
				t.Fatalf("truncating at the LEO left entries %v", got)
			}
		}
		// The epoch-3 leader's log goes on in epoch 1, then 3.
		if _, err := p.AppendAsFollower(append(leaderBatches(t, 5, 1, plain(2)), leaderBatches(t, 7, 3, plain(1))...)); err != nil {
			t.Fatalf("truncate %v: %v", truncate, err)
		}
		if got, want := p.EpochEntries(), []EpochEntry{{1, 0}, {3, 7}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("truncate %v: entries %v, want %v", truncate, got, want)
		}
		p.Close()
	}
}

// TruncateTo on a follower: the log, the epoch cache, producer state (from
// a snapshot at or below the target plus the log) and HW all end at the
// target.
func TestFollowerTruncateTo(t *testing.T) {
	for _, tc := range []struct {
		name      string
		to        int64
		leo       int64
		entries   []EpochEntry
		nextSeq   int32 // producer 7's next sequence
		snapshots []string
	}{
		{"beyond the LEO", 20, 10, []EpochEntry{{1, 0}, {2, 4}}, 8, []string{SnapshotName(4), SnapshotName(8)}},
		{"at a batch boundary", 8, 8, []EpochEntry{{1, 0}, {2, 4}}, 8, []string{SnapshotName(4), SnapshotName(8)}},
		{"inside a batch", 7, 6, []EpochEntry{{1, 0}, {2, 4}}, 6, []string{SnapshotName(4)}},
		{"at an epoch start", 4, 4, []EpochEntry{{1, 0}}, 4, []string{SnapshotName(4)}},
		{"to the start", 0, 0, nil, -1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := segment.NewMemFS()
			p := openFollower(t, fs, 2)
			defer p.Close()
			// Producer 7: 0-1 seq 0, 2-3 seq 2 (epoch 1); 4-5 seq 4,
			// 6-7 seq 6 (epoch 2); 8-9 plain.
			for _, b := range [][]byte{
				leaderBatches(t, 0, 1, idem(7, 0, 0, 2), idem(7, 0, 2, 2)),
				leaderBatches(t, 4, 2, idem(7, 0, 4, 2)),
				leaderBatches(t, 6, 2, idem(7, 0, 6, 2)),
				leaderBatches(t, 8, 2, plain(2)),
			} {
				if _, err := p.AppendAsFollower(b); err != nil {
					t.Fatal(err)
				}
				if off := p.LogEndOffset(); off == 4 || off == 8 {
					if err := p.Flush(); err != nil { // snapshots at 4 and 8
						t.Fatal(err)
					}
				}
			}
			if _, err := p.SetHighWatermark(10); err != nil {
				t.Fatal(err)
			}
			if err := p.TruncateTo(tc.to); err != nil {
				t.Fatal(err)
			}
			if p.LogEndOffset() != tc.leo || p.HighWatermark() != tc.leo {
				t.Fatalf("LEO %d HW %d, want %d", p.LogEndOffset(), p.HighWatermark(), tc.leo)
			}
			if got := p.EpochEntries(); !reflect.DeepEqual(got, tc.entries) && len(got)+len(tc.entries) > 0 {
				t.Fatalf("entries %v, want %v", got, tc.entries)
			}
			if got := snapshotFiles(t, fs); !reflect.DeepEqual(got, tc.snapshots) && len(got)+len(tc.snapshots) > 0 {
				t.Fatalf("snapshots %v, want %v", got, tc.snapshots)
			}
			e := p.producers.Entry(7)
			switch {
			case tc.nextSeq < 0 && e != nil:
				t.Fatalf("producer 7 survived truncation to the start: %+v", e)
			case tc.nextSeq >= 0 && (e == nil || e.Batches[len(e.Batches)-1].LastSeq+1 != tc.nextSeq):
				t.Fatalf("producer 7 after truncation: %+v, want next sequence %d", e, tc.nextSeq)
			}
		})
	}
}

// TruncateFullyAndStartAt: a follower behind the leader's log start
// starts over there, with nothing of its old history, producers or
// snapshots, and appends from there on.
func TestTruncateFullyAndStartAt(t *testing.T) {
	fs := segment.NewMemFS()
	p := openFollower(t, fs, 2)
	if _, err := p.AppendAsFollower(leaderBatches(t, 0, 2, idem(7, 0, 0, 3), plain(2))); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SetHighWatermark(3); err != nil {
		t.Fatal(err)
	}
	ch := p.Changed()
	if err := p.TruncateFullyAndStartAt(100); err != nil {
		t.Fatal(err)
	}
	if p.LogStartOffset() != 100 || p.LogEndOffset() != 100 || p.HighWatermark() != 100 {
		t.Fatalf("start %d LEO %d HW %d, want 100", p.LogStartOffset(), p.LogEndOffset(), p.HighWatermark())
	}
	select {
	case <-ch:
	default:
		t.Fatal("HW moved to 100 without waking fetches")
	}
	if len(p.EpochEntries()) != 0 || p.NumProducers() != 0 || len(snapshotFiles(t, fs)) != 0 || p.LastFetchedEpoch() != UndefinedEpoch {
		t.Fatalf("entries %v, %d producers, snapshots %v, last epoch %d: want nothing", p.EpochEntries(), p.NumProducers(), snapshotFiles(t, fs), p.LastFetchedEpoch())
	}
	if _, err := p.AppendAsFollower(leaderBatches(t, 100, 2, plain(1))); err != nil {
		t.Fatal(err)
	}
	if got := p.EpochEntries(); !reflect.DeepEqual(got, []EpochEntry{{2, 100}}) {
		t.Fatalf("entries %v", got)
	}
	p.Close()
	p = openPartition(t, fs, 2, replicatedConfig())
	defer p.Close()
	if p.LogStartOffset() != 100 || p.LogEndOffset() != 101 || p.HighWatermark() != 100 {
		t.Fatalf("reopened: start %d LEO %d HW %d", p.LogStartOffset(), p.LogEndOffset(), p.HighWatermark())
	}
	if err := p.TruncateFullyAndStartAt(5); !errors.Is(err, ErrNotFollower) {
		t.Fatalf("on the leader: %v", err)
	}
}

// Appends by a follower do not move its HW (the leader's does) and, with
// a leader's automatic HW off, a leader's appends do not either.
func TestFollowerAppendLeavesHW(t *testing.T) {
	p := openFollower(t, segment.NewMemFS(), 1)
	defer p.Close()
	ch := p.Changed()
	if _, err := p.AppendAsFollower(leaderBatches(t, 0, 1, plain(3))); err != nil {
		t.Fatal(err)
	}
	if p.HighWatermark() != 0 {
		t.Fatalf("HW %d after a follower append, want 0", p.HighWatermark())
	}
	select {
	case <-ch:
		t.Fatal("woken without HW moving")
	case <-time.After(time.Millisecond):
	}
}
