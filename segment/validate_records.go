package segment

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sync"
)

// codecError is a failure of the decompressor itself (garbage input), as
// opposed to a well-compressed stream holding bad records.
type codecError struct{ err error }

func (e *codecError) Error() string { return e.err.Error() }

var bufioPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

// recordStream reads the records of one batch from its decompressed
// records section, with bounded memory: a 16 KiB buffer plus the codec's
// state. Keys, values and headers are skipped, never held.
type recordStream struct {
	br    *bufio.Reader
	lim   limitedReader
	dec   decompressor
	codec Codec
	limit int64
	left  int64 // bytes left in the current record
	// keyNull says whether the record next read last has a null key
	// (validate_keys.go refuses those on compacted topics).
	keyNull bool
}

// openRecords starts streaming the records section src (size bytes,
// compressed with codec) allowing at most limit decompressed bytes.
func openRecords(codec Codec, src io.Reader, size, limit int64) (*recordStream, error) {
	rs := &recordStream{codec: codec, limit: limit}
	r := src
	if codec != CodecNone {
		var err error
		if rs.dec, err = newDecompressor(codec, src, size, limit); err != nil {
			return nil, rs.wrap(&codecError{err})
		}
		r = rs.dec.r
	}
	rs.lim = limitedReader{r: r, n: limit, codec: codec != CodecNone}
	rs.br = bufioPool.Get().(*bufio.Reader)
	rs.br.Reset(&rs.lim)
	return rs, nil
}

func (rs *recordStream) close() {
	rs.br.Reset(nil)
	bufioPool.Put(rs.br)
	if rs.dec.release != nil {
		rs.dec.release()
	}
}

// wrap turns a stream error into the validation error it stands for.
func (rs *recordStream) wrap(err error) error {
	var ce *codecError
	switch {
	case errors.Is(err, errTooLarge):
		return fmt.Errorf("%s records inflate to more than %d bytes (max.decompressed.message.bytes): %w", rs.codec, rs.limit, ErrBatchTooLarge)
	case errors.As(err, &ce):
		return fmt.Errorf("%s data does not decompress: %v: %w", rs.codec, ce.err, ErrCorruptBatch)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("premature end of the records: %w", ErrInvalidRecord)
	}
	return err
}

func (rs *recordStream) byte() (byte, error) {
	if rs.left--; rs.left < 0 {
		return 0, fmt.Errorf("record fields run past its length: %w", ErrInvalidRecord)
	}
	c, err := rs.br.ReadByte()
	if err != nil {
		return 0, rs.wrap(err)
	}
	return c, nil
}

// varlong reads a zigzag varint of at most 10 bytes inside the record. It
// decodes from the buffered bytes rather than byte by byte: varints are
// most of a record's fields, and this is the validation's hot loop.
func (rs *recordStream) varlong() (int64, error) {
	p, err := rs.br.Peek(binary.MaxVarintLen64)
	v, n := binary.Varint(p)
	switch {
	case n < 0:
		return 0, fmt.Errorf("varint longer than 10 bytes: %w", ErrInvalidRecord)
	case n == 0 && err != nil:
		return 0, rs.wrap(err)
	case n == 0:
		return 0, fmt.Errorf("malformed varint: %w", ErrInvalidRecord)
	}
	if rs.left -= int64(n); rs.left < 0 {
		return 0, fmt.Errorf("record fields run past its length: %w", ErrInvalidRecord)
	}
	_, _ = rs.br.Discard(n) // n bytes are buffered
	return v, nil
}

func (rs *recordStream) varint() (int32, error) {
	v, err := rs.varlong()
	if err == nil && (v < math.MinInt32 || v > math.MaxInt32) {
		err = fmt.Errorf("varint %d does not fit 32 bits: %w", v, ErrInvalidRecord)
	}
	return int32(v), err
}

// skipBytes skips a varint-length-prefixed field; -1 (null) is allowed
// only where nullable.
func (rs *recordStream) skipBytes(what string, nullable bool) error {
	n, err := rs.varint()
	if err != nil {
		return err
	}
	if n == -1 && nullable {
		return nil
	}
	if n < 0 || int64(n) > rs.left {
		return fmt.Errorf("%s length %d, %d bytes left in the record: %w", what, n, rs.left, ErrInvalidRecord)
	}
	rs.left -= int64(n)
	if _, err := rs.br.Discard(int(n)); err != nil {
		return rs.wrap(err)
	}
	return nil
}

// next reads one record and returns its timestamp and offset deltas.
func (rs *recordStream) next() (tsDelta int64, offDelta int32, err error) {
	rs.left = 10 // room for the length varint itself
	length, err := rs.varint()
	if err != nil {
		return 0, 0, err
	}
	if length < 1 {
		return 0, 0, fmt.Errorf("record length %d: %w", length, ErrInvalidRecord)
	}
	if int(length) <= rs.br.Size() {
		// The usual case: the whole record fits the buffer, and is
		// checked in place like an uncompressed one.
		p, err := rs.br.Peek(int(length))
		if len(p) < int(length) {
			return 0, 0, rs.wrap(err)
		}
		if err := checkRecord(p); err != nil {
			return 0, 0, err
		}
		tsDelta, pos, _ := varlong(p, 1)
		off, pos, _ := varint(p, pos)
		rs.keyNull = nullKey(p[pos:])
		_, _ = rs.br.Discard(int(length))
		return tsDelta, int32(off), nil
	}
	rs.left = int64(length)
	if _, err = rs.byte(); err != nil { // attributes
		return 0, 0, err
	}
	if tsDelta, err = rs.varlong(); err != nil {
		return 0, 0, err
	}
	if offDelta, err = rs.varint(); err != nil {
		return 0, 0, err
	}
	p, _ := rs.br.Peek(binary.MaxVarintLen64) // the key's length, skipped next
	rs.keyNull = nullKey(p)
	if err = rs.skipBytes("key", true); err != nil {
		return 0, 0, err
	}
	if err = rs.skipBytes("value", true); err != nil {
		return 0, 0, err
	}
	nh, err := rs.varint()
	if err != nil {
		return 0, 0, err
	}
	if nh < 0 || int64(nh) > rs.left/2 { // a header takes at least 2 bytes
		return 0, 0, fmt.Errorf("header count %d: %w", nh, ErrInvalidRecord)
	}
	for j := int32(0); j < nh; j++ {
		if err = rs.skipBytes("header key", false); err != nil {
			return 0, 0, err
		}
		if err = rs.skipBytes("header value", true); err != nil {
			return 0, 0, err
		}
	}
	if rs.left != 0 {
		return 0, 0, fmt.Errorf("%d bytes past the record's fields: %w", rs.left, ErrInvalidRecord)
	}
	return tsDelta, offDelta, nil
}

// atEnd checks that nothing follows the last record. Reading on also makes
// gzip and zstd verify their trailing checksums.
func (rs *recordStream) atEnd(count int32) error {
	_, err := rs.br.ReadByte()
	switch {
	case err == nil:
		return fmt.Errorf("bytes after the last of %d records: %w", count, ErrInvalidRecord)
	case errors.Is(err, io.EOF):
		return nil
	}
	return rs.wrap(err)
}

// ValidateCompressedBatches checks the records inside every compressed
// batch of buf, as Kafka does at produce: the data must decompress, hold
// exactly NumRecords well-formed records with offset deltas 0, 1, 2, ...,
// and inflate to at most maxDecompressed bytes (<= 0: the default). It
// streams, so memory stays bounded whatever the batch claims. Framing
// errors are left to ValidateBatches, which the append path runs anyway.
func ValidateCompressedBatches(buf []byte, maxDecompressed int64) error {
	if maxDecompressed <= 0 {
		maxDecompressed = DefaultMaxDecompressedBytes
	}
	for pos := 0; pos+BatchHeaderSize <= len(buf); {
		h := parseHeader(buf[pos:])
		size := h.Size()
		if h.Length < minBatchLength || size > len(buf)-pos || h.Magic != 2 {
			return nil
		}
		b := buf[pos : pos+size]
		if c := h.Compression(); c != CodecNone && c <= CodecZstd {
			// A batch damaged in transit is CORRUPT_MESSAGE (which clients
			// retry), whatever its payload would decompress to.
			if crc32.Checksum(b[offAttributes:], castagnoli) != h.CRC {
				return fmt.Errorf("batch at byte %d: crc mismatch: %w", pos, ErrCorruptBatch)
			}
			if err := checkCompressed(b[BatchHeaderSize:], h, maxDecompressed, nil); err != nil {
				return fmt.Errorf("batch at byte %d: %w", pos, err)
			}
		}
		pos += size
	}
	return nil
}

// checkCompressed checks one compressed batch's records; nullKeyAt, if not
// nil, is called with the index of each record that has a null key.
func checkCompressed(recs []byte, h BatchHeader, limit int64, nullKeyAt func(i int32)) error {
	rs, err := openRecords(h.Compression(), bytes.NewReader(recs), int64(len(recs)), limit)
	if err != nil {
		return err
	}
	defer rs.close()
	for i := int32(0); i < h.NumRecords; i++ {
		_, off, err := rs.next()
		if err != nil {
			return fmt.Errorf("record %d of %d: %w", i, h.NumRecords, err)
		}
		if off != i {
			return fmt.Errorf("record %d has offset delta %d: %w", i, off, ErrInvalidRecord)
		}
		if rs.keyNull && nullKeyAt != nil {
			nullKeyAt(i)
		}
	}
	return rs.atEnd(h.NumRecords)
}

// RecordAtOrAfter streams the records of the batch with header h, whose
// records section (size bytes) r reads, and returns the offset and
// timestamp of the first record with a timestamp of at least ts. Memory
// stays bounded and at most maxDecompressed bytes are inflated (<= 0: the
// default), however large the batch claims to be.
func RecordAtOrAfter(r io.Reader, size int64, h BatchHeader, ts, maxDecompressed int64) (offset, timestamp int64, found bool, err error) {
	if h.LogAppendTime() {
		// Every record carries the batch's append time.
		return h.BaseOffset, h.MaxTimestamp, h.MaxTimestamp >= ts, nil
	}
	if maxDecompressed <= 0 {
		maxDecompressed = DefaultMaxDecompressedBytes
	}
	rs, err := openRecords(h.Compression(), r, size, maxDecompressed)
	if err != nil {
		return 0, 0, false, fmt.Errorf("batch at %d: %w", h.BaseOffset, err)
	}
	defer rs.close()
	for i := int32(0); i < h.NumRecords; i++ {
		tsDelta, offDelta, err := rs.next()
		if err != nil {
			return 0, 0, false, fmt.Errorf("batch at %d record %d: %w", h.BaseOffset, i, err)
		}
		if rts := h.FirstTimestamp + tsDelta; rts >= ts {
			return h.BaseOffset + int64(offDelta), rts, true, nil
		}
	}
	return 0, 0, false, nil
}
