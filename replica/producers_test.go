package replica

import (
	"errors"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-io/sluice/segment"
)

// pstate returns an empty producer state on a fresh MemFS.
func pstate(t *testing.T) (*segment.MemFS, *ProducerState) {
	t.Helper()
	fs := segment.NewMemFS()
	if err := fs.MkdirAll(testDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return fs, NewProducerState(fs, testDir, 0, testLogger())
}

// hdr is a header without the cost of encoding a batch.
func hdr(pid int64, epoch int16, seq int32, n int, ts int64) segment.BatchHeader {
	return segment.BatchHeader{
		Magic: 2, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq,
		LastOffsetDelta: int32(n - 1), NumRecords: int32(n), FirstTimestamp: ts, MaxTimestamp: ts,
	}
}

// appendTo checks and, if accepted, applies h at offset *next.
func appendTo(t *testing.T, s *ProducerState, next *int64, h segment.BatchHeader) (*BatchMeta, error) {
	t.Helper()
	dup, err := s.Check(h)
	if err != nil || dup != nil {
		return dup, err
	}
	first := *next
	last := first + int64(h.LastOffsetDelta)
	s.Update(h, first, last)
	*next = last + 1
	return nil, nil
}

func mustAccept(t *testing.T, s *ProducerState, next *int64, h segment.BatchHeader) {
	t.Helper()
	dup, err := appendTo(t, s, next, h)
	if err != nil || dup != nil {
		t.Fatalf("batch pid=%d epoch=%d seq=%d: dup=%v err=%v, want accepted", h.ProducerID, h.ProducerEpoch, h.BaseSequence, dup, err)
	}
}

func TestProducerNoIDSkipsChecks(t *testing.T) {
	_, s := pstate(t)
	var next int64
	for i := 0; i < 3; i++ {
		mustAccept(t, s, &next, hdr(-1, -1, -1, 2, 0))
	}
	if s.Len() != 0 {
		t.Fatalf("state for non-idempotent batches: %d", s.Len())
	}
}

func TestProducerSequenceRules(t *testing.T) {
	_, s := pstate(t)
	var next int64
	// Unknown producer: accepted with any sequence (KIP-360).
	mustAccept(t, s, &next, hdr(7, 3, 100, 5, 1)) // seq 100..104
	mustAccept(t, s, &next, hdr(7, 3, 105, 1, 2))

	// Gap and going backwards (not a cached batch) are out of order.
	for _, seq := range []int32{107, 103, 0} {
		if _, err := s.Check(hdr(7, 3, seq, 1, 3)); !errors.Is(err, ErrOutOfOrderSequence) {
			t.Fatalf("seq %d: err = %v, want out of order", seq, err)
		}
	}
	// Older epoch: fenced.
	if _, err := s.Check(hdr(7, 2, 106, 1, 3)); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch: err = %v", err)
	}
	// Newer epoch must start at 0.
	if _, err := s.Check(hdr(7, 4, 106, 1, 3)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch at 106: err = %v", err)
	}
	mustAccept(t, s, &next, hdr(7, 4, 0, 2, 4))
	// The old epoch's batches are no longer duplicates (nor acceptable).
	if _, err := s.Check(hdr(7, 3, 105, 1, 2)); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("retry from fenced epoch: err = %v", err)
	}
	mustAccept(t, s, &next, hdr(7, 4, 2, 1, 5))
	// Other producers are independent.
	mustAccept(t, s, &next, hdr(8, 0, 0, 1, 5))
	e := s.Entry(7)
	if e == nil || e.Epoch != 4 || len(e.Batches) != 2 || e.LastTimestamp != 5 {
		t.Fatalf("entry = %+v", e)
	}
}

func TestProducerSequenceWraps(t *testing.T) {
	_, s := pstate(t)
	var next int64
	mustAccept(t, s, &next, hdr(1, 0, math.MaxInt32-1, 2, 0)) // MaxInt32-1..MaxInt32
	if _, err := s.Check(hdr(1, 0, math.MaxInt32, 1, 0)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("seq MaxInt32 again: err = %v", err)
	}
	mustAccept(t, s, &next, hdr(1, 0, 0, 3, 0)) // wraps to 0..2

	// A batch spanning the wrap: MaxInt32, 0; next is 1.
	mustAccept(t, s, &next, hdr(2, 0, math.MaxInt32, 2, 0))
	if e := s.Entry(2); e.Batches[0].LastSeq != 0 {
		t.Fatalf("last seq = %d, want 0", e.Batches[0].LastSeq)
	}
	mustAccept(t, s, &next, hdr(2, 0, 1, 1, 0))
}

func TestProducerDuplicates(t *testing.T) {
	_, s := pstate(t)
	var next int64 = 100
	// Six batches of 2 records: seqs 0-1, 2-3, ..., 10-11 at offsets 100.., each with its own timestamp.
	for i := int32(0); i < 6; i++ {
		mustAccept(t, s, &next, hdr(9, 1, 2*i, 2, int64(1000+i)))
	}
	// The last five are recognised, with their original offsets.
	for i := int32(1); i < 6; i++ {
		dup, err := s.Check(hdr(9, 1, 2*i, 2, 0))
		if err != nil || dup == nil {
			t.Fatalf("retry of batch %d: dup=%v err=%v", i, dup, err)
		}
		want := BatchMeta{FirstSeq: 2 * i, LastSeq: 2*i + 1, FirstOffset: 100 + 2*int64(i), LastOffset: 101 + 2*int64(i), MaxTimestamp: int64(1000 + i)}
		if *dup != want {
			t.Fatalf("retry of batch %d: meta %+v, want %+v", i, *dup, want)
		}
	}
	// The sixth back is forgotten: out of order, not a duplicate.
	if dup, err := s.Check(hdr(9, 1, 0, 2, 0)); dup != nil || !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("retry of 6th batch back: dup=%v err=%v", dup, err)
	}
	// Same first sequence, different last: not a duplicate.
	if dup, err := s.Check(hdr(9, 1, 10, 1, 0)); dup != nil || !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("partial overlap: dup=%v err=%v", dup, err)
	}
	// Same sequences, other epoch: not a duplicate.
	if dup, err := s.Check(hdr(9, 2, 10, 2, 0)); dup != nil || !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("other epoch: dup=%v err=%v", dup, err)
	}
}

func TestProducerCheckAllChains(t *testing.T) {
	_, s := pstate(t)
	var next int64
	mustAccept(t, s, &next, hdr(3, 0, 0, 1, 0))
	// Two batches in one request: the second follows the first.
	if dup, err := s.CheckAll([]segment.BatchHeader{hdr(3, 0, 1, 2, 0), hdr(3, 0, 3, 1, 0)}); dup != nil || err != nil {
		t.Fatalf("chained batches: dup=%v err=%v", dup, err)
	}
	// A gap in the second rejects the whole request.
	if _, err := s.CheckAll([]segment.BatchHeader{hdr(3, 0, 1, 2, 0), hdr(3, 0, 4, 1, 0)}); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap in second batch: err = %v", err)
	}
	// The same batch twice in one request is not a retry.
	if _, err := s.CheckAll([]segment.BatchHeader{hdr(3, 0, 1, 1, 0), hdr(3, 0, 1, 1, 0)}); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("repeated batch: err = %v", err)
	}
	// CheckAll changed nothing.
	if e := s.Entry(3); len(e.Batches) != 1 {
		t.Fatalf("CheckAll mutated state: %+v", e)
	}
}

func TestProducerExpiry(t *testing.T) {
	_, s := pstate(t)
	s.SetExpirationMs(1000)
	var next int64
	mustAccept(t, s, &next, hdr(1, 0, 0, 1, 10_000))
	mustAccept(t, s, &next, hdr(2, 0, 0, 1, 10_500))
	if n := s.ExpireProducers(time.UnixMilli(10_999)); n != 0 {
		t.Fatalf("expired %d too early", n)
	}
	if n := s.ExpireProducers(time.UnixMilli(11_000)); n != 1 || s.Entry(1) != nil || s.Entry(2) == nil {
		t.Fatalf("expired %d; want only producer 1", n)
	}
	// An expired producer is unknown again, so any sequence is accepted.
	mustAccept(t, s, &next, hdr(1, 0, 57, 1, 20_000))
}

func TestProducerSnapshotRoundTrip(t *testing.T) {
	fs, s := pstate(t)
	var next int64
	for i := int32(0); i < 7; i++ {
		mustAccept(t, s, &next, hdr(1, 2, 3*i, 3, int64(i)))
	}
	mustAccept(t, s, &next, hdr(5, 0, math.MaxInt32, 2, 99))
	if err := s.WriteSnapshot(next); err != nil {
		t.Fatal(err)
	}
	fs.Crash() // the snapshot must be durable on its own

	s2 := NewProducerState(fs, testDir, 0, testLogger())
	off, err := s2.Load(next)
	if err != nil || off != next {
		t.Fatalf("Load = %d, %v; want %d", off, err, next)
	}
	for _, pid := range []int64{1, 5} {
		a, b := s.Entry(pid), s2.Entry(pid)
		if a == nil || b == nil || a.Epoch != b.Epoch || a.LastTimestamp != b.LastTimestamp || len(a.Batches) != len(b.Batches) {
			t.Fatalf("producer %d: %+v vs %+v", pid, a, b)
		}
		for i := range a.Batches {
			if a.Batches[i] != b.Batches[i] {
				t.Fatalf("producer %d batch %d: %+v vs %+v", pid, i, a.Batches[i], b.Batches[i])
			}
		}
	}
	if dup, _ := s2.Check(hdr(1, 2, 18, 3, 0)); dup == nil || dup.FirstOffset != 18 {
		t.Fatalf("duplicate after reload: %+v", dup)
	}
}

func TestProducerSnapshotSelection(t *testing.T) {
	fs, s := pstate(t)
	var next int64
	for i := int32(0); i < 4; i++ {
		mustAccept(t, s, &next, hdr(1, 0, i, 1, 0))
		if err := s.WriteSnapshot(next); err != nil {
			t.Fatal(err)
		}
	}
	// Only the newest two are kept.
	if got := snapshotFiles(t, fs); len(got) != 2 || got[0] != SnapshotName(3) || got[1] != SnapshotName(4) {
		t.Fatalf("snapshots = %v", got)
	}

	// Corrupt the newest: Load falls back to the older one and deletes it.
	path := filepath.Join(testDir, SnapshotName(4))
	data := readFile(t, fs, path)
	data[len(data)-1] ^= 0xff
	writeFile(t, fs, path, data)
	s2 := NewProducerState(fs, testDir, 0, testLogger())
	off, err := s2.Load(10)
	if err != nil || off != 3 {
		t.Fatalf("Load = %d, %v; want 3", off, err)
	}
	if e := s2.Entry(1); e == nil || e.Batches[len(e.Batches)-1].LastSeq != 2 {
		t.Fatalf("state from snapshot 3: %+v", e)
	}
	if got := snapshotFiles(t, fs); len(got) != 1 || got[0] != SnapshotName(3) {
		t.Fatalf("snapshots after corrupt one = %v", got)
	}

	// A snapshot beyond the log end (log lost its tail) is deleted, not used.
	if err := s.WriteSnapshot(4); err != nil {
		t.Fatal(err)
	}
	s3 := NewProducerState(fs, testDir, 0, testLogger())
	if off, err := s3.Load(3); err != nil || off != 3 {
		t.Fatalf("Load(3) = %d, %v", off, err)
	}
	if got := snapshotFiles(t, fs); len(got) != 1 || got[0] != SnapshotName(3) {
		t.Fatalf("snapshots = %v", got)
	}
	// Nothing usable: empty state, replay from 0.
	s4 := NewProducerState(fs, testDir, 0, testLogger())
	if off, err := s4.Load(2); err != nil || off != 0 || s4.Len() != 0 {
		t.Fatalf("Load(2) = %d, %v, %d producers", off, err, s4.Len())
	}
}

func TestDecodeSnapshotRejectsDamage(t *testing.T) {
	_, s := pstate(t)
	var next int64
	mustAccept(t, s, &next, hdr(1, 0, 0, 1, 0))
	good := s.encodeSnapshot(next)
	if _, _, err := decodeSnapshot(good); err != nil {
		t.Fatalf("good snapshot: %v", err)
	}
	for i := range good {
		bad := append([]byte(nil), good...)
		bad[i] ^= 0x40
		if _, _, err := decodeSnapshot(bad); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	for n := 0; n < len(good); n++ {
		if _, _, err := decodeSnapshot(good[:n]); err == nil {
			t.Fatalf("truncated to %d accepted", n)
		}
	}
}

func snapshotFiles(t *testing.T, fs segment.FS) []string {
	t.Helper()
	names, err := fs.ReadDir(testDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if filepath.Ext(n) == snapshotSuffix {
			out = append(out, n)
		}
	}
	return out
}
