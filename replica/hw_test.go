package replica

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/sluice-io/sluice/segment"
)

// SetHighWatermark, step by step, on a replicated leader and on a
// follower, each with 10 records and log start 2.
func TestSetHighWatermark(t *testing.T) {
	type step struct {
		set      int64
		hw       int64
		advanced bool
		err      error
	}
	for _, tc := range []struct {
		name  string
		lead  bool
		steps []step
	}{
		{"leader", true, []step{
			{5, 5, true, nil},
			{3, 5, false, nil}, // the leader's HW never goes back
			{5, 5, false, nil},
			{11, 5, false, ErrOffsetOutOfRange}, // beyond the LEO
			{10, 10, true, nil},
		}},
		{"follower", false, []step{
			{5, 5, true, nil},
			{20, 10, true, nil}, // the leader's HW, beyond this replica's LEO
			{4, 4, false, nil},  // a new leader's HW lagging the old one's
			{0, 2, false, nil},  // not below the log start
			{7, 7, true, nil},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := openPartition(t, segment.NewMemFS(), 1, replicatedConfig())
			defer p.Close()
			if !tc.lead {
				if err := p.BecomeFollower(1); err != nil {
					t.Fatal(err)
				}
				if _, err := p.AppendAsFollower(leaderBatches(t, 0, 1, plain(10))); err != nil {
					t.Fatal(err)
				}
			} else {
				mustAppend(t, p, makeBatch(t, plain(10)))
			}
			if _, err := p.SetHighWatermark(2); err != nil {
				t.Fatal(err)
			}
			if _, err := p.DeleteRecords(2); err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				ch := p.Changed()
				adv, err := p.SetHighWatermark(s.set)
				if !errors.Is(err, s.err) || (s.err == nil) != (err == nil) || adv != s.advanced || p.HighWatermark() != s.hw {
					t.Fatalf("step %d: set %d: advanced %v, err %v, HW %d; want %v, %v, %d", i, s.set, adv, err, p.HighWatermark(), s.advanced, s.err, s.hw)
				}
				select {
				case <-ch:
					if !s.advanced {
						t.Fatalf("step %d: woken without HW advancing", i)
					}
				default:
					if s.advanced {
						t.Fatalf("step %d: HW advanced without waking fetches", i)
					}
				}
			}
		})
	}
}

// The automatic HW is today's single-replica behaviour: on by default, off
// with Replicated, and switchable.
func TestAutoHighWatermark(t *testing.T) {
	p := openPartition(t, segment.NewMemFS(), 0, testConfig())
	defer p.Close()
	mustAppend(t, p, makeBatch(t, plain(3)))
	if p.HighWatermark() != 3 {
		t.Fatalf("single replica: HW %d after append, want the LEO 3", p.HighWatermark())
	}
	p.SetAutoHighWatermark(false)
	mustAppend(t, p, makeBatch(t, plain(2)))
	if p.HighWatermark() != 3 {
		t.Fatalf("automatic HW off: HW %d after append, want 3", p.HighWatermark())
	}
	p.SetAutoHighWatermark(true)
	if p.HighWatermark() != 5 {
		t.Fatalf("automatic HW on again: HW %d, want the LEO 5", p.HighWatermark())
	}
	cfg := testConfig()
	cfg.Replicated = true
	p.SetConfig(cfg)
	mustAppend(t, p, makeBatch(t, plain(1)))
	if p.HighWatermark() != 5 {
		t.Fatalf("configured replicated: HW %d after append, want 5", p.HighWatermark())
	}
}

// A replicated partition restarts from its checkpointed HW, never above
// its LEO; a single-replica one from its LEO, as before.
func TestHighWatermarkCheckpoint(t *testing.T) {
	ckpt := filepath.Join(testDir, HighWatermarkCheckpointFile)
	setup := func(t *testing.T) *segment.MemFS {
		fs := segment.NewMemFS()
		p := openFollower(t, fs, 1)
		if _, err := p.AppendAsFollower(leaderBatches(t, 0, 1, plain(10))); err != nil {
			t.Fatal(err)
		}
		if _, err := p.SetHighWatermark(6); err != nil {
			t.Fatal(err)
		}
		if err := p.CheckpointHighWatermark(); err != nil {
			t.Fatal(err)
		}
		if _, err := p.SetHighWatermark(8); err != nil { // not checkpointed
			t.Fatal(err)
		}
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		fs.Crash()
		return fs
	}
	for _, tc := range []struct {
		name    string
		damage  func(fs *segment.MemFS)
		cfg     Config
		hw, leo int64
	}{
		{"replicated", nil, replicatedConfig(), 6, 10},
		{"single replica", nil, testConfig(), 10, 10},
		{"checkpoint above the LEO", func(fs *segment.MemFS) {
			write(t, fs, ckpt, "0\n1\nt 0 50\n")
		}, replicatedConfig(), 10, 10},
		{"no checkpoint", func(fs *segment.MemFS) { _ = fs.Remove(ckpt) }, replicatedConfig(), 0, 10},
		{"garbage", func(fs *segment.MemFS) { write(t, fs, ckpt, "0\n1\nt 0 x\n") }, replicatedConfig(), 0, 10},
		{"another partition's", func(fs *segment.MemFS) { write(t, fs, ckpt, "0\n1\nt 1 7\n") }, replicatedConfig(), 0, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := setup(t)
			if tc.damage != nil {
				tc.damage(fs)
			}
			p := openPartition(t, fs, 1, tc.cfg)
			defer p.Close()
			if p.HighWatermark() != tc.hw || p.LogEndOffset() != tc.leo {
				t.Fatalf("reopened: HW %d LEO %d, want %d %d", p.HighWatermark(), p.LogEndOffset(), tc.hw, tc.leo)
			}
		})
	}
	// Close checkpoints the HW of a replicated partition.
	fs := setup(t)
	p := openFollower(t, fs, 1)
	if _, err := p.SetHighWatermark(9); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.CheckpointHighWatermark(); !errors.Is(err, ErrClosed) {
		t.Fatalf("checkpoint after close: %v", err)
	}
	fs.Crash()
	p = openPartition(t, fs, 1, replicatedConfig())
	defer p.Close()
	if p.HighWatermark() != 9 {
		t.Fatalf("after Close: HW %d, want 9", p.HighWatermark())
	}
}

func write(t *testing.T, fs segment.FS, path, data string) {
	t.Helper()
	if err := segment.WriteFileAtomic(fs, path, []byte(data)); err != nil {
		t.Fatal(err)
	}
}
