package segment

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

// allOps is every operation an ErrorFS can fail.
const allOps = OpOpen | OpRead | OpWrite | OpSync | OpTruncate | OpRename | OpRemove | OpSyncDir | OpReadDir | OpStat | OpLock

// leaderLog fills a leader's log with n batches, the first half in leader
// epoch 3 and the rest in epoch 5, and returns it with its batches as
// stored.
func leaderLog(t *testing.T, n int) (*Log, [][]byte) {
	t.Helper()
	l := openLog(t, NewMemFS(), testDir, testConfig(), nil)
	var out [][]byte
	for i := range n {
		epoch := int32(3)
		if i >= n/2 {
			epoch = 5
		}
		b := makeBatch(t, batchSpec{records: 1 + i%4, valSize: 30 + i*7, ts: int64(i) * 10})
		hs, err := ValidateBatches(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(b, hs, epoch, -1); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return l, out
}

// fetchFrom reads the leader's batches from off (as a follower's fetch
// does) and validates them as the follower will.
func fetchFrom(t *testing.T, l *Log, off int64, maxBytes int) ([]byte, []BatchHeader) {
	t.Helper()
	b, err := l.ReadBatches(off, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := ValidateFetchedBatches(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, hs
}

// A follower's log built from fetches is byte for byte the leader's: base
// offsets, leader epochs and CRCs as the leader wrote them, across segment
// rolls and a reopen.
func TestAppendAsFollowerCopiesTheLeadersLog(t *testing.T) {
	leader, batches := leaderLog(t, 40)
	defer leader.Close()
	fs := NewMemFS()
	f := openLog(t, fs, testDir, testConfig(), nil)
	for f.EndOffset() < leader.EndOffset() {
		b, hs := fetchFrom(t, leader, f.EndOffset(), 700)
		leo := f.EndOffset()
		info, err := f.AppendAsFollower(b, hs)
		if err != nil {
			t.Fatal(err)
		}
		if info.FirstOffset != leo || info.LastOffset != hs[len(hs)-1].LastOffset() || info.LogAppendTime != -1 || f.EndOffset() != info.LastOffset+1 {
			t.Fatalf("append at %d: %+v, LEO %d", leo, info, f.EndOffset())
		}
	}
	want := bytes.Join(batches, nil)
	if got := readEverything(t, f); !bytes.Equal(got, want) {
		t.Fatal("follower's log differs from the leader's")
	}
	if f.NumSegments() < 2 {
		t.Fatalf("want segment rolls, have %d segments", f.NumSegments())
	}
	checkReadEveryOffset(t, f, batches)
	f.Close()
	f = openLog(t, fs, testDir, testConfig(), nil)
	defer f.Close()
	if got := readEverything(t, f); !bytes.Equal(got, want) {
		t.Fatal("follower's log differs from the leader's after a reopen")
	}
}

// Batches whose offsets go back (below the log end, or not past the
// batch before) are refused whole, and nothing of them is written; gaps,
// which a compacted leader's log has, are taken.
func TestAppendAsFollowerRefusesOverlaps(t *testing.T) {
	leader, _ := leaderLog(t, 10)
	defer leader.Close()
	all, allHs := fetchFrom(t, leader, 0, math.MaxInt32)
	// Positions of the batches in all.
	pos := []int{0}
	for _, h := range allHs {
		pos = append(pos, pos[len(pos)-1]+h.Size())
	}
	batch := func(i int) []byte { return all[pos[i]:pos[i+1]] }
	join := func(idx ...int) ([]byte, []BatchHeader) {
		var b []byte
		var hs []BatchHeader
		for _, i := range idx {
			b = append(b, batch(i)...)
			hs = append(hs, allHs[i])
		}
		return b, hs
	}
	for _, tc := range []struct {
		name  string
		have  []int // appended first
		batch []int // then these
		err   error
	}{
		{"gap at the start", []int{0, 1}, []int{3}, nil},
		{"overlap at the start", []int{0, 1}, []int{1, 2}, ErrUnexpectedAppendOffset},
		{"starts below the log end", []int{0, 1, 2}, []int{1}, ErrUnexpectedAppendOffset},
		{"gap between batches", []int{0}, []int{1, 3}, nil},
		{"batch repeated", []int{0}, []int{1, 1}, ErrUnexpectedAppendOffset},
		{"batches out of order", []int{0}, []int{3, 2}, ErrUnexpectedAppendOffset},
		{"epoch goes back", nil, []int{0, 1, 2}, ErrUnexpectedAppendOffset}, // batch 2 restamped below
		{"continues", []int{0, 1}, []int{2, 3}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := openLog(t, NewMemFS(), testDir, testConfig(), nil)
			defer f.Close()
			if len(tc.have) > 0 {
				b, hs := join(tc.have...)
				if _, err := f.AppendAsFollower(b, hs); err != nil {
					t.Fatal(err)
				}
			}
			b, hs := join(tc.batch...)
			if tc.name == "epoch goes back" {
				// The batches are of epoch 3; the third says 2.
				b = bytes.Clone(b)
				SetPartitionLeaderEpoch(b[hs[0].Size()+hs[1].Size():], 2)
				hs[2].PartitionLeaderEpoch = 2
			}
			leo, size := f.EndOffset(), f.Size()
			_, err := f.AppendAsFollower(b, hs)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("append: %v, want %v", err, tc.err)
			}
			if tc.err != nil && (f.EndOffset() != leo || f.Size() != size) {
				t.Fatalf("refused append moved LEO %d→%d, size %d→%d", leo, f.EndOffset(), size, f.Size())
			}
		})
	}
}

// ValidateFetchedBatches checks framing and CRC but not what the leader
// already validated.
func TestValidateFetchedBatches(t *testing.T) {
	good := makeBatch(t, batchSpec{records: 3, valSize: 10})
	mutate := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	for _, tc := range []struct {
		name string
		buf  []byte
		err  error
	}{
		{"good", good, nil},
		{"two", append(bytes.Clone(good), good...), nil},
		{"large beyond any max.message.bytes", makeBatch(t, batchSpec{records: 2, valSize: 5000}), nil},
		{"empty", nil, ErrCorruptBatch},
		{"crc", mutate(func(b []byte) { b[len(b)-1] ^= 1 }), ErrCorruptBatch},
		{"torn", good[:len(good)-3], ErrCorruptBatch},
		{"magic", mutate(func(b []byte) { b[offMagic] = 1 }), ErrCorruptBatch},
		{"trailing bytes", append(bytes.Clone(good), 0, 0, 0), ErrCorruptBatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs, err := ValidateFetchedBatches(tc.buf)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
			if err == nil && len(hs) == 0 {
				t.Fatal("no headers")
			}
		})
	}
}

// TruncateFullyAndStartAt empties the log and restarts it at any offset,
// above the log end as well as below the start, and that survives a crash.
func TestTruncateFullyAndStartAt(t *testing.T) {
	for _, to := range []int64{0, 5, 1000} {
		fs := NewMemFS()
		l := openLog(t, fs, testDir, testConfig(), nil)
		fill(t, l, 30, 0)
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := l.SetStartOffset(10); err != nil {
			t.Fatal(err)
		}
		if err := l.TruncateFullyAndStartAt(to); err != nil {
			t.Fatal(err)
		}
		if l.StartOffset() != to || l.EndOffset() != to || l.Size() != 0 || l.NumSegments() != 1 {
			t.Fatalf("to %d: start %d LEO %d size %d segments %d", to, l.StartOffset(), l.EndOffset(), l.Size(), l.NumSegments())
		}
		fs.Crash()
		l = openLog(t, fs, testDir, testConfig(), nil)
		if l.StartOffset() != to || l.EndOffset() != to || len(l.Gaps()) != 0 {
			t.Fatalf("to %d after a crash: start %d LEO %d gaps %v", to, l.StartOffset(), l.EndOffset(), l.Gaps())
		}
		_, info := appendSpec(t, l, batchSpec{records: 1})
		if info.FirstOffset != to {
			t.Fatalf("append after: %+v", info)
		}
		l.Close()
	}
}

// A crash at any point of a truncation leaves a log that is a prefix of
// the one before it, cut at the target or at a batch boundary above it,
// never with a hole: the segments the truncation removed must not come
// back behind the one it cut. A truncation that returned is durable.
func TestTruncationCrashAtEveryStep(t *testing.T) {
	for _, full := range []bool{false, true} {
		for n := 1; ; n++ {
			mem := NewMemFS()
			efs := NewErrorFS(mem)
			l := openLog(t, efs, testDir, testConfig(), nil)
			batches := fill(t, l, 40, 0)
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			before := bytes.Join(batches, nil)
			oldLEO := l.EndOffset()
			to := headersOf(t, batches[3])[0].BaseOffset
			in := efs.Inject(Fault{Ops: allOps, Nth: n, Sticky: true})
			var err error
			if full {
				to = 7
				err = l.TruncateFullyAndStartAt(to)
			} else {
				err = l.TruncateTo(to)
			}
			done := in.Failed() == 0
			efs.Heal()
			mem.Crash()
			l = openLog(t, mem, testDir, testConfig(), nil)
			got := readEverything(t, l)
			var ok bool
			if full {
				// Cut to nothing at to, or (the removals undone) the old
				// log, from the new start if it lies inside it.
				ok = (l.EndOffset() == to && len(got) == 0) || (l.EndOffset() == oldLEO && bytes.HasSuffix(before, got))
			} else {
				// A prefix of the old log ending at a batch boundary
				// at or above to.
				ok = l.StartOffset() == 0 && l.EndOffset() >= to && bytes.HasPrefix(before, got)
			}
			if !ok || len(l.Gaps()) != 0 {
				t.Fatalf("full %v, crash at op %d (%v): start %d LEO %d (%d bytes), gaps %v; want LEO %d or up to %d",
					full, n, err, l.StartOffset(), l.EndOffset(), len(got), l.Gaps(), to, oldLEO)
			}
			if done && l.EndOffset() != to {
				t.Fatalf("full %v: truncation completed, but a crash took it back to LEO %d", full, l.EndOffset())
			}
			l.Close()
			if done {
				break
			}
		}
	}
}
