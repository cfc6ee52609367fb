package segment

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"testing"
)

// openLogged opens the log in testDir with its log lines captured.
func openLogged(t *testing.T, fs FS) (*Log, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	l, err := Open(fs, testDir, testConfig(), newClock().now, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l, &buf
}

// closedLog fills a log of several segments and closes it cleanly, so the
// recovery point is the log end and every segment is "flushed". bySeg groups
// the stored batches by the base of the segment holding them.
func closedLog(t *testing.T, fs FS) (batches [][]byte, bySeg map[int64][][]byte, bases []int64, leo int64) {
	t.Helper()
	l := openLog(t, fs, testDir, testConfig(), nil)
	batches = fill(t, l, 120, 1000)
	for _, s := range l.segs {
		bases = append(bases, s.base)
	}
	bySeg = map[int64][][]byte{}
	for _, b := range batches {
		base := l.segs[l.findSegment(headersOf(t, b)[0].BaseOffset)].base
		bySeg[base] = append(bySeg[base], b)
	}
	leo = l.EndOffset()
	if len(bases) < 6 {
		t.Fatalf("only %d segments", len(bases))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return batches, bySeg, bases, leo
}

// checkAppendAt appends one batch and checks it got offset want.
func checkAppendAt(t *testing.T, l *Log, want int64) {
	t.Helper()
	if _, info := appendSpec(t, l, batchSpec{records: 1}); info.FirstOffset != want {
		t.Fatalf("next append got offset %d, want %d (offsets reused or skipped)", info.FirstOffset, want)
	}
}

// A middle segment's .log cut in half below the recovery point used to make
// recovery truncate it and delete every later segment, and the next append
// reused offsets. Now only the damaged range is lost.
func TestRecoveryMiddleSegmentCutKeepsLaterSegments(t *testing.T) {
	fs := NewMemFS()
	_, bySeg, bases, leo := closedLog(t, fs)

	victim := bases[len(bases)/2]
	name := segName(testDir, victim, ".log")
	data, _ := fs.fileData(name)
	fs.setFileData(name, data[:len(data)/2])

	l, logs := openLogged(t, fs)
	if l.NumSegments() != len(bases) || l.EndOffset() != leo {
		t.Fatalf("after recovery: %d segments, LEO %d; want %d and %d", l.NumSegments(), l.EndOffset(), len(bases), leo)
	}
	for _, base := range bases {
		if base != victim {
			checkReadEveryOffset(t, l, bySeg[base])
		}
	}
	gaps := l.Gaps()
	if len(gaps) != 1 || gaps[0].File != name || gaps[0].To != bases[len(bases)/2+1] || gaps[0].From <= victim {
		t.Fatalf("gaps %+v, want one in %s ending at %d", gaps, name, bases[len(bases)/2+1])
	}
	out := logs.String()
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, name) || !strings.Contains(out, "first_lost_offset=") {
		t.Fatalf("damage not logged at ERROR with file and offsets:\n%s", out)
	}
	// A read inside the gap moves on to the next data.
	r, err := l.Read(gaps[0].From, 1, math.MaxInt64, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := readBytes(t, r); len(got) == 0 || headersOf(t, got)[0].BaseOffset != gaps[0].To {
		t.Fatalf("read in the gap returned %d bytes, want the batch at %d", len(got), gaps[0].To)
	}
	r.Release()
	// The damaged file keeps its bytes for an operator.
	if d, _ := fs.fileData(name); len(d) != len(data)/2 {
		t.Fatalf("damaged flushed segment was rewritten: %d bytes, had %d", len(d), len(data)/2)
	}
	checkAppendAt(t, l, leo)
	l.Close()

	// The same holds at every later start.
	l = openLog(t, fs, testDir, testConfig(), nil)
	defer l.Close()
	if l.EndOffset() != leo+1 || len(l.Gaps()) != 1 {
		t.Fatalf("second restart: LEO %d gaps %d", l.EndOffset(), len(l.Gaps()))
	}
	checkReadEveryOffset(t, l, bySeg[bases[len(bases)-1]])
}

// The last segment damaged below the recovery point: offsets up to the
// recovery point were handed out, so the log goes on from there.
func TestRecoveryLastSegmentCutDoesNotReuseOffsets(t *testing.T) {
	fs := NewMemFS()
	_, _, bases, leo := closedLog(t, fs)
	name := segName(testDir, bases[len(bases)-1], ".log")
	data, _ := fs.fileData(name)
	fs.setFileData(name, data[:len(data)/2])

	l, logs := openLogged(t, fs)
	if l.EndOffset() != leo || len(l.Gaps()) != 1 || l.Gaps()[0].To != leo {
		t.Fatalf("LEO %d gaps %+v, want LEO %d and a gap up to it", l.EndOffset(), l.Gaps(), leo)
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("no ERROR logged:\n%s", logs.String())
	}
	checkAppendAt(t, l, leo)
	l.Close()
	l = openLog(t, fs, testDir, testConfig(), nil)
	defer l.Close()
	checkAppendAt(t, l, leo+1)
}

// A flipped bit in a base offset (outside the CRC) made a batch look like
// it overlapped the next segment, and recovery dropped every later segment.
func TestRecoveryBadBaseOffsetKeepsLaterSegments(t *testing.T) {
	fs := NewMemFS()
	_, bySeg, bases, leo := closedLog(t, fs)
	victim := bases[2]
	name := segName(testDir, victim, ".log")
	data, _ := fs.fileData(name)
	last := len(data) - len(bySeg[victim][len(bySeg[victim])-1])
	binary.BigEndian.PutUint64(data[last:], uint64(leo+1000))
	fs.setFileData(name, data)

	l, _ := openLogged(t, fs)
	defer l.Close()
	if l.NumSegments() != len(bases) || l.EndOffset() != leo || len(l.Gaps()) != 1 {
		t.Fatalf("%d segments, LEO %d, gaps %+v; want %d, %d and one gap", l.NumSegments(), l.EndOffset(), l.Gaps(), len(bases), leo)
	}
	for _, base := range bases[3:] {
		checkReadEveryOffset(t, l, bySeg[base])
	}
}

// A log-start-offset checkpoint beyond the log end used to delete every
// segment. It is now ignored with a warning.
func TestRecoveryIgnoresLogStartBeyondEnd(t *testing.T) {
	fs := NewMemFS()
	batches, _, bases, leo := closedLog(t, fs)
	fs.setFileData(testDir+"/"+logStartOffsetFile, []byte("99999999\n"))

	l, logs := openLogged(t, fs)
	defer l.Close()
	if l.NumSegments() != len(bases) || l.StartOffset() != 0 || l.EndOffset() != leo {
		t.Fatalf("%d segments, start %d, LEO %d; want %d, 0, %d", l.NumSegments(), l.StartOffset(), l.EndOffset(), len(bases), leo)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "99999999") {
		t.Fatalf("ignored checkpoint not reported:\n%s", logs.String())
	}
	checkReadEveryOffset(t, l, batches)
	checkAppendAt(t, l, leo)
}

// After a clean stop the active segment is trusted without reading it whole
// (its indexes check out), but the batches after its last index entry, the
// ones written last, are still CRC-checked: one damaged there after the stop
// becomes a reported gap, never a batch served to consumers.
func TestCleanReopenChecksTheLastBatches(t *testing.T) {
	fs := NewMemFS()
	_, _, bases, leo := closedLog(t, fs)
	name := segName(testDir, bases[len(bases)-1], ".log")
	data, _ := fs.fileData(name)
	data = bytes.Clone(data)
	data[len(data)-3] ^= 0xff // inside the last batch's records
	fs.setFileData(name, data)

	l, logs := openLogged(t, fs)
	defer l.Close()
	gaps := l.Gaps()
	if l.EndOffset() != leo || len(gaps) != 1 || gaps[0].To != leo {
		t.Fatalf("LEO %d gaps %+v, want LEO %d and a gap up to it", l.EndOffset(), gaps, leo)
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("no ERROR logged:\n%s", logs.String())
	}
}

// A flushed middle segment that lost its last batches exactly at a batch
// boundary passes every check of its own (indexes, CRCs), and an empty
// middle segment is dropped: both used to lose offsets silently. Now the
// offsets between such a segment and the next are a gap, logged at ERROR,
// and everything else is served.
func TestRecoveryReportsHolesBetweenSegments(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(t *testing.T, fs *MemFS, base int64, batches [][]byte)
		from func(base int64, batches [][]byte) int64
	}{
		{"cut at a batch boundary", func(t *testing.T, fs *MemFS, base int64, batches [][]byte) {
			name := segName(testDir, base, ".log")
			data, _ := fs.fileData(name)
			last := batches[len(batches)-1]
			fs.setFileData(name, data[:len(data)-len(last)])
			// The index may point at the cut batch: drop it so the
			// segment is rebuilt from a scan that finds nothing wrong.
			fs.setFileData(segName(testDir, base, ".index"), nil)
		}, func(base int64, batches [][]byte) int64 {
			return headersOf(t, batches[len(batches)-1])[0].BaseOffset
		}},
		{"emptied", func(t *testing.T, fs *MemFS, base int64, _ [][]byte) {
			fs.setFileData(segName(testDir, base, ".log"), nil)
			fs.setFileData(segName(testDir, base, ".index"), nil)
			fs.setFileData(segName(testDir, base, ".timeindex"), nil)
		}, func(base int64, _ [][]byte) int64 { return base }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := NewMemFS()
			_, bySeg, bases, leo := closedLog(t, fs)
			mid := len(bases) / 2
			victim := bases[mid]
			tc.cut(t, fs, victim, bySeg[victim])
			from := tc.from(victim, bySeg[victim])

			l, logs := openLogged(t, fs)
			defer l.Close()
			if l.EndOffset() != leo {
				t.Fatalf("LEO %d, want %d", l.EndOffset(), leo)
			}
			gaps := l.Gaps()
			if len(gaps) != 1 || gaps[0].From != from || gaps[0].To != bases[mid+1] {
				t.Fatalf("gaps %+v, want one [%d, %d)", gaps, from, bases[mid+1])
			}
			if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "first_lost_offset="+strconv.FormatInt(from, 10)) {
				t.Fatalf("hole not logged at ERROR with its offsets:\n%s", out)
			}
			for _, base := range bases[mid+1:] {
				checkReadEveryOffset(t, l, bySeg[base])
			}
		})
	}
}
