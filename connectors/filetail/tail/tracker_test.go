package tail

import (
	"strings"
	"testing"
)

func acts(as []Action) string {
	var out []string
	for _, a := range as {
		s := a.Kind.String() + " " + string(a.ID) + " " + a.Path
		if a.Kind == Open {
			s += "@" + itoa(a.Pos)
			if a.FromEnd {
				s += "(end)"
			}
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func ob(path string, id FileID, size int64, ino uint64) Observation {
	return Observation{Path: path, ID: id, Size: size, Dev: 1, Ino: ino}
}

func TestTrackerRules(t *testing.T) {
	type step struct {
		obs  []Observation
		emit map[FileID]int64 // positions read before this scan
		want string
	}
	for _, tc := range []struct {
		name      string
		fromEnd   bool
		committed map[FileID]int64
		steps     []step
	}{
		{name: "new files from the beginning; not ready ones wait", steps: []step{
			{obs: []Observation{ob("a.log", "A", 10, 1), ob("b.log", "", 3, 2)}, want: "open A a.log@0"},
			{obs: []Observation{ob("a.log", "A", 10, 1), ob("b.log", "B", 30, 2)}, want: "open B b.log@0"},
		}},
		{name: "read_from end applies to files at the first scan only", fromEnd: true, steps: []step{
			{obs: []Observation{ob("a.log", "A", 10, 1)}, want: "open A a.log@10(end)"},
			{obs: []Observation{ob("a.log", "A", 10, 1), ob("b.log", "B", 30, 2)}, want: "open B b.log@0"},
		}},
		{name: "committed positions resume, read_from end notwithstanding", fromEnd: true, committed: map[FileID]int64{"A": 7, "B": 99},
			steps: []step{{obs: []Observation{ob("a.log", "A", 10, 1), ob("b.log", "B", 30, 2)},
				want: "open A a.log@7; open B b.log@0"}}},
		{name: "rename and create: the old file is followed, the new one read", steps: []step{
			{obs: []Observation{ob("app.log", "A", 10, 1)}, want: "open A app.log@0"},
			{obs: []Observation{ob("app.log", "B", 5, 2), ob("app.log.1", "A", 12, 1)}, emit: map[FileID]int64{"A": 10},
				want: "move A app.log.1; open B app.log@0"},
		}},
		{name: "rename out of the globs: drained", steps: []step{
			{obs: []Observation{ob("app.log", "A", 10, 1)}, want: "open A app.log@0"},
			{obs: []Observation{ob("app.log", "B", 5, 2)}, want: "drain A app.log; open B app.log@0"},
			{obs: []Observation{ob("app.log", "B", 5, 2)}, want: ""},
		}},
		{name: "a new file at an old path with the same inode is new (inode reuse)", steps: []step{
			{obs: []Observation{ob("app.log", "A", 10, 1)}, want: "open A app.log@0"},
			{obs: []Observation{ob("app.log", "B", 50, 1)}, emit: map[FileID]int64{"A": 10},
				want: "close A app.log; open B app.log@0"},
		}},
		{name: "copytruncate: the copy is ignored, then read from the position once the original is truncated", steps: []step{
			{obs: []Observation{ob("app.log", "A", 10, 1)}, want: "open A app.log@0"},
			{obs: []Observation{ob("app.log", "A", 20, 1), ob("app.log.1", "A", 20, 2)}, emit: map[FileID]int64{"A": 10}, want: ""},
			{obs: []Observation{ob("app.log", "", 3, 1), ob("app.log.1", "A", 20, 2)},
				want: "close A app.log; open A app.log.1@10"},
			{obs: []Observation{ob("app.log", "C", 9, 1), ob("app.log.1", "A", 20, 2)}, want: "open C app.log@0"},
		}},
		{name: "truncation with the same first line: from the beginning", steps: []step{
			{obs: []Observation{ob("app.log", "A", 10, 1)}, want: "open A app.log@0"},
			{obs: []Observation{ob("app.log", "A", 6, 1)}, emit: map[FileID]int64{"A": 10},
				want: "close A app.log; open A app.log@0"},
		}},
		{name: "a file shorter than its committed position is read again", committed: map[FileID]int64{"A": 50},
			steps: []step{{obs: []Observation{ob("a.log", "A", 10, 1)}, want: "open A a.log@0"}}},
		{name: "a hard link is one file", steps: []step{
			{obs: []Observation{ob("a.log", "A", 10, 1), ob("b.log", "A", 10, 1)}, want: "open A a.log@0"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker(tc.fromEnd, tc.committed)
			for i, s := range tc.steps {
				for id, p := range s.emit {
					tr.Emitted(id, p)
				}
				if got := acts(tr.Scan(s.obs)); got != s.want {
					t.Fatalf("scan %d: got %q, want %q", i+1, got, s.want)
				}
			}
		})
	}
}

func TestTrackerClosesDrainedFilesOnlyOnceDurable(t *testing.T) {
	tr := NewTracker(false, nil)
	tr.Scan([]Observation{ob("app.log", "A", 10, 1)})
	tr.Emitted("A", 10)
	tr.Scan(nil) // renamed away
	if tr.Closable("A") {
		t.Fatal("closable before its records are durable")
	}
	tr.Durable("A", 6)
	if tr.Closable("A") {
		t.Fatal("closable with 4 bytes not durable")
	}
	tr.Durable("A", 10)
	if !tr.Closable("A") {
		t.Fatal("not closable once drained and durable")
	}
	tr.Closed("A")
	// Renamed back into the globs: resumed where it ended.
	if got := acts(tr.Scan([]Observation{ob("app.log.1", "A", 12, 1)})); got != "open A app.log.1@10" {
		t.Fatalf("reappearing file: %s", got)
	}
	// A durable position beyond what was emitted is ignored.
	tr.Durable("A", 99)
	if f := tr.File("A"); f.Durable != 10 {
		t.Fatalf("durable %d", f.Durable)
	}
}

// copytruncate found by a read (the size below the position) before any
// scan saw the copy: the next scan reads the copy from the position and
// the truncated file from its beginning, even though the copy carries the
// identity that had the position.
func TestTrackerTruncationFoundByAReadBeforeTheCopyIsSeen(t *testing.T) {
	tr := NewTracker(false, nil)
	tr.Scan([]Observation{ob("app.log", "A", 10, 1)})
	tr.Emitted("A", 10)
	if got := acts(tr.Truncated("A", 0)); got != "close A app.log" {
		t.Fatalf("truncated: %s", got)
	}
	got := acts(tr.Scan([]Observation{ob("app.log", "A", 4, 1), ob("app.log.1", "A", 16, 2)}))
	if got != "open A app.log.1@10" {
		t.Fatalf("scan after: %s", got)
	}
	// The truncated file, rewritten with the same first line, is a copy
	// of what is being read now; once it has new content, it is new.
	got = acts(tr.Scan([]Observation{ob("app.log", "B", 4, 1), ob("app.log.1", "A", 16, 2)}))
	if got != "open B app.log@0" {
		t.Fatalf("the truncated file: %s", got)
	}
}
