//go:build invariants

package segment

import (
	"testing"

	"github.com/sluice-io/sluice/internal/invariants"
	"github.com/sluice-io/sluice/internal/invariants/invtest"
)

// These tests corrupt a log's in-memory state (or hand a checker a state
// no code path produces today) and expect the assertion guarding it to
// panic; the rest of the suite, run with the tag, shows they stay quiet
// when the state is right.

// filledLog is a log of several segments with unflushed appends.
func filledLog(t *testing.T) *Log {
	l := openLog(t, NewMemFS(), testDir, testConfig(), nil)
	fill(t, l, 40, 1000)
	if l.NumSegments() < 2 {
		t.Fatalf("want several segments, have %d", l.NumSegments())
	}
	return l
}

func TestInvariantLogShape(t *testing.T) {
	for _, c := range []struct {
		name, want string
		corrupt    func(l *Log)
	}{
		{"start beyond LEO", "log start", func(l *Log) { l.start = l.leo + 1 }},
		{"start below the first segment", "log start", func(l *Log) { l.start = l.segs[0].base - 1 }},
		{"recovery point beyond LEO", "recovery point", func(l *Log) { l.recoveryPoint = l.leo + 1 }},
		{"active segment not at LEO", "active segment", func(l *Log) { l.leo++ }},
		{"segment ends before its base", "ends at offset", func(l *Log) { l.segs[0].next = l.segs[0].base - 1 }},
		{"segments overlap", "overlaps", func(l *Log) { l.segs[0].next = l.segs[1].base + 1 }},
		{"size not the segments' sum", "size", func(l *Log) { l.size++ }},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := filledLog(t)
			l.mu.Lock()
			c.corrupt(l)
			l.mu.Unlock()
			// Flush asserts the shape once it advanced the recovery point.
			invtest.Expect(t, func() { _ = l.Flush() }, testDir, c.want)
		})
	}
}

func TestInvariantAppendStartsAtLEO(t *testing.T) {
	l := filledLog(t)
	l.mu.Lock()
	l.active().next += 2 // the active segment no longer ends at the LEO
	l.mu.Unlock()
	invtest.Expect(t, func() { appendSpec(t, l, batchSpec{records: 1, valSize: 10}) }, testDir, "appending at LEO")
}

func TestInvariantAppendMovesLEOByTheBatches(t *testing.T) {
	l := filledLog(t)
	leo := l.EndOffset()
	// What an append of two records at the LEO must leave behind, checked
	// against a log where nothing was appended.
	info := AppendInfo{FirstOffset: leo, LastOffset: leo + 1}
	invtest.Expect(t, func() { l.assertAppended(l.active(), info, leo, l.active().size, 100) }, testDir, "moved LEO")
}

func TestInvariantTrackAtSegmentEnd(t *testing.T) {
	l := filledLog(t)
	s := l.active()
	h := BatchHeader{BaseOffset: s.next, Length: minBatchLength}
	invtest.Expect(t, func() { s.track(h, s.size+1, 256) }, testDir, "tracked at position")
}

func TestInvariantReadWithinBound(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	l := openLog(t, NewMemFS(), testDir, cfg, nil)
	for range 10 {
		appendSpec(t, l, batchSpec{records: 1, valSize: 10})
	}
	// An index entry claiming the segment's end holds offset 1 lets the
	// read jump over every batch, the ones at and above its bound too.
	l.mu.Lock()
	s := l.active()
	s.index = offsetIndex(nil).add(1, uint32(s.size))
	l.mu.Unlock()
	invtest.Expect(t, func() { _, _ = l.Read(0, 1<<20, 3, false) }, testDir, "read at 0 below 3")
}

// recoveredLog hand-builds what recovery could leave behind: segments at
// the given [base, next) ranges of 100 bytes each, the log end at the last.
func recoveredLog(ranges ...[2]int64) *Log {
	l := &Log{dir: testDir}
	for _, r := range ranges {
		l.segs = append(l.segs, &segment{base: r[0], next: r[1], size: 100, dir: testDir})
		l.size += 100
	}
	l.start, l.leo = ranges[0][0], ranges[len(ranges)-1][1]
	return l
}

func TestInvariantRecovered(t *testing.T) {
	l := recoveredLog([2]int64{0, 10}, [2]int64{20, 30})
	l.gaps = []Gap{{From: 10, To: 20}}
	if v := invariants.Catch(l.assertRecovered); v != nil {
		t.Fatalf("a sound recovered log trips %v", v)
	}

	l = recoveredLog([2]int64{0, 10}, [2]int64{5, 30})
	invtest.Expect(t, l.assertRecovered, testDir, "overlaps segment 5")

	l = recoveredLog([2]int64{0, 10}, [2]int64{20, 30})
	l.gaps = []Gap{{From: 10, To: 25}}
	invtest.Expect(t, l.assertRecovered, testDir, "gap [10, 25) overlaps segment 20")

	l = recoveredLog([2]int64{0, 10}, [2]int64{20, 30})
	l.gaps = []Gap{{From: 10, To: 10}}
	invtest.Expect(t, l.assertRecovered, testDir, "empty or out of order")

	l = recoveredLog([2]int64{0, 10})
	l.segs[0].index = offsetIndex(nil).add(12, 50) // offset 12 of a segment ending at 10
	invtest.Expect(t, l.assertRecovered, testDir, "beyond log")

	l = recoveredLog([2]int64{0, 10}, [2]int64{20, 30})
	l.segs[0].times = timeIndex(nil).add(5, 25) // offset 25 is in the next segment
	invtest.Expect(t, l.assertRecovered, testDir, "out of order or range")
}
