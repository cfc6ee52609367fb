package segment

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
)

// compactedBatch is one batch of a compacted leader's log: records
// records from base, leader epoch 1.
func compactedBatch(t *testing.T, base int64, records, valSize int) []byte {
	t.Helper()
	b := makeBatch(t, batchSpec{records: records, valSize: valSize, ts: base})
	SetBaseOffset(b, base)
	SetPartitionLeaderEpoch(b, 1)
	return b
}

// compactedLog returns n batches whose offsets skip a random number (often
// none) before each, as a compacted leader's log does, from first on.
func compactedLog(t *testing.T, rng *rand.Rand, first int64, n int) [][]byte {
	t.Helper()
	var out [][]byte
	next := first
	for range n {
		if rng.IntN(3) > 0 {
			next += int64(rng.IntN(50))
		}
		b := compactedBatch(t, next, 1+rng.IntN(4), 20+rng.IntN(200))
		out = append(out, b)
		next = headersOf(t, b)[0].LastOffset() + 1
	}
	return out
}

// fetched joins batches into one fetched chunk and validates it as a
// follower does.
func fetched(t *testing.T, bs ...[]byte) ([]byte, []BatchHeader) {
	t.Helper()
	b := bytes.Join(bs, nil)
	hs, err := ValidateFetchedBatches(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, hs
}

// checkGapReads reads at every offset from the log start to the log end:
// an offset a batch holds returns that batch, one in a gap the next batch
// (what a consumer fetching there must get), byte for byte.
func checkGapReads(t *testing.T, l *Log, batches [][]byte) {
	t.Helper()
	i := 0
	for off := l.StartOffset(); off < l.EndOffset(); off++ {
		for i < len(batches) && headersOf(t, batches[i])[0].LastOffset() < off {
			i++
		}
		r, err := l.Read(off, 1, math.MaxInt64, true)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		got := readBytes(t, r)
		r.Release()
		if i == len(batches) || !bytes.Equal(got, batches[i]) {
			t.Fatalf("Read(%d) returned %d bytes, want the batch %d of %d", off, len(got), i, len(batches))
		}
		// The position after it: its end, or past the gap after it.
		next := l.EndOffset()
		if i+1 < len(batches) {
			next = headersOf(t, batches[i+1])[0].BaseOffset
		}
		if r.Next < headersOf(t, batches[i])[0].LastOffset()+1 || r.Next > next {
			t.Fatalf("Read(%d): next %d", off, r.Next)
		}
	}
}

// checkGapTimestamps looks up every batch's max timestamp (they grow
// with the offsets): the time index must find that batch across gaps.
func checkGapTimestamps(t *testing.T, l *Log, batches [][]byte) {
	t.Helper()
	for _, b := range batches {
		h := headersOf(t, b)[0]
		off, ts, ok := l.FindOffsetByTimestamp(h.MaxTimestamp)
		if !ok || off != max(h.BaseOffset, l.StartOffset()) || ts != h.MaxTimestamp {
			t.Fatalf("FindOffsetByTimestamp(%d) = %d, %d, %v; want the batch at %d", h.MaxTimestamp, off, ts, ok, h.BaseOffset)
		}
	}
}

// segmentsContiguous fails unless each segment starts where the one
// before it ends (recovery reports anything between them as lost), and
// returns how many start with a gap: their first batch above their base.
func segmentsContiguous(t *testing.T, l *Log) (gapStarts int) {
	t.Helper()
	l.mu.RLock()
	defer l.mu.RUnlock()
	var buf [BatchHeaderSize]byte
	for i, s := range l.segs {
		if i > 0 && l.segs[i-1].next != s.base {
			t.Fatalf("segment %d ends at %d, the next starts at %d", l.segs[i-1].base, l.segs[i-1].next, s.base)
		}
		if s.size > 0 {
			h, err := s.readHeader(&buf, 0)
			if err != nil {
				t.Fatal(err)
			}
			if h.BaseOffset > s.base {
				gapStarts++
			}
		}
	}
	return gapStarts
}

// A follower takes a compacted leader's batches with their offset gaps,
// within one fetch and between fetches, and across segment rolls; reads
// in a gap return the next batch; a restart, with the indexes or with a
// full scan, finds the same log and reports no damage.
func TestAppendAsFollowerAcrossGaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 18))
	cfg := testConfig()
	cfg.SegmentBytes, cfg.IndexIntervalBytes = 1500, 64
	fs := NewMemFS()
	f := openLog(t, fs, testDir, cfg, nil)
	batches := compactedLog(t, rng, 5, 120) // a gap before the first, too
	for i := 0; i < len(batches); {
		n := min(1+rng.IntN(3), len(batches)-i)
		b, hs := fetched(t, batches[i:i+n]...)
		leo := f.EndOffset()
		info, err := f.AppendAsFollower(b, hs)
		if err != nil {
			t.Fatal(err)
		}
		last := hs[n-1].LastOffset()
		if info.FirstOffset != hs[0].BaseOffset || info.LastOffset != last || f.EndOffset() != last+1 || info.LogAppendTime != -1 {
			t.Fatalf("append of %d..%d at LEO %d: %+v, LEO %d", hs[0].BaseOffset, last, leo, info, f.EndOffset())
		}
		i += n
	}
	if f.NumSegments() < 5 {
		t.Fatalf("want rolls, have %d segments", f.NumSegments())
	}
	if segmentsContiguous(t, f) == 0 {
		t.Fatal("no segment rolled at a gap; the test does not test that")
	}
	want := bytes.Join(batches, nil)
	if got := readEverything(t, f); !bytes.Equal(got, want) {
		t.Fatal("follower's log differs from the leader's batches")
	}
	checkGapReads(t, f, batches)
	checkGapTimestamps(t, f, batches)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	for _, scan := range []bool{false, true} {
		if scan {
			// No recovery point: every segment is scanned batch by batch.
			if err := fs.Remove(testDir + "/" + recoveryPointFile); err != nil {
				t.Fatal(err)
			}
		}
		f = openLog(t, fs, testDir, cfg, nil)
		if len(f.Gaps()) != 0 {
			t.Fatalf("scan %v: a leader's gaps reported as damage: %+v", scan, f.Gaps())
		}
		if got := readEverything(t, f); !bytes.Equal(got, want) || f.EndOffset() != headersOf(t, batches[len(batches)-1])[0].LastOffset()+1 {
			t.Fatalf("scan %v: log differs after a reopen, LEO %d", scan, f.EndOffset())
		}
		segmentsContiguous(t, f)
		checkGapReads(t, f, batches)
		checkGapTimestamps(t, f, batches)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A crash at any point of a follower append that rolls a segment at a gap
// leaves the log before it or after it, never a hole reported as damage;
// the append can be repeated after the restart, and an append that
// returned and flushed is durable.
func TestFollowerGapAppendCrashAtEveryStep(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1000
	before := [][]byte{compactedBatch(t, 0, 3, 250), compactedBatch(t, 3, 2, 250)}
	gap := compactedBatch(t, 40, 2, 400) // does not fit: rolls at 5
	for n := 1; ; n++ {
		mem := NewMemFS()
		efs := NewErrorFS(mem)
		f := openLog(t, efs, testDir, cfg, nil)
		b, hs := fetched(t, before...)
		if _, err := f.AppendAsFollower(b, hs); err != nil {
			t.Fatal(err)
		}
		if err := f.Flush(); err != nil {
			t.Fatal(err)
		}
		in := efs.Inject(Fault{Ops: allOps, Nth: n, Sticky: true})
		b, hs = fetched(t, gap)
		_, err := f.AppendAsFollower(b, hs)
		if err == nil {
			err = f.Flush()
		}
		done := in.Failed() == 0
		if done && (f.NumSegments() != 2 || f.active().base != 5) {
			t.Fatalf("the gap append did not roll at the old log end: %d segments, active at %d", f.NumSegments(), f.active().base)
		}
		efs.Heal()
		mem.Crash()
		f = openLog(t, mem, testDir, cfg, nil)
		got := readEverything(t, f)
		old, full := bytes.Join(before, nil), bytes.Join(append(before[:2:2], gap), nil)
		ok := (f.EndOffset() == 5 && bytes.Equal(got, old)) || (f.EndOffset() == 42 && bytes.Equal(got, full))
		if !ok || len(f.Gaps()) != 0 {
			t.Fatalf("crash at op %d (%v): LEO %d (%d bytes), gaps %+v", n, err, f.EndOffset(), len(got), f.Gaps())
		}
		if done && f.EndOffset() != 42 {
			t.Fatalf("flushed gap append lost by a crash: LEO %d", f.EndOffset())
		}
		if f.EndOffset() == 5 {
			b, hs = fetched(t, gap)
			if _, err := f.AppendAsFollower(b, hs); err != nil {
				t.Fatalf("crash at op %d: repeating the append: %v", n, err)
			}
		}
		segmentsContiguous(t, f)
		checkGapReads(t, f, append(before[:2:2], gap))
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		f = openLog(t, mem, testDir, cfg, nil)
		if len(f.Gaps()) != 0 || f.EndOffset() != 42 {
			t.Fatalf("crash at op %d, then a restart: LEO %d, gaps %+v", n, f.EndOffset(), f.Gaps())
		}
		f.Close()
		if done {
			break
		}
	}
}

// A gap wider than a segment's 32-bit offset range cannot start at the
// old log end: the new segment starts at the batch. The log serves it
// all the same; after a restart the offsets between the segments are
// reported as a hole (a leader, whose segments span fewer offsets, never
// sends such a gap).
func TestFollowerGapWiderThanASegment(t *testing.T) {
	fs := NewMemFS()
	f := openLog(t, fs, testDir, testConfig(), nil)
	far := int64(5_000_000_000)
	batches := [][]byte{compactedBatch(t, 0, 3, 10), compactedBatch(t, far, 2, 10)}
	for _, b := range batches {
		b, hs := fetched(t, b)
		if _, err := f.AppendAsFollower(b, hs); err != nil {
			t.Fatal(err)
		}
	}
	if f.EndOffset() != far+2 || f.NumSegments() != 2 || f.active().base != far {
		t.Fatalf("LEO %d, %d segments, active at %d", f.EndOffset(), f.NumSegments(), f.active().base)
	}
	for _, off := range []int64{1, 3, far - 1, far + 1} {
		r, err := f.Read(off, 1, math.MaxInt64, true)
		if err != nil {
			t.Fatal(err)
		}
		got := readBytes(t, r)
		r.Release()
		want := batches[0]
		if off >= 3 {
			want = batches[1]
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Read(%d): %d bytes", off, len(got))
		}
	}
	f.Close()
	f = openLog(t, fs, testDir, testConfig(), nil)
	defer f.Close()
	if g := f.Gaps(); f.EndOffset() != far+2 || len(g) != 1 || g[0].From != 3 || g[0].To != far {
		t.Fatalf("after a restart: LEO %d, gaps %+v", f.EndOffset(), g)
	}
}
