package netio

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-io/sluice/internal/testkit"
)

// A small response's file ranges are copied into one buffer, in order and
// exactly; the buffer goes back on release, before the handler's Release.
func TestInlineSmallCopiesRanges(t *testing.T) {
	f, data := randomFile(t, 4096)
	r := &Response{}
	r.AppendBytes([]byte("head"))
	r.AppendFile(f, 10, 100)
	r.AppendBytes([]byte("mid"))
	r.AppendFile(f, 4000, 96)
	released := false
	r.Release = func() {
		released = true
		if r.inlined != nil {
			t.Errorf("Release ran before the inline buffer went back")
		}
	}
	if !r.inlineSmall() {
		t.Fatal("a 203-byte response with file ranges was not inlined")
	}
	var got []byte
	for _, p := range r.Parts() {
		if p.File != nil {
			t.Fatalf("a file part is left: %+v", p)
		}
		got = append(got, p.Bytes...)
	}
	want := append(append(append([]byte("head"), data[10:110]...), "mid"...), data[4000:4096]...)
	if !bytes.Equal(got, want) || r.Len() != int64(len(want)) {
		t.Fatalf("inlined body differs (len %d, Len %d, want %d)", len(got), r.Len(), len(want))
	}
	if r.inlineSmall() {
		t.Errorf("inlined twice")
	}
	r.release()
	if !released {
		t.Errorf("Release not called")
	}
}

// Large bodies stay zero-copy, and a range the file cannot fill is left for
// the engine to meet (it closes the connection, as before).
func TestInlineSmallLeavesLargeAndShortRanges(t *testing.T) {
	big, _ := randomFile(t, copyBufSize+1)
	r := &Response{}
	r.AppendFile(big, 0, copyBufSize+1)
	if r.inlineSmall() || r.Parts()[0].File == nil {
		t.Errorf("a body over %d bytes was inlined", copyBufSize)
	}
	short, _ := randomFile(t, 50)
	r = &Response{}
	r.AppendBytes([]byte("x"))
	r.AppendFile(short, 0, 100)
	if r.inlineSmall() || r.Parts()[1].File == nil || r.inlined != nil {
		t.Errorf("a range past the end of its file was inlined")
	}
}

// Through an engine: a small file-range response arrives intact, counted as
// copied bytes; a large one is still sent by the kernel.
func TestSmallFileResponseIsCopied(t *testing.T) { forEachEngine(t, testSmallFileResponseIsCopied) }

func testSmallFileResponseIsCopied(t *testing.T, ne newEngineFunc) {
	path := filepath.Join(t.TempDir(), "seg")
	data := bytes.Repeat([]byte("0123456789abcdef"), (copyBufSize*2)/16)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Correlation id 1 asks for a small range, 2 for a large one.
	sizes := map[int32]int64{1: 100, 2: copyBufSize + 1000}
	s := startEngine(t, ne, Config{}, HandlerFunc(func(_ context.Context, req *Request) *Response {
		r := &Response{}
		r.AppendBytes([]byte("pfx"))
		r.AppendFile(f, 5, sizes[req.CorrelationID])
		return r
	}))
	size := sizes[1]
	c := dial(t, s)
	c.send(18, 0, 1, nil)
	_, body := c.recvFor(18, 0)
	if want := append([]byte("pfx"), data[5:5+size]...); !bytes.Equal(body, want) {
		t.Fatalf("small response body differs")
	}
	st := s.eng.Stats()
	if st.BytesZeroCopy != 0 {
		t.Errorf("small response: BytesZeroCopy %d, want 0 (copied)", st.BytesZeroCopy)
	}
	size = sizes[2]
	c.send(18, 0, 2, nil)
	_, body = c.recvFor(18, 0)
	if want := append([]byte("pfx"), data[5:5+size]...); !bytes.Equal(body, want) {
		t.Fatalf("large response body differs")
	}
	testkit.Eventually(t, patience, "large range sent zero-copy", func() bool { return s.eng.Stats().BytesZeroCopy == size })
}
