package main

import "bytes"

// framer splits a TCP (or TLS) byte stream into syslog messages as RFC 6587
// frames them. Each frame is detected on its own, as rsyslog's imtcp and
// Vector do: a frame starting with a digit 1-9 followed by more digits and
// a space is octet-counted ("LEN SP MSG"); anything else is
// non-transparent, ending at LF (a CR before the LF is dropped). So one
// connection may mix both, and a sender's choice needs no configuration.
//
// An octet-counted message loses a trailing LF (or CRLF), as rsyslog's
// receiver drops it: rsyslog's own templates end in one, counted in LEN.
//
// A message longer than max bytes is truncated to its first max bytes and
// the rest of it discarded: the frame says so (truncated, size). The framer
// buffers at most max bytes of a message plus one read, whatever the peer
// sends.
//
// framer does no I/O: the connection's reader pushes what it read and
// takes frames out, so the tests drive it byte by byte.
type framer struct {
	max      int
	buf      []byte
	off      int  // start of the unconsumed bytes in buf
	scanned  int  // bytes after off already searched for LF
	skip     int  // bytes of a truncated octet-counted frame still to discard
	skipLine bool // discarding a truncated LF frame up to its LF
}

// frame is one syslog message cut from the stream. data aliases the
// framer's buffer and is valid until the next push.
type frame struct {
	data      []byte
	octet     bool // octet-counted (else LF-terminated)
	truncated bool
	// size is the message's length before truncation: the declared LEN of
	// an octet-counted frame; -1 for a truncated LF frame, whose end is
	// not waited for (so its size would depend on how reads fell).
	size int
}

// maxLenDigits bounds an octet count: nine digits (< 1 GB). A longer run of
// digits is not taken for a length, so a bogus one cannot make the framer
// discard the stream for ever.
const maxLenDigits = 9

func newFramer(maxBytes int) *framer {
	return &framer{max: maxBytes}
}

// push appends bytes read from the connection. Frames returned earlier are
// invalid from here on.
func (f *framer) push(p []byte) {
	if f.off > 0 && (f.off == len(f.buf) || f.off >= cap(f.buf)/2) {
		n := copy(f.buf, f.buf[f.off:])
		f.buf = f.buf[:n]
		f.off = 0
	}
	f.buf = append(f.buf, p...)
}

// next returns the next complete frame, or false when more bytes are
// needed.
func (f *framer) next() (frame, bool) {
	if !f.discard() {
		return frame{}, false
	}
	f.skipBlankLines()
	avail := f.buf[f.off:]
	if len(avail) == 0 {
		return frame{}, false
	}
	if n, hdr, state := octetHeader(avail); state == headerOK {
		return f.octetFrame(avail, n, hdr)
	} else if state == headerShort {
		return frame{}, false
	}
	return f.lineFrame(avail)
}

// end returns what is left when the peer has closed the connection: an
// unterminated last line, or the received part of an octet-counted frame
// (truncated).
func (f *framer) end() (frame, bool) {
	if fr, ok := f.next(); ok {
		return fr, true
	}
	if f.skip > 0 || f.skipLine {
		return frame{}, false
	}
	avail := f.buf[f.off:]
	if len(avail) == 0 {
		return frame{}, false
	}
	f.off = len(f.buf)
	f.scanned = 0
	if n, hdr, state := octetHeader(avail); state == headerOK {
		return frame{data: avail[hdr:], octet: true, truncated: true, size: n}, true
	}
	return frame{data: trimCR(avail), size: len(avail)}, true
}

// discard drops the rest of a truncated frame; false while some remains
// beyond what was received.
func (f *framer) discard() bool {
	if f.skip > 0 {
		n := min(f.skip, len(f.buf)-f.off)
		f.off += n
		f.skip -= n
		if f.skip > 0 {
			return false
		}
	}
	if f.skipLine {
		avail := f.buf[f.off:]
		i := bytes.IndexByte(avail, '\n')
		if i < 0 {
			f.off = len(f.buf)
			return false
		}
		f.off += i + 1
		f.skipLine = false
	}
	return true
}

// skipBlankLines drops LFs between frames: some senders end octet-counted
// frames with one too, and an empty line is no message.
func (f *framer) skipBlankLines() {
	for f.off < len(f.buf) && f.buf[f.off] == '\n' {
		f.off++
	}
	if f.off == len(f.buf) {
		f.scanned = 0
	}
}

type headerState int

const (
	headerNone  headerState = iota // not an octet count: an LF frame
	headerShort                    // digits so far: wait for more bytes
	headerOK
)

// octetHeader reads "LEN SP" at the start of b: the length, the header's
// size, and whether b starts with one.
func octetHeader(b []byte) (n, hdr int, st headerState) {
	if b[0] < '1' || b[0] > '9' {
		return 0, 0, headerNone
	}
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if i == maxLenDigits {
				return 0, 0, headerNone
			}
			n = n*10 + int(c-'0')
		case c == ' ':
			return n, i + 1, headerOK
		default:
			return 0, 0, headerNone
		}
	}
	return 0, 0, headerShort
}

func (f *framer) octetFrame(avail []byte, n, hdr int) (frame, bool) {
	if n <= f.max {
		if len(avail) < hdr+n {
			return frame{}, false
		}
		f.consume(hdr + n)
		return frame{data: trimLF(avail[hdr : hdr+n]), octet: true, size: n}, true
	}
	// Too long: hand out the first max bytes as soon as they are here and
	// discard the rest as it arrives, never buffering the whole frame.
	if len(avail) < hdr+f.max {
		return frame{}, false
	}
	f.consume(hdr + f.max)
	f.skip = n - f.max
	return frame{data: avail[hdr : hdr+f.max], octet: true, truncated: true, size: n}, true
}

func (f *framer) lineFrame(avail []byte) (frame, bool) {
	if i := bytes.IndexByte(avail[f.scanned:], '\n'); i >= 0 {
		end := f.scanned + i
		f.consume(end + 1)
		line := trimCR(avail[:end])
		if len(line) > f.max {
			return frame{data: line[:f.max], truncated: true, size: -1}, true
		}
		return frame{data: line, size: len(line)}, true
	}
	if len(avail) > f.max {
		f.consume(f.max)
		f.skipLine = true
		return frame{data: avail[:f.max], truncated: true, size: -1}, true
	}
	f.scanned = len(avail)
	return frame{}, false
}

func (f *framer) consume(n int) {
	f.off += n
	f.scanned = 0
}

// trimLF drops one trailing LF or CRLF.
func trimLF(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return trimCR(b[:n-1])
	}
	return b
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}
