package tail

import (
	"fmt"
	"strings"
	"testing"
)

func feedAll(s *Splitter, chunks ...string) []string {
	var out []string
	var pos int64
	for _, c := range chunks {
		for _, l := range s.Feed(nil, c, pos) {
			tag := ""
			if l.Truncated {
				tag = "!"
			}
			if l.Piece {
				tag = "+"
			}
			out = append(out, fmt.Sprintf("%s%s@%d", l.Text, tag, l.End))
		}
		pos += int64(len(c))
	}
	return out
}

func TestSplitter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    int
		long   LongLines
		chunks []string
		want   string
	}{
		{"lines and crlf", 100, Truncate, []string{"a\nbb\r\nccc\n"}, "a@2 bb@6 ccc@10"},
		{"unfinished line waits", 100, Truncate, []string{"ab", "c\nd"}, "abc@4"},
		{"empty lines", 100, Truncate, []string{"\n\nx\n"}, "@1 @2 x@4"},
		{"line of exactly max", 3, Truncate, []string{"abc\n"}, "abc@4"},
		{"truncate in one chunk", 3, Truncate, []string{"abcdef\nxy\n"}, "abc!@7 xy@10"},
		{"truncate across chunks", 3, Truncate, []string{"ab", "cd", "ef", "\nz\n"}, "abc!@7 z@9"},
		{"split in one chunk", 3, Split, []string{"abcdefg\nxy\n"}, "abc+@3 def+@6 g+@8 xy@11"},
		{"split across chunks", 3, Split, []string{"ab", "cdefgh", "ij\n"}, "abc+@3 def+@6 ghi+@9 j+@11"},
		{"split at exactly a multiple", 3, Split, []string{"abcdef\n"}, "abc+@3 def+@7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Splitter{MaxBytes: tc.max, Long: tc.long}
			if got := strings.Join(feedAll(s, tc.chunks...), " "); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSplitterCountsWhatItCuts(t *testing.T) {
	s := &Splitter{MaxBytes: 4, Long: Truncate}
	feedAll(s, "0123456789\nok\n0123456\n")
	if s.TruncatedLines != 2 || s.DroppedBytes != 6+3 {
		t.Fatalf("truncated %d lines, dropped %d bytes; want 2 and 9", s.TruncatedLines, s.DroppedBytes)
	}
	sp := &Splitter{MaxBytes: 4, Long: Split}
	feedAll(sp, "0123456789\n")
	if sp.SplitPieces != 2 || sp.DroppedBytes != 0 {
		t.Fatalf("split pieces %d dropped %d; want 2 and 0", sp.SplitPieces, sp.DroppedBytes)
	}
}

// A restart at a split piece's End reads the rest of the line: nothing is
// lost or repeated.
func TestSplitPiecesResumeAtTheirEnd(t *testing.T) {
	line := "abcdefghij\n"
	s := &Splitter{MaxBytes: 4, Long: Split}
	first := s.Feed(nil, line[:6], 0)
	if len(first) != 1 || first[0].Text != "abcd" || first[0].End != 4 {
		t.Fatalf("first piece: %+v", first)
	}
	again := &Splitter{MaxBytes: 4, Long: Split}
	rest := feedAll(again, line[4:])
	if strings.Join(rest, " ") != "efgh+@4 ij+@7" { // positions relative to the restart
		t.Fatalf("after restart: %v", rest)
	}
}

func TestFingerprint(t *testing.T) {
	if _, ok := Fingerprint([]byte("no newline yet"), 1, 100); ok {
		t.Fatal("a file without a complete first line has an identity")
	}
	a, ok := Fingerprint([]byte("first\nsecond"), 1, 100)
	b, _ := Fingerprint([]byte("first\nother and longer"), 1, 100)
	c, _ := Fingerprint([]byte("First\n"), 1, 100)
	if !ok || a != b || a == c {
		t.Fatalf("identities: %s %s %s", a, b, c)
	}
	if _, ok := Fingerprint([]byte("first\nsecond"), 2, 100); ok {
		t.Fatal("two lines asked, one there")
	}
	long := strings.Repeat("x", 50)
	if _, ok := Fingerprint([]byte(long), 1, 50); !ok {
		t.Fatal("a first line as long as the limit has no identity")
	}
}
