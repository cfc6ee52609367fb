// Package segment implements the on-disk log of Kafka record batches
// (magic v2) for one partition: append-only segment files with sparse
// offset and time indexes, crash recovery and retention.
package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// BatchHeaderSize is the size of a magic-2 RecordBatch header, i.e. the
// bytes before the first record.
const BatchHeaderSize = 61

// minBatchLength is the smallest legal value of the length field: the
// header minus baseOffset and length themselves.
const minBatchLength = BatchHeaderSize - 12

// Byte offsets of the header fields inside a batch.
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offFirstTimestamp  = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57
)

const (
	attrCompressionMask = 0x07
	attrLogAppendTime   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
)

// Codec is the compression codec stored in the low three attribute bits.
type Codec int8

// Compression codecs defined by the Kafka protocol.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// String returns the Kafka name of the codec.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Validation errors. They are always returned wrapped with the position of
// the offending batch; match them with errors.Is.
var (
	// ErrCorruptBatch maps to CORRUPT_MESSAGE: framing, magic or CRC is wrong.
	ErrCorruptBatch = errors.New("corrupt record batch")
	// ErrInvalidRecord maps to INVALID_RECORD: the batch is intact but its
	// contents are not a legal batch (counts, codec, record encoding).
	ErrInvalidRecord = errors.New("invalid record")
	// ErrBatchTooLarge maps to MESSAGE_TOO_LARGE.
	ErrBatchTooLarge = errors.New("record batch too large")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is a decoded magic-2 RecordBatch header.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // bytes after the length field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// ParseBatchHeader decodes the header at the start of b. It needs at least
// BatchHeaderSize bytes and rejects any magic other than 2, because older
// message formats have a different layout and the fields would be garbage.
// It does not check the CRC or that the batch fits in b.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("batch header needs %d bytes, have %d: %w", BatchHeaderSize, len(b), ErrCorruptBatch)
	}
	h := parseHeader(b)
	if h.Magic != 2 {
		return h, fmt.Errorf("unsupported magic %d: %w", h.Magic, ErrCorruptBatch)
	}
	return h, nil
}

// parseHeader decodes without any checks; b must hold BatchHeaderSize bytes.
func parseHeader(b []byte) BatchHeader {
	_ = b[BatchHeaderSize-1]
	be := binary.BigEndian
	return BatchHeader{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		Length:               int32(be.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:       int64(be.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offNumRecords:])),
	}
}

// Size is the total size of the batch on disk.
func (h BatchHeader) Size() int { return 12 + int(h.Length) }

// LastOffset is the offset of the last record in the batch.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Compression returns the codec the records section is compressed with.
func (h BatchHeader) Compression() Codec { return Codec(h.Attributes & attrCompressionMask) }

// LogAppendTime reports whether MaxTimestamp is the broker's append time.
func (h BatchHeader) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (h BatchHeader) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports whether the batch holds control records (commit/abort markers).
func (h BatchHeader) Control() bool { return h.Attributes&attrControl != 0 }

// LastSequence is the producer sequence of the last record. Sequences wrap
// from MaxInt32 to 0, as the idempotent producer expects; -1 (no sequence)
// stays -1.
func (h BatchHeader) LastSequence() int32 {
	if h.BaseSequence < 0 {
		return h.BaseSequence
	}
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (int64(math.MaxInt32) + 1))
}

// ValidateBatches checks every batch in buf: magic 2, length consistent with
// buf, CRC-32C over attributes..end, NumRecords == LastOffsetDelta+1 > 0,
// each batch <= maxBatchBytes (<= 0 disables the limit) and, for
// uncompressed batches, that the records parse and their count matches.
// Compressed batches are stored as produced, so their records are not
// inspected. It returns the parsed headers in order.
func ValidateBatches(buf []byte, maxBatchBytes int) ([]BatchHeader, error) {
	// Counting first lets the result be a single exact allocation.
	n := 0
	for pos := 0; pos+12 <= len(buf); n++ {
		l := int(int32(binary.BigEndian.Uint32(buf[pos+offLength:])))
		if l < minBatchLength {
			n++
			break
		}
		pos += 12 + l
	}
	if n == 0 {
		n = 1
	}
	hs := make([]BatchHeader, 0, n)
	return appendValidated(hs, buf, maxBatchBytes)
}

// AppendValidatedBatches is ValidateBatches appending to dst, so a caller
// that reuses dst validates without allocating.
func AppendValidatedBatches(dst []BatchHeader, buf []byte, maxBatchBytes int) ([]BatchHeader, error) {
	return appendValidated(dst, buf, maxBatchBytes)
}

func appendValidated(hs []BatchHeader, buf []byte, maxBatchBytes int) ([]BatchHeader, error) {
	if len(buf) == 0 {
		return hs, fmt.Errorf("empty record set: %w", ErrCorruptBatch)
	}
	for pos := 0; pos < len(buf); {
		h, err := validateBatch(buf[pos:], maxBatchBytes)
		if err != nil {
			return hs, fmt.Errorf("batch at byte %d: %w", pos, err)
		}
		hs = append(hs, h)
		pos += h.Size()
	}
	return hs, nil
}

// checkFrame checks the framing of the batch at the start of b: a whole
// header, a length within b, magic 2, the size limit (<= 0: none) and the
// CRC. It does not look at the records.
func checkFrame(b []byte, maxBatchBytes int) (BatchHeader, error) {
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%d trailing bytes are less than a batch header: %w", len(b), ErrCorruptBatch)
	}
	h := parseHeader(b)
	if h.Length < minBatchLength {
		return h, fmt.Errorf("length %d below minimum %d: %w", h.Length, minBatchLength, ErrCorruptBatch)
	}
	size := h.Size()
	if size > len(b) {
		return h, fmt.Errorf("batch of %d bytes truncated to %d: %w", size, len(b), ErrCorruptBatch)
	}
	if h.Magic != 2 {
		return h, fmt.Errorf("unsupported magic %d: %w", h.Magic, ErrCorruptBatch)
	}
	if maxBatchBytes > 0 && size > maxBatchBytes {
		return h, fmt.Errorf("batch of %d bytes exceeds limit %d: %w", size, maxBatchBytes, ErrBatchTooLarge)
	}
	if c := crc32.Checksum(b[offAttributes:size], castagnoli); c != h.CRC {
		return h, fmt.Errorf("crc %08x, stored %08x: %w", c, h.CRC, ErrCorruptBatch)
	}
	return h, nil
}

// validateBatch checks the batch at the start of b, which must end exactly
// where b ends or where the next batch begins.
func validateBatch(b []byte, maxBatchBytes int) (BatchHeader, error) {
	h, err := checkFrame(b, maxBatchBytes)
	if err != nil {
		return h, err
	}
	size := h.Size()
	if h.NumRecords <= 0 || int64(h.NumRecords) != int64(h.LastOffsetDelta)+1 {
		return h, fmt.Errorf("%d records but last offset delta %d: %w", h.NumRecords, h.LastOffsetDelta, ErrInvalidRecord)
	}
	switch c := h.Compression(); {
	case c > CodecZstd:
		return h, fmt.Errorf("unknown compression codec %d: %w", c, ErrInvalidRecord)
	case c == CodecNone:
		if err := checkRecords(b[BatchHeaderSize:size], int(h.NumRecords)); err != nil {
			return h, err
		}
	}
	return h, nil
}

// checkRecords walks the uncompressed records section: each record is a
// varint length followed by exactly that many bytes of well-formed fields.
func checkRecords(b []byte, count int) error {
	pos := 0
	for i := 0; i < count; i++ {
		l, n := binary.Varint(b[pos:])
		if n <= 0 || l < 0 || l > int64(len(b)-pos-n) {
			return fmt.Errorf("record %d: bad length: %w", i, ErrInvalidRecord)
		}
		pos += n
		if err := checkRecord(b[pos : pos+int(l)]); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		pos += int(l)
	}
	if pos != len(b) {
		return fmt.Errorf("%d bytes after the last of %d records: %w", len(b)-pos, count, ErrInvalidRecord)
	}
	return nil
}

// checkRecord validates one record body (everything after its length).
func checkRecord(r []byte) error {
	if len(r) < 1 {
		return fmt.Errorf("empty record: %w", ErrInvalidRecord)
	}
	pos := 1 // attributes
	var ok bool
	if _, pos, ok = varlong(r, pos); !ok { // timestamp delta
		return fmt.Errorf("bad timestamp delta: %w", ErrInvalidRecord)
	}
	if _, pos, ok = varint(r, pos); !ok { // offset delta
		return fmt.Errorf("bad offset delta: %w", ErrInvalidRecord)
	}
	if pos, ok = bytesField(r, pos, true); !ok {
		return fmt.Errorf("bad key: %w", ErrInvalidRecord)
	}
	if pos, ok = bytesField(r, pos, true); !ok {
		return fmt.Errorf("bad value: %w", ErrInvalidRecord)
	}
	var nh int64
	if nh, pos, ok = varint(r, pos); !ok || nh < 0 {
		return fmt.Errorf("bad header count: %w", ErrInvalidRecord)
	}
	for j := int64(0); j < nh; j++ {
		if pos, ok = bytesField(r, pos, false); !ok {
			return fmt.Errorf("header %d: bad key: %w", j, ErrInvalidRecord)
		}
		if pos, ok = bytesField(r, pos, true); !ok {
			return fmt.Errorf("header %d: bad value: %w", j, ErrInvalidRecord)
		}
	}
	if pos != len(r) {
		return fmt.Errorf("%d bytes past the record's fields: %w", len(r)-pos, ErrInvalidRecord)
	}
	return nil
}

func varlong(b []byte, pos int) (int64, int, bool) {
	if pos > len(b) {
		return 0, pos, false
	}
	v, n := binary.Varint(b[pos:])
	if n <= 0 {
		return 0, pos, false
	}
	return v, pos + n, true
}

// varint reads a zigzag varint that must fit in 32 bits, as Kafka's
// varint fields do.
func varint(b []byte, pos int) (int64, int, bool) {
	v, p, ok := varlong(b, pos)
	if !ok || p-pos > 5 || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, pos, false
	}
	return v, p, true
}

// bytesField skips a varint-length-prefixed byte string; -1 means null,
// which is legal only where nullable says so (header keys are not).
func bytesField(b []byte, pos int, nullable bool) (int, bool) {
	l, p, ok := varint(b, pos)
	if !ok {
		return pos, false
	}
	if l == -1 && nullable {
		return p, true
	}
	if l < 0 || l > int64(len(b)-p) {
		return pos, false
	}
	return p + int(l), true
}

// SetBaseOffset rewrites the base offset of the batch at the start of b.
// The field is outside the CRC, so no checksum update is needed.
func SetBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off))
}

// SetPartitionLeaderEpoch rewrites the leader epoch (also outside the CRC).
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// SetMaxTimestampLogAppendTime marks the batch at the start of b as
// LogAppendTime with max timestamp ts. Both fields are covered by the CRC,
// so it is recomputed; b must hold the whole batch.
func SetMaxTimestampLogAppendTime(b []byte, ts int64) {
	be := binary.BigEndian
	size := 12 + int(int32(be.Uint32(b[offLength:])))
	attr := be.Uint16(b[offAttributes:]) | attrLogAppendTime
	be.PutUint16(b[offAttributes:], attr)
	be.PutUint64(b[offMaxTimestamp:], uint64(ts))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:size], castagnoli))
}
