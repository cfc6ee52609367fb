package main

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// got is a frame as the tests write it: "text" for an LF frame, "#text"
// for an octet-counted one, with "~size" appended when truncated.
func describe(f frame) string {
	s := string(f.data)
	if f.octet {
		s = "#" + s
	}
	if f.truncated {
		s += fmt.Sprintf("~%d", f.size)
	}
	return s
}

// frameAll feeds the stream in chunks of the given sizes (the rest in one
// when they run out), then ends it, and describes every frame.
func frameAll(stream string, maxBytes int, chunks []int, withEnd bool) []string {
	f := newFramer(maxBytes)
	var out []string
	drain := func() {
		for {
			fr, ok := f.next()
			if !ok {
				return
			}
			out = append(out, describe(fr))
		}
	}
	for len(stream) > 0 {
		n := len(stream)
		if len(chunks) > 0 {
			n, chunks = min(chunks[0], n), chunks[1:]
		}
		f.push([]byte(stream[:n]))
		stream = stream[n:]
		drain()
	}
	if withEnd {
		if fr, ok := f.end(); ok {
			out = append(out, describe(fr))
		}
	}
	return out
}

func TestFramer(t *testing.T) {
	long := strings.Repeat("x", 30)
	for _, tc := range []struct {
		name, stream string
		max          int
		want         []string // frames before the stream ends
		atEnd        string   // the frame end() adds, if any
	}{
		{name: "lf", stream: "<13>a\n<13>b\r\n", max: 100, want: []string{"<13>a", "<13>b"}},
		{name: "octet", stream: "5 <13>a7 <13>b c", max: 100, want: []string{"#<13>a", "#<13>b c"}},
		{name: "octet frame's trailing LF dropped, as rsyslog sends it", stream: "6 <13>a\n7 <13>b\r\n", max: 100,
			want: []string{"#<13>a", "#<13>b"}},
		{name: "octet frame holding LF", stream: "9 <13>a\nb\nc", max: 100, want: []string{"#<13>a\nb\nc"}},
		{name: "mixed on one connection", stream: "5 <13>a<13>b\n5 <13>c\n<13>d\n", max: 100,
			want: []string{"#<13>a", "<13>b", "#<13>c", "<13>d"}},
		{name: "blank lines between frames skipped", stream: "\n\n<13>a\n\n5 <13>b\n", max: 100, want: []string{"<13>a", "#<13>b"}},
		{name: "digits not followed by space are a line", stream: "2024-01-01 hello\n123abc\n", max: 100,
			want: []string{"2024-01-01 hello", "123abc"}},
		{name: "ten digits are not a length", stream: "1234567890 x\n", max: 100, want: []string{"1234567890 x"}},
		{name: "leading zero is not a length", stream: "05 <13>a\n", max: 100, want: []string{"05 <13>a"}},
		{name: "unterminated last line at end", stream: "<13>a\n<13>b", max: 100, want: []string{"<13>a"}, atEnd: "<13>b"},
		{name: "octet frame cut by the peer", stream: "10 <13>a", max: 100, atEnd: "#<13>a~10"},
		{name: "digits only at end", stream: "42", max: 100, atEnd: "42"},
		{name: "oversize octet frame truncated, next frame intact", stream: "30 " + long + "5 <13>b", max: 10,
			want: []string{"#xxxxxxxxxx~30", "#<13>b"}},
		{name: "oversize lf frame truncated, rest of line dropped", stream: long + "\n<13>b\n", max: 10,
			want: []string{"xxxxxxxxxx~-1", "<13>b"}},
		{name: "max-long frames kept whole", stream: "10 0123456789" + "0123456789\n", max: 10,
			want: []string{"#0123456789", "0123456789"}},
		{name: "oversize octet frame cut by the peer", stream: "30 xxxxxxxxxxxx", max: 10, want: []string{"#xxxxxxxxxx~30"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if tc.atEnd != "" {
				want = append(append([]string(nil), want...), tc.atEnd)
			}
			check := func(how string, chunks []int) {
				t.Helper()
				got := frameAll(tc.stream, tc.max, chunks, true)
				if strings.Join(got, "|") != strings.Join(want, "|") {
					t.Fatalf("%s: frames %q, want %q", how, got, want)
				}
			}
			check("whole", nil)
			ones := make([]int, len(tc.stream))
			for i := range ones {
				ones[i] = 1
			}
			check("byte by byte", ones)
			rng := rand.New(rand.NewSource(1))
			for i := 0; i < 20; i++ {
				var chunks []int
				for n := 0; n < len(tc.stream); {
					c := 1 + rng.Intn(7)
					chunks, n = append(chunks, c), n+c
				}
				check(fmt.Sprintf("chunks %v", chunks), chunks)
			}
			// Without end(), nothing is handed out early.
			if got := frameAll(tc.stream, tc.max, nil, false); strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("before the end: %q, want %q", got, tc.want)
			}
		})
	}
}

// The framer holds at most a message's worth plus a read, however much
// an oversize frame sends.
func TestFramerBufferStaysBounded(t *testing.T) {
	f := newFramer(100)
	f.push([]byte("999999999 "))
	chunk := []byte(strings.Repeat("y", 1000))
	frames := 0
	for i := 0; i < 10000; i++ {
		f.push(chunk)
		for {
			if _, ok := f.next(); !ok {
				break
			}
			frames++
		}
		if len(f.buf)-f.off > 1100 || cap(f.buf) > 4096 {
			t.Fatalf("after %d KB: %d bytes held, capacity %d", i+1, len(f.buf)-f.off, cap(f.buf))
		}
	}
	if frames != 1 {
		t.Fatalf("%d frames from one oversize frame", frames)
	}
	// An endless line without LF likewise.
	g := newFramer(100)
	for i := 0; i < 1000; i++ {
		g.push(chunk)
		for {
			if _, ok := g.next(); !ok {
				break
			}
		}
		if cap(g.buf) > 4096 {
			t.Fatalf("line: capacity %d", cap(g.buf))
		}
	}
}

func TestDatagramFrame(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"<13>a\n", 100, "<13>a"},
		{"<13>a\r\n\x00", 100, "<13>a"},
		{"<13>abcdefgh", 8, "<13>abcd~-1"},
		{"<13>abcd", 8, "<13>abcd"},
	} {
		if got := describe(datagramFrame([]byte(tc.in), tc.max)); got != tc.want {
			t.Errorf("%q max %d: %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
