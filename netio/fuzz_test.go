package netio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func FuzzReadRequestHeader(f *testing.F) {
	cid := "sluice"
	f.Add(AppendRequestHeader(nil, 3, 1, 1, &cid))
	f.Add(append(AppendRequestHeader(nil, 3, 12, 7, nil), 1, 2, 3))
	f.Add(append(AppendRequestHeader(nil, 18, 3, -1, &cid), 0))
	f.Add(AppendRequestHeader(nil, 999, 0, 0, nil))
	f.Add([]byte{0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 2, 0, 3, 'a', 'b', 'c', 5, 1, 'z', 9})
	f.Add([]byte{0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 1, 0x80, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, body, err := ReadRequestHeader(data)
		h2, body2, err2 := ReadRequestHeader(data)
		if (err == nil) != (err2 == nil) || !sameHeader(h, h2) || !bytes.Equal(body, body2) {
			t.Fatal("not deterministic")
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedHeader) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		if len(body) > len(data) || !bytes.Equal(data[len(data)-len(body):], body) {
			t.Fatal("body is not a suffix of the payload")
		}
		if h.Flexible != FlexibleRequest(h.Key, h.Version) {
			t.Fatal("Flexible inconsistent with FlexibleRequest")
		}
		hdrLen := 10
		if h.ClientID != nil {
			hdrLen += len(*h.ClientID)
		}
		if !h.Flexible && len(data)-len(body) != hdrLen {
			t.Fatalf("v1 header of %d bytes, want %d", len(data)-len(body), hdrLen)
		}
		// Re-encoding (dropping any tags) parses back to the same thing.
		again := append(AppendRequestHeader(nil, h.Key, h.Version, h.CorrelationID, h.ClientID), body...)
		h3, body3, err := ReadRequestHeader(again)
		if err != nil || !sameHeader(h, h3) || !bytes.Equal(body, body3) {
			t.Fatalf("round trip: %+v %v", h3, err)
		}
	})
}

func sameHeader(a, b RequestHeader) bool {
	if (a.ClientID == nil) != (b.ClientID == nil) || (a.ClientID != nil && *a.ClientID != *b.ClientID) {
		return false
	}
	a.ClientID, b.ClientID = nil, nil
	return a == b
}

// refFrames splits a stream the obvious way; the reference for FrameReader.
func refFrames(data []byte, maxBytes int32) ([][]byte, error) {
	var frames [][]byte
	for {
		switch {
		case len(data) == 0:
			return frames, io.EOF
		case len(data) < 4:
			return frames, ErrPartialFrame
		}
		size := int32(binary.BigEndian.Uint32(data))
		data = data[4:]
		switch {
		case size < 0:
			return frames, ErrInvalidFrameSize
		case size > maxBytes:
			return frames, ErrFrameTooLarge
		case int(size) > len(data):
			return frames, ErrPartialFrame
		}
		frames = append(frames, data[:size])
		data = data[size:]
	}
}

func FuzzFrameReader(f *testing.F) {
	f.Add(sized([]byte("hello")), int32(100))
	f.Add(append(sized(nil), sized([]byte{1, 2, 3})...), int32(3))
	f.Add(append(sized([]byte("ab")), 0, 0), int32(10))
	f.Add([]byte{0, 0, 0, 9, 1}, int32(10))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, int32(10))
	f.Add([]byte{0, 0, 1, 0}, int32(16))
	f.Add([]byte{}, int32(0))
	f.Fuzz(func(t *testing.T, data []byte, maxBytes int32) {
		// Keep allocations small: the reader allocates up to the size.
		maxBytes = int32(uint32(maxBytes)%(1<<16)) + 1
		want, wantErr := refFrames(data, maxBytes)
		for _, r := range []io.Reader{bytes.NewReader(data), iotest.OneByteReader(bytes.NewReader(data))} {
			fr := NewFrameReader(r, maxBytes)
			for i := 0; ; i++ {
				p, err := fr.Next()
				if err != nil {
					if i != len(want) || !errors.Is(err, wantErr) {
						t.Fatalf("after %d frames: %v; want %d frames then %v", i, err, len(want), wantErr)
					}
					break
				}
				if i >= len(want) || !bytes.Equal(p, want[i]) {
					t.Fatalf("frame %d differs", i)
				}
			}
		}
	})
}
