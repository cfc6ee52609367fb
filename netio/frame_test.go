package netio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestFlexibleTableMatchesKmsg(t *testing.T) {
	for key := int16(-3); key < 200; key++ {
		req := kmsg.RequestForKey(key)
		for v := int16(-2); v < 60; v++ {
			want := false
			if req != nil {
				req.SetVersion(v)
				want = req.IsFlexible()
			}
			if got := FlexibleRequest(key, v); got != want {
				t.Fatalf("FlexibleRequest(%d, %d) = %v, kmsg says %v", key, v, got, want)
			}
			if got := FlexibleResponse(key, v); got != (want && key != ApiVersionsKey) {
				t.Fatalf("FlexibleResponse(%d, %d) = %v", key, v, got)
			}
		}
	}
	if !KnownKey(0) || KnownKey(-1) || KnownKey(30000) {
		t.Fatal("KnownKey")
	}
}

func TestReadRequestHeader(t *testing.T) {
	cid := "client-1"
	for _, tc := range []struct {
		key, version int16
		cid          *string
	}{
		{keyMetadata, 1, &cid}, {keyMetadata, 12, &cid}, {keyProduce, 9, nil}, {keyProduce, 2, nil},
		{ApiVersionsKey, 3, &cid}, {12345, 7, &cid},
	} {
		p := AppendRequestHeader(nil, tc.key, tc.version, 42, tc.cid)
		p = append(p, "body"...)
		h, body, err := ReadRequestHeader(p)
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if h.Key != tc.key || h.Version != tc.version || h.CorrelationID != 42 ||
			(h.ClientID == nil) != (tc.cid == nil) || (h.ClientID != nil && *h.ClientID != cid) ||
			h.Flexible != FlexibleRequest(tc.key, tc.version) || string(body) != "body" {
			t.Fatalf("%+v: got %+v body %q", tc, h, body)
		}
	}

	bad := [][]byte{
		nil,
		{0, 3, 0, 1, 0, 0, 0, 1, 0},                       // too short
		{0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xfe},              // client id length -2
		{0, 3, 0, 1, 0, 0, 0, 1, 0, 5, 'a'},               // client id overruns
		{0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff},             // flexible, no tag section
		{0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 1, 0},       // tag without size
		{0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 1, 0, 5, 1}, // tag overruns
		{0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // huge count
	}
	for _, p := range bad {
		if _, _, err := ReadRequestHeader(p); !errors.Is(err, ErrMalformedHeader) {
			t.Errorf("% x: err %v", p, err)
		}
	}
}

func TestPutResponseHeader(t *testing.T) {
	var buf [responseHeaderLen]byte
	h, err := putResponseHeader(&buf, 7, false, 10)
	if err != nil || !bytes.Equal(h, []byte{0, 0, 0, 14, 0, 0, 0, 7}) {
		t.Fatalf("% x %v", h, err)
	}
	h, err = putResponseHeader(&buf, -1, true, 0)
	if err != nil || !bytes.Equal(h, []byte{0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0}) {
		t.Fatalf("% x %v", h, err)
	}
	if _, err := putResponseHeader(&buf, 1, true, 1<<31-5); err == nil {
		t.Fatal("oversized response framed")
	}
}

func sized(payload []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...)
}

func TestFrameReader(t *testing.T) {
	big := bytes.Repeat([]byte{1, 2, 3}, frameChunk) // several growth steps
	stream := append(append(append(sized([]byte("a")), sized(nil)...), sized(big)...), sized([]byte("z"))...)
	fr := NewFrameReader(iotest.OneByteReader(bytes.NewReader(stream)), 0)
	for i, want := range [][]byte{[]byte("a"), {}, big, []byte("z")} {
		got, err := fr.Next()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %d bytes, %v", i, len(got), err)
		}
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}

	for _, tc := range []struct {
		in   []byte
		want error
	}{
		{[]byte{0, 0}, ErrPartialFrame},
		{[]byte{0, 0, 0, 5, 1}, ErrPartialFrame},
		{[]byte{0x80, 0, 0, 0}, ErrInvalidFrameSize},
		{[]byte{0, 0, 0x10, 1}, ErrFrameTooLarge},
	} {
		fr := NewFrameReader(bytes.NewReader(tc.in), 4096)
		_, err := fr.Next()
		if !errors.Is(err, tc.want) {
			t.Fatalf("% x: %v, want %v", tc.in, err, tc.want)
		}
		if _, err2 := fr.Next(); err2 != err { // sticky
			t.Fatalf("% x: second Next %v", tc.in, err2)
		}
	}

	// An error before the first byte of a frame is retryable.
	r := &flakyReader{data: sized([]byte("ok"))}
	fr = NewFrameReader(r, 0)
	if _, err := fr.Next(); err != errFlaky || fr.InFrame() {
		t.Fatalf("flaky: %v", err)
	}
	if p, err := fr.Next(); err != nil || string(p) != "ok" {
		t.Fatalf("after retry: %q %v", p, err)
	}
}

var errFlaky = errors.New("flaky")

// flakyReader fails its first read, then serves data.
type flakyReader struct {
	data   []byte
	failed bool
}

func (r *flakyReader) Read(p []byte) (int, error) {
	if !r.failed {
		r.failed = true
		return 0, errFlaky
	}
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}
