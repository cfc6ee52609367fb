package segment

import (
	"testing"
)

// Truncating a follower's copy of a compacted log to an offset inside a
// gap, or inside a batch after a gap, leaves the log end where the kept
// batches end: never the next batch's base (offsets the log never held)
// and never an offset a reopen would not find again.
func TestTruncateIntoAGap(t *testing.T) {
	for _, tc := range []struct {
		name    string
		to, leo int64
	}{
		{"inside the gap between batches", 20, 13},
		{"at the batch after the gap", 30, 13},
		{"inside the batch after a gap", 11, 3},
		{"at a batch boundary with no gap", 2, 2},
		{"inside the first batch", 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := NewMemFS()
			l := openLog(t, fs, testDir, testConfig(), nil)
			// Batches 0..1, 2..2, a gap 3..9, 10..12, a gap 13..29, 30..31.
			for _, b := range [][]byte{compactedBatch(t, 0, 2, 10), compactedBatch(t, 2, 1, 10),
				compactedBatch(t, 10, 3, 10), compactedBatch(t, 30, 2, 10)} {
				buf, hs := fetched(t, b)
				if _, err := l.AppendAsFollower(buf, hs); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.TruncateTo(tc.to); err != nil {
				t.Fatal(err)
			}
			if got := l.EndOffset(); got != tc.leo {
				t.Fatalf("log end after truncating to %d: %d, want %d", tc.to, got, tc.leo)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openLog(t, fs, testDir, testConfig(), nil)
			defer l.Close()
			if got := l.EndOffset(); got != tc.leo {
				t.Fatalf("log end after a reopen: %d, want %d as before", got, tc.leo)
			}
		})
	}
}
