package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// DefaultMaxDecompressedBytes is the default of max.decompressed.message.bytes:
// the most bytes the records of one compressed batch may inflate to. At the
// default max.message.bytes (1 MiB) it allows a compression ratio of 128,
// far beyond what real records reach, while a batch of zeros claiming a
// gibibyte is refused after reading 128 MiB of it, never holding it.
const DefaultMaxDecompressedBytes = 128 << 20

// zstdMaxWindow bounds the history a zstd frame may ask the decoder to keep.
// Producers at their default levels use 2 MiB or less; without a bound a
// 20-byte frame could make the decoder allocate 512 MiB.
const zstdMaxWindow = 8 << 20

// snappyMaxRatio bounds how much a snappy block can expand: its longest
// copy element (3 bytes) yields 64 bytes. A block claiming more is corrupt,
// and is refused before its output buffer is allocated.
const snappyMaxRatio = 22

// errTooLarge is returned by a limitedReader past its limit.
var errTooLarge = errors.New("decompressed size limit reached")

var (
	gzipPool = sync.Pool{New: func() any { return new(gzip.Reader) }}
	lz4Pool  = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
	zstdPool = sync.Pool{New: func() any {
		// Concurrency 1 decodes on the caller's goroutine, block by block,
		// which is what keeps memory bounded; low-memory mode grows
		// buffers only as the frame needs them. When streaming, MaxMemory
		// bounds the window a single-segment frame (whose window is its
		// whole content) may claim.
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(zstdMaxWindow),
			// Never decode a small input whole into memory: that
			// shortcut would inflate a 32 KiB bomb completely.
			zstd.WithDecodeBuffersBelow(0))
		if err != nil {
			panic(fmt.Sprintf("zstd decoder options: %v", err)) // static options; cannot fail
		}
		return d
	}}
)

// decompressor streams the records section of a compressed batch. Its
// memory is bounded by the codec's window or block size, never by the
// decompressed size.
type decompressor struct {
	r       io.Reader
	release func()
}

// newDecompressor returns a reader of the decompressed records that src
// (size bytes of compressed data) holds. release must be called when done.
// limit is only used to refuse a snappy block claiming more before it is
// allocated; the caller bounds the stream itself with a limitedReader.
func newDecompressor(codec Codec, src io.Reader, size, limit int64) (decompressor, error) {
	switch codec {
	case CodecGzip:
		zr := gzipPool.Get().(*gzip.Reader)
		if err := zr.Reset(src); err != nil {
			gzipPool.Put(zr)
			return decompressor{}, err
		}
		return decompressor{zr, func() { gzipPool.Put(zr) }}, nil
	case CodecLZ4:
		lr := lz4Pool.Get().(*lz4.Reader)
		lr.Reset(src)
		return decompressor{lr, func() { lr.Reset(nil); lz4Pool.Put(lr) }}, nil
	case CodecZstd:
		zd := zstdPool.Get().(*zstd.Decoder)
		if err := zd.Reset(src); err != nil {
			zstdPool.Put(zd)
			return decompressor{}, err
		}
		return decompressor{zd, func() { _ = zd.Reset(nil); zstdPool.Put(zd) }}, nil
	case CodecSnappy:
		// Snappy blocks do not stream, but the compressed data is at most
		// one batch, and each block is inflated only after its claimed
		// size passed the ratio check.
		buf := make([]byte, size)
		if _, err := io.ReadFull(src, buf); err != nil {
			return decompressor{}, err
		}
		return decompressor{&snappyReader{src: buf, limit: limit}, func() {}}, nil
	}
	return decompressor{}, fmt.Errorf("unknown compression codec %d", codec)
}

// snappyReader decodes raw snappy, or the xerial framing (magic, two int32
// versions, then int32-length-prefixed raw blocks) that Java clients write,
// one block at a time.
type snappyReader struct {
	src     []byte // compressed blocks not yet decoded
	out     []byte // decoded bytes not yet read
	limit   int64  // decoded bytes still allowed
	started bool
	xerial  bool
}

func (s *snappyReader) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if err := s.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// next decodes the next block into out.
func (s *snappyReader) next() error {
	if !s.started {
		s.started = true
		s.xerial = len(s.src) >= 16 && bytes.HasPrefix(s.src, xerialMagic)
		if s.xerial {
			s.src = s.src[16:]
		} else {
			block := s.src
			s.src = nil
			return s.decode(block)
		}
	}
	if !s.xerial || len(s.src) == 0 {
		return io.EOF
	}
	if len(s.src) < 4 {
		return fmt.Errorf("xerial snappy: %d stray bytes after the last block", len(s.src))
	}
	n := int64(binary.BigEndian.Uint32(s.src))
	if n > int64(len(s.src)-4) {
		return fmt.Errorf("xerial snappy block of %d bytes, %d left", n, len(s.src)-4)
	}
	block := s.src[4 : 4+n]
	s.src = s.src[4+n:]
	return s.decode(block)
}

func (s *snappyReader) decode(block []byte) error {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return err
	}
	if n > snappyMaxRatio*len(block)+64 {
		return fmt.Errorf("snappy block of %d bytes claims %d decoded bytes", len(block), n)
	}
	if s.limit -= int64(n); s.limit < 0 {
		return errTooLarge
	}
	if cap(s.out) < n {
		s.out = make([]byte, n)
	}
	s.out, err = s2.Decode(s.out[:n], block)
	return err
}

// limitedReader fails with errTooLarge once more than n bytes were read,
// so a decompression bomb costs at most n bytes of inflating. Errors of
// the decompressor come back as *codecError.
type limitedReader struct {
	r     io.Reader
	n     int64 // bytes still allowed
	codec bool  // r is a decompressor
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// One more byte tells a stream that ends exactly at the limit
		// from one that goes on.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, l.tag(err)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, l.tag(err)
}

func (l *limitedReader) tag(err error) error {
	if err == nil || err == io.EOF || errors.Is(err, errTooLarge) || !l.codec {
		return err
	}
	return &codecError{err}
}
