package replica

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/sluice-io/sluice/segment"
)

// allOps is every operation an ErrorFS can fail.
const allOps = segment.OpOpen | segment.OpRead | segment.OpWrite | segment.OpSync | segment.OpTruncate |
	segment.OpRename | segment.OpRemove | segment.OpSyncDir | segment.OpReadDir | segment.OpStat | segment.OpLock

// crashConfig is a replicated partition whose log rolls every few batches.
func crashConfig() Config {
	cfg := replicatedConfig()
	cfg.Log.SegmentBytes = 1024
	cfg.Log.IndexIntervalBytes = 256
	return cfg
}

// crashLeaderLog is what the follower in the crash tests holds: 30
// batches of two producers over epochs 1, 2 and 3.
func crashLeaderLog(t *testing.T) []byte {
	t.Helper()
	var out []byte
	seq := map[int64]int32{}
	for i := range 30 {
		pid := int64(7 + i%2)
		o := idem(pid, 0, seq[pid], 2)
		o.valueLen = 100
		seq[pid] += 2
		out = append(out, leaderBatches(t, int64(2*i), int32(1+i/10), o)...)
	}
	return out
}

// prefix is the part of the batches in log below end (a batch boundary).
func prefix(t *testing.T, log []byte, end int64) []byte {
	t.Helper()
	hs, err := segment.ValidateFetchedBatches(log)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, h := range hs {
		if h.BaseOffset >= end {
			break
		}
		n += h.Size()
	}
	return log[:n]
}

// followerWithLog builds the crash tests' follower on fs: the log in three
// fetches with a flush (producer snapshot) after each, HW 40 checkpointed.
func followerWithLog(t *testing.T, fs segment.FS, log []byte) *Partition {
	t.Helper()
	p, err := Open(fs, testDir, "t", 0, 3, crashConfig(), nil, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.BecomeFollower(3); err != nil {
		t.Fatal(err)
	}
	for _, end := range []int64{20, 44, 60} {
		b := prefix(t, log, end)[len(prefix(t, log, p.LogEndOffset())):]
		if _, err := p.AppendAsFollower(b); err != nil {
			t.Fatal(err)
		}
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.SetHighWatermark(40); err != nil {
		t.Fatal(err)
	}
	if err := p.CheckpointHighWatermark(); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkConsistent checks a reopened follower against a reference replica
// that appended only what survived: the same bytes, epoch history and
// producer state, HW the checkpoint's (ckptHW) within the log, no damage.
func checkConsistent(t *testing.T, what string, p *Partition, log []byte, ckptHW int64) {
	t.Helper()
	start, leo := p.LogStartOffset(), p.LogEndOffset()
	ref, err := Open(segment.NewMemFS(), testDir, "t", 0, 3, crashConfig(), nil, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if err := ref.BecomeFollower(3); err != nil {
		t.Fatal(err)
	}
	if start > 0 { // a full truncation, or one whose removals a crash undid
		if err := ref.TruncateFullyAndStartAt(start); err != nil {
			t.Fatal(err)
		}
	}
	if leo > start {
		// The tests' truncations start logs at batch boundaries.
		want := prefix(t, log, leo)[len(prefix(t, log, start)):]
		if _, err := ref.AppendAsFollower(want); err != nil {
			t.Fatal(err)
		}
		res, err := p.log.Read(start, 1<<30, leo, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, res); !bytes.Equal(got, want) {
			t.Fatalf("%s: log [%d, %d) is not the log before from %d", what, start, leo, start)
		}
	}
	if got, want := p.EpochEntries(), ref.EpochEntries(); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: LEO %d: epoch entries %v, the log says %v", what, leo, got, want)
	}
	for _, pid := range []int64{7, 8} {
		if got, want := p.producers.Entry(pid), ref.producers.Entry(pid); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: LEO %d: producer %d is %+v, the log says %+v", what, leo, pid, got, want)
		}
	}
	if hw := p.HighWatermark(); hw != min(max(ckptHW, start), leo) {
		t.Fatalf("%s: HW %d, want the checkpointed %d within [%d, %d]", what, hw, ckptHW, start, leo)
	}
	if p.RecoveryGaps() != 0 {
		t.Fatalf("%s: %d gaps", what, p.RecoveryGaps())
	}
}

// A crash at any step of a follower's truncation leaves a partition that
// is consistent with its log, which is the old log cut at the target or
// at a batch boundary above it: epoch history, producer state (loaded
// from a snapshot at or below the cut plus the log) and HW all agree with
// what survived. A truncation that returned survives the crash whole.
func TestTruncationCrashAtEveryStep(t *testing.T) {
	log := crashLeaderLog(t)
	for _, tc := range []struct {
		name     string
		truncate func(p *Partition) error
		to       int64
	}{
		{"into the second epoch", func(p *Partition) error { return p.TruncateTo(27) }, 26},
		{"into the first segment", func(p *Partition) error { return p.TruncateTo(2) }, 2},
		{"fully, beyond the log", func(p *Partition) error { return p.TruncateFullyAndStartAt(1000) }, 1000},
		{"fully, inside the log", func(p *Partition) error { return p.TruncateFullyAndStartAt(30) }, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for n := 1; ; n++ {
				mem := segment.NewMemFS()
				efs := segment.NewErrorFS(mem)
				p := followerWithLog(t, efs, log)
				in := efs.Inject(segment.Fault{Ops: allOps, Nth: n, Sticky: true})
				err := tc.truncate(p)
				done := in.Failed() == 0
				efs.Heal()
				mem.Crash()
				p, rerr := Open(mem, testDir, "t", 0, 3, crashConfig(), nil, testLogger())
				if rerr != nil {
					t.Fatalf("crash at op %d (%v): reopen: %v", n, err, rerr)
				}
				what := fmt.Sprintf("crash at op %d (%v)", n, err)
				if leo := p.LogEndOffset(); leo != tc.to && leo != 60 && (tc.to >= 60 || leo < tc.to) {
					t.Fatalf("%s: LEO %d, want %d or the old log's end", what, leo, tc.to)
				}
				if done && p.LogEndOffset() != tc.to {
					t.Fatalf("truncation returned %v, but a crash took it back to LEO %d", err, p.LogEndOffset())
				}
				if p.LogEndOffset() == tc.to && tc.to >= 30 && p.LogStartOffset() != tc.to {
					t.Fatalf("%s: full truncation left log start %d", what, p.LogStartOffset())
				}
				checkConsistent(t, what, p, log, 40)
				p.Close()
				if done {
					break
				}
			}
		})
	}
}

// A crash at any step of a follower append (epoch entries, the write, the
// flush) leaves a partition consistent with whatever prefix of the
// fetched batches survived; an append whose flush returned survives whole.
func TestFollowerAppendCrashAtEveryStep(t *testing.T) {
	log := crashLeaderLog(t)
	for n := 1; ; n++ {
		mem := segment.NewMemFS()
		efs := segment.NewErrorFS(mem)
		p, err := Open(efs, testDir, "t", 0, 3, crashConfig(), nil, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		if err := p.BecomeFollower(3); err != nil {
			t.Fatal(err)
		}
		if _, err := p.AppendAsFollower(prefix(t, log, 16)); err != nil {
			t.Fatal(err)
		}
		if _, err := p.SetHighWatermark(16); err != nil {
			t.Fatal(err)
		}
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := p.CheckpointHighWatermark(); err != nil {
			t.Fatal(err)
		}
		in := efs.Inject(segment.Fault{Ops: allOps, Nth: n, Sticky: true})
		// Epochs 1 to 3 in one fetch, then made durable.
		_, err = p.AppendAsFollower(prefix(t, log, 60)[len(prefix(t, log, 16)):])
		if err == nil {
			err = p.Flush()
		}
		done := in.Failed() == 0
		efs.Heal()
		mem.Crash()
		p, rerr := Open(mem, testDir, "t", 0, 3, crashConfig(), nil, testLogger())
		if rerr != nil {
			t.Fatalf("crash at op %d (%v): reopen: %v", n, err, rerr)
		}
		what := fmt.Sprintf("crash at op %d (%v)", n, err)
		if leo := p.LogEndOffset(); leo < 16 || (done && leo != 60) {
			t.Fatalf("%s: LEO %d, want 16 to 60 (60 once the flush returned)", what, leo)
		}
		checkConsistent(t, what, p, log, 16)
		p.Close()
		if done {
			break
		}
	}
}
