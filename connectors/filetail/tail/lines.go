// Package tail is the logic of the file tail source, free of I/O: file
// identity by fingerprint and the rotation and truncation decisions
// (Tracker), line splitting with a maximum line length (Splitter),
// multiline assembly with a timeout (Assembler), and the engine that
// drives them over a file system interface with a fair share per file
// (Engine). The plugin supplies the real file system and the clock; the
// tests supply an in-memory one.
package tail

import "strings"

// LongLines says what happens to a line longer than the maximum.
type LongLines int

const (
	// Truncate keeps the first MaxBytes of a long line and drops the rest
	// up to its newline (Filebeat's message_max_bytes behaviour).
	Truncate LongLines = iota
	// Split cuts a long line into records of at most MaxBytes each, so
	// no byte is lost.
	Split
)

// Line is one line (or a piece of a split long line) without its newline
// (and without a trailing \r), with End the file position after it.
type Line struct {
	Text      string
	End       int64
	Truncated bool // bytes of this line were dropped (Truncate)
	Piece     bool // a piece of a split long line (Split)
}

// Splitter cuts a byte stream into lines. Bytes after the last newline
// wait for the next Feed; a line longer than MaxBytes is truncated or
// split as Long says. It counts what it dropped so that the plugin can
// report it.
type Splitter struct {
	MaxBytes int
	Long     LongLines

	pending   []byte // start of an unfinished line (at most MaxBytes)
	dropping  bool   // past MaxBytes of a line being truncated
	truncated bool   // the pending line lost bytes

	// Counters since the Splitter was made.
	TruncatedLines int64
	DroppedBytes   int64
	SplitPieces    int64
}

// Feed splits b, which starts at file position pos (the position just
// after what was fed before), appending the complete lines to out. Lines
// wholly inside b are substrings of it (no copy: the reader converts a
// whole chunk to a string once).
func (s *Splitter) Feed(out []Line, b string, pos int64) []Line {
	for len(b) > 0 {
		i := strings.IndexByte(b, '\n')
		if i < 0 {
			s.take(b, &out, pos+int64(len(b)))
			return out
		}
		chunk := b[:i]
		end := pos + int64(i) + 1
		if len(s.pending) == 0 && !s.dropping && len(chunk) <= s.MaxBytes {
			out = append(out, Line{Text: trimCRString(chunk), End: end})
		} else {
			s.take(chunk, &out, end-1)
			text := string(trimCR(s.pending))
			l := Line{Text: text, End: end, Truncated: s.truncated}
			if s.Long == Split && s.truncated {
				l.Truncated, l.Piece = false, true
			}
			out = append(out, l)
			s.pending, s.dropping, s.truncated = s.pending[:0], false, false
		}
		b = b[i+1:]
		pos = end
	}
	return out
}

// take adds part of a line, ending at file position end, to the pending
// line, cutting or dropping what goes past MaxBytes.
func (s *Splitter) take(b string, out *[]Line, end int64) {
	if s.dropping {
		s.DroppedBytes += int64(len(b))
		return
	}
	room := s.MaxBytes - len(s.pending)
	if len(b) <= room {
		s.pending = append(s.pending, b...)
		return
	}
	s.pending = append(s.pending, b[:room]...)
	rest := b[room:]
	switch s.Long {
	case Truncate:
		s.TruncatedLines++
		s.DroppedBytes += int64(len(rest))
		s.dropping, s.truncated = true, true
	case Split:
		// Emit full pieces; each ends at the position after its last
		// byte, so a restart there reads the rest of the line.
		restEnd := end - int64(len(rest))
		for {
			*out = append(*out, Line{Text: string(s.pending), End: restEnd, Piece: true})
			s.SplitPieces++
			s.pending = s.pending[:0]
			n := min(len(rest), s.MaxBytes)
			s.pending = append(s.pending, rest[:n]...)
			rest = rest[n:]
			restEnd += int64(n)
			if len(rest) == 0 {
				break
			}
		}
		s.truncated = true // the tail of a split line is a piece too
	}
}

// Pending is the unfinished line held, for a rotated file that will not
// grow again: the caller may emit it as a last line.
func (s *Splitter) Pending() []byte { return s.pending }

// Reset forgets any unfinished line (the file was truncated or reopened).
func (s *Splitter) Reset() { s.pending, s.dropping, s.truncated = s.pending[:0], false, false }

func trimCRString(b string) string {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}
