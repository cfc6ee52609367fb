package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Legacy message layout (magic 0 and 1). Every entry of a message set is
// offset int64, message_size int32, then the message: crc uint32 (CRC-32
// IEEE over magic..end), magic int8, attributes int8, timestamp int64
// (magic 1 only), key and value as int32-length bytes (-1 = null).
const (
	legacyEntryOverhead = 12 // offset + message_size
	legacyV0MinSize     = 4 + 1 + 1 + 4 + 4
	legacyV1MinSize     = legacyV0MinSize + 8
	legacyAttrTSType    = 0x08 // magic 1: timestamp is LogAppendTime
	noTimestamp         = -1   // what a magic-0 record becomes in v2
)

// legacyInflation bounds how much bigger a decompressed inner message set
// may be than the v2 batch it turns into. The smallest legacy entry (26
// bytes) becomes a record of at least 7 bytes and key/value bytes map 1:1,
// so an inner set larger than legacyInflation*maxBatchBytes cannot yield a
// batch within the limit. Checking while decompressing stops a small
// compression bomb from allocating gigabytes before the size check.
const legacyInflation = 8

// snappyDecompressor handles both raw snappy and the xerial framing the
// Java client wrote; it is safe for concurrent use.
var snappyDecompressor = kgo.DefaultDecompressor()

// legacyMessage is one decoded legacy message; Key and Value alias the
// input and are nil when null.
type legacyMessage struct {
	Magic      int8
	Attributes int8
	Timestamp  int64
	Key, Value []byte
}

func (m legacyMessage) codec() Codec { return Codec(m.Attributes & attrCompressionMask) }

func (m legacyMessage) logAppendTime() bool {
	return m.Magic == 1 && m.Attributes&legacyAttrTSType != 0
}

// UpconvertMessageSet converts a legacy message set (magic 0 or 1 messages,
// possibly with compressed wrapper messages) into one or more RecordBatch v2
// batches, ready for ValidateBatches/Append. Offsets in the output are relative
// (base offset 0; the log assigns real offsets). Produce v0-v2 carries this
// format and the log stores only v2, so the broker converts at the door.
//
// Today the result is always a single uncompressed batch holding every
// message, wrappers expanded in place, with offset deltas 0..n-1 and no
// producer id/epoch/sequence. Kafka re-compressed the converted batch with
// the wrapper's codec; we keep it uncompressed for simplicity, which costs
// disk space only for legacy clients. Magic-1 timestamps are kept (a
// LogAppendTime wrapper's timestamp overrides its inner ones, as in Kafka);
// magic-0 messages had none and get -1. The LogAppendTime attribute is set
// when every message was magic-1 LogAppendTime.
//
// Errors wrap ErrCorruptBatch (framing, truncation, CRC, undecodable
// compressed data), ErrInvalidRecord (magic other than 0/1, nested or
// unknown compression, empty or mismatched wrapper contents) or
// ErrBatchTooLarge (the result exceeds maxBatchBytes, when > 0, or a
// wrapper inflates past legacyInflation*maxBatchBytes).
func UpconvertMessageSet(set []byte, maxBatchBytes int) ([]byte, error) {
	if len(set) == 0 {
		return nil, fmt.Errorf("empty message set: %w", ErrCorruptBatch)
	}
	w := batchWriter{max: maxBatchBytes, allLogAppend: true}
	w.out = make([]byte, BatchHeaderSize, BatchHeaderSize+len(set))
	for pos := 0; pos < len(set); {
		m, n, err := readLegacyEntry(set[pos:])
		if err != nil {
			return nil, fmt.Errorf("message at byte %d: %w", pos, err)
		}
		if m.codec() == CodecNone {
			err = w.add(m.Key, m.Value, m.timestampOrNone(), m.logAppendTime())
		} else {
			err = w.addWrapper(m)
		}
		if err != nil {
			return nil, fmt.Errorf("message at byte %d: %w", pos, err)
		}
		pos += n
	}
	return w.finish(), nil
}

func (m legacyMessage) timestampOrNone() int64 {
	if m.Magic == 0 {
		return noTimestamp
	}
	return m.Timestamp
}

// readLegacyEntry decodes the entry at the start of b and returns how many
// bytes it spans. Magic is checked before the CRC so that a v2 batch, whose
// magic byte sits at the same position, is reported as the wrong format
// rather than as corruption.
func readLegacyEntry(b []byte) (legacyMessage, int, error) {
	var m legacyMessage
	if len(b) < legacyEntryOverhead {
		return m, 0, fmt.Errorf("%d trailing bytes are less than an entry header: %w", len(b), ErrCorruptBatch)
	}
	size := int64(int32(binary.BigEndian.Uint32(b[8:])))
	if size < 6 || size > int64(len(b)-legacyEntryOverhead) {
		return m, 0, fmt.Errorf("message size %d does not fit in %d bytes: %w", size, len(b)-legacyEntryOverhead, ErrCorruptBatch)
	}
	msg := b[legacyEntryOverhead : legacyEntryOverhead+int(size)]
	m.Magic, m.Attributes = int8(msg[4]), int8(msg[5])
	minSize := legacyV0MinSize
	switch m.Magic {
	case 0:
	case 1:
		minSize = legacyV1MinSize
	default:
		return m, 0, fmt.Errorf("magic %d in a legacy message set: %w", m.Magic, ErrInvalidRecord)
	}
	if len(msg) < minSize {
		return m, 0, fmt.Errorf("magic %d message of %d bytes, minimum %d: %w", m.Magic, len(msg), minSize, ErrCorruptBatch)
	}
	if c, stored := crc32.ChecksumIEEE(msg[4:]), binary.BigEndian.Uint32(msg); c != stored {
		return m, 0, fmt.Errorf("crc %08x, stored %08x: %w", c, stored, ErrCorruptBatch)
	}
	pos := 6
	if m.Magic == 1 {
		m.Timestamp = int64(binary.BigEndian.Uint64(msg[pos:]))
		pos += 8
	}
	var ok bool
	if m.Key, pos, ok = legacyBytes(msg, pos); !ok {
		return m, 0, fmt.Errorf("bad key length: %w", ErrCorruptBatch)
	}
	if m.Value, pos, ok = legacyBytes(msg, pos); !ok {
		return m, 0, fmt.Errorf("bad value length: %w", ErrCorruptBatch)
	}
	if pos != len(msg) {
		return m, 0, fmt.Errorf("%d bytes after the value: %w", len(msg)-pos, ErrCorruptBatch)
	}
	return m, legacyEntryOverhead + len(msg), nil
}

// legacyBytes reads an int32-length byte string at pos; -1 is null (nil).
func legacyBytes(b []byte, pos int) ([]byte, int, bool) {
	if len(b)-pos < 4 {
		return nil, pos, false
	}
	l := int64(int32(binary.BigEndian.Uint32(b[pos:])))
	pos += 4
	if l == -1 {
		return nil, pos, true
	}
	if l < 0 || l > int64(len(b)-pos) {
		return nil, pos, false
	}
	return b[pos : pos+int(l) : pos+int(l)], pos + int(l), true
}

// batchWriter appends v2 records after a header it fills in at the end.
type batchWriter struct {
	out          []byte
	max          int
	n            int32
	baseTS       int64
	maxTS        int64
	allLogAppend bool
}

// add appends one record. The size limit is enforced as the batch grows so
// a huge set fails before it is fully copied.
func (w *batchWriter) add(key, value []byte, ts int64, logAppend bool) error {
	if w.n == math.MaxInt32 {
		return fmt.Errorf("more than %d messages: %w", math.MaxInt32, ErrBatchTooLarge)
	}
	if w.n == 0 {
		w.baseTS, w.maxTS = ts, ts
	}
	w.maxTS = max(w.maxTS, ts)
	w.allLogAppend = w.allLogAppend && logAppend
	// Deltas wrap for extreme timestamps; base+delta still decodes to ts.
	tsDelta, offDelta := ts-w.baseTS, int64(w.n)
	bodyLen := 1 + varintLen(tsDelta) + varintLen(offDelta) +
		nullableLen(key) + nullableLen(value) + 1
	w.out = binary.AppendVarint(w.out, int64(bodyLen))
	w.out = append(w.out, 0) // record attributes
	w.out = binary.AppendVarint(w.out, tsDelta)
	w.out = binary.AppendVarint(w.out, offDelta)
	w.out = appendNullable(w.out, key)
	w.out = appendNullable(w.out, value)
	w.out = append(w.out, 0) // header count, varint 0
	w.n++
	if w.max > 0 && len(w.out) > w.max {
		return fmt.Errorf("converted batch exceeds limit %d: %w", w.max, ErrBatchTooLarge)
	}
	if len(w.out)-12 > math.MaxInt32 {
		return fmt.Errorf("converted batch exceeds the v2 length field: %w", ErrBatchTooLarge)
	}
	return nil
}

// addWrapper decompresses a wrapper message and adds its inner messages.
// Kafka never nested compression, and inner messages must share the
// wrapper's magic; anything else is a malformed producer.
func (w *batchWriter) addWrapper(m legacyMessage) error {
	inner, err := decompressLegacy(m, w.decompressLimit())
	if err != nil {
		return err
	}
	if len(inner) == 0 {
		return fmt.Errorf("compressed message holds no messages: %w", ErrInvalidRecord)
	}
	for pos := 0; pos < len(inner); {
		im, n, err := readLegacyEntry(inner[pos:])
		if err != nil {
			return fmt.Errorf("inner message at byte %d: %w", pos, err)
		}
		switch {
		case im.codec() != CodecNone:
			return fmt.Errorf("inner message at byte %d: nested compression: %w", pos, ErrInvalidRecord)
		case im.Magic != m.Magic:
			return fmt.Errorf("inner message at byte %d: magic %d in a magic %d wrapper: %w", pos, im.Magic, m.Magic, ErrInvalidRecord)
		}
		ts := im.timestampOrNone()
		if m.logAppendTime() {
			ts = m.Timestamp
		}
		if err := w.add(im.Key, im.Value, ts, m.logAppendTime()); err != nil {
			return err
		}
		pos += n
	}
	return nil
}

func (w *batchWriter) decompressLimit() int {
	if w.max <= 0 || w.max > math.MaxInt32/legacyInflation {
		return math.MaxInt32
	}
	return legacyInflation * w.max
}

// finish fills in the header and returns the batch.
func (w *batchWriter) finish() []byte {
	b, be := w.out, binary.BigEndian
	var attrs uint16
	if w.allLogAppend {
		attrs |= attrLogAppendTime
	}
	be.PutUint64(b[offBaseOffset:], 0)
	be.PutUint32(b[offLength:], uint32(len(b)-12))
	be.PutUint32(b[offLeaderEpoch:], math.MaxUint32) // -1: set by the log
	b[offMagic] = 2
	be.PutUint16(b[offAttributes:], attrs)
	be.PutUint32(b[offLastOffsetDelta:], uint32(w.n-1))
	be.PutUint64(b[offFirstTimestamp:], uint64(w.baseTS))
	be.PutUint64(b[offMaxTimestamp:], uint64(w.maxTS))
	be.PutUint64(b[offProducerID:], math.MaxUint64)    // -1
	be.PutUint16(b[offProducerEpoch:], math.MaxUint16) // -1
	be.PutUint32(b[offBaseSequence:], math.MaxUint32)  // -1
	be.PutUint32(b[offNumRecords:], uint32(w.n))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

func varintLen(v int64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutVarint(buf[:], v)
}

func nullableLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	return append(binary.AppendVarint(dst, int64(len(b))), b...)
}

// decompressLegacy inflates a wrapper's value, refusing to produce more
// than limit bytes. kgo's decompressor has a fixed 2 GiB bound, so gzip and
// lz4 are streamed here through a limit; snappy declares its decoded length
// up front, which is checked before handing it to kgo.
func decompressLegacy(m legacyMessage, limit int) ([]byte, error) {
	if m.Value == nil {
		return nil, fmt.Errorf("compressed message has a null value: %w", ErrInvalidRecord)
	}
	var out []byte
	var err error
	switch c := m.codec(); c {
	case CodecGzip:
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(m.Value)); err == nil {
			out, err = readLimited(zr, limit)
		}
	case CodecLZ4:
		out, err = readLimited(lz4.NewReader(bytes.NewReader(m.Value)), limit)
		if err != nil && m.Magic == 0 && !errors.Is(err, ErrBatchTooLarge) {
			// Kafka before 0.10 computed the lz4 frame header checksum
			// wrongly (KAFKA-3160); such frames do not decode.
			return nil, fmt.Errorf("magic 0 lz4 message does not decode (pre-0.10 clients wrote a broken lz4 frame checksum, KAFKA-3160): %v: %w", err, ErrInvalidRecord)
		}
	case CodecSnappy:
		if err = checkSnappyLen(m.Value, limit); err == nil {
			out, err = snappyDecompressor.Decompress(m.Value, kgo.CodecSnappy)
		}
	default:
		return nil, fmt.Errorf("compression codec %s not allowed in magic %d: %w", c, m.Magic, ErrInvalidRecord)
	}
	if err != nil && !errors.Is(err, ErrBatchTooLarge) {
		err = fmt.Errorf("%s: %v: %w", m.codec(), err, ErrCorruptBatch)
	}
	return out, err
}

func readLimited(r io.Reader, limit int) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, fmt.Errorf("decompressed message set over %d bytes: %w", limit, ErrBatchTooLarge)
	}
	return out, nil
}

// xerialMagic starts snappy data framed by the Java xerial library: the
// magic, two int32 versions, then blocks of int32 length + raw snappy.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// checkSnappyLen sums the decoded lengths the snappy data claims, raw or
// xerial-framed, so a few bytes claiming gigabytes are rejected before
// anything is allocated. Malformed framing is left for the decoder.
func checkSnappyLen(src []byte, limit int) error {
	if len(src) <= 16 || !bytes.HasPrefix(src, xerialMagic) {
		l, err := s2.DecodedLen(src)
		if err == nil && l > limit {
			return fmt.Errorf("snappy data claims %d bytes, limit %d: %w", l, limit, ErrBatchTooLarge)
		}
		return nil
	}
	total := 0
	for rem := src[16:]; len(rem) >= 4; {
		size := int64(binary.BigEndian.Uint32(rem))
		rem = rem[4:]
		if size > int64(len(rem)) {
			return nil
		}
		if l, err := s2.DecodedLen(rem[:size]); err == nil {
			if total += l; total > limit {
				return fmt.Errorf("snappy data claims over %d bytes: %w", limit, ErrBatchTooLarge)
			}
		}
		rem = rem[size:]
	}
	return nil
}
