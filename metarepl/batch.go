package metarepl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Batch is one batch of the metadata log: the offset of its first record,
// the controller epoch (leader epoch) that wrote it, and its records as
// opaque bytes (the controller's encoded records). It spans
// len(Records) offsets; a batch is appended, replicated, read and
// truncated whole.
type Batch struct {
	Offset  int64
	Epoch   int32
	Records [][]byte
	// Checkpoint marks a batch whose records restate the whole metadata
	// state as of its offset: every batch below it is redundant once it
	// is committed, so a log may be trimmed to start at it (Log.TrimTo).
	Checkpoint bool
}

// End is the offset after the batch's last record.
func (b Batch) End() int64 { return b.Offset + int64(len(b.Records)) }

// A frame is one batch as the log file and the wire hold it:
//
//	bodyLen uint32 | crc32c(body) uint32 | body
//	body (version 2) = offset int64 | epoch int32 | attributes uint16 |
//	                   count uint32 | count × (len uint32 | bytes)
//	body (version 1) = offset int64 | epoch int32 | count uint32 | ...
//
// all big-endian. The checksum covers the whole body, attributes included,
// so a torn or flipped frame is always detected. Attribute bit 0 is
// Checkpoint; other bits are refused (a newer format). Version 1 frames,
// which have no attributes, are still read (a log file written before
// checkpoints existed); every frame written is version 2.
const (
	frameHeader = 8
	bodyFixed   = 18 // version 2
	bodyFixedV1 = 16
	// maxFrameBody bounds a frame's body so a corrupted length cannot make
	// a reader allocate gigabytes.
	maxFrameBody = 64 << 20

	attrCheckpoint = 1 << 0
	attrKnown      = attrCheckpoint
)

// Frame versions: version 1 has no attributes field.
const (
	frameV1 = 1
	frameV2 = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errShortFrame says the bytes end inside a frame: a torn tail in a file.
var errShortFrame = errors.New("metarepl: frame cut short")

// appendFrame appends b's frame (version 2) to dst.
func appendFrame(dst []byte, b Batch) ([]byte, error) {
	size := bodyFixed
	for _, r := range b.Records {
		size += 4 + len(r)
	}
	if size > maxFrameBody {
		return dst, fmt.Errorf("metarepl: batch at %d is %d bytes, over %d", b.Offset, size, maxFrameBody)
	}
	if len(b.Records) == 0 {
		return dst, fmt.Errorf("metarepl: empty batch at %d", b.Offset)
	}
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	dst = binary.BigEndian.AppendUint32(dst, 0) // crc, below
	dst = binary.BigEndian.AppendUint64(dst, uint64(b.Offset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(b.Epoch))
	attrs := uint16(0)
	if b.Checkpoint {
		attrs |= attrCheckpoint
	}
	dst = binary.BigEndian.AppendUint16(dst, attrs)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b.Records)))
	for _, r := range b.Records {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(r)))
		dst = append(dst, r...)
	}
	body := dst[start+frameHeader:]
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(body, castagnoli))
	return dst, nil
}

// frameLen returns the length of the frame at the start of b, or
// errShortFrame when b is shorter than its header or its declared length.
func frameLen(b []byte) (int, error) {
	if len(b) < frameHeader {
		return 0, errShortFrame
	}
	n := binary.BigEndian.Uint32(b)
	if n < bodyFixedV1 || n > maxFrameBody {
		return 0, fmt.Errorf("metarepl: frame body length %d out of range", n)
	}
	if len(b) < frameHeader+int(n) {
		return 0, errShortFrame
	}
	return frameHeader + int(n), nil
}

// decodeFrame decodes the frame (of the given frame version) at the start
// of b and returns it with its length. Records alias b.
func decodeFrame(b []byte, version int) (Batch, int, error) {
	n, err := frameLen(b)
	if err != nil {
		return Batch{}, 0, err
	}
	body := b[frameHeader:n]
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(b[4:]); got != want {
		return Batch{}, 0, fmt.Errorf("metarepl: frame checksum %08x, want %08x", got, want)
	}
	bt := Batch{Offset: int64(binary.BigEndian.Uint64(body)), Epoch: int32(binary.BigEndian.Uint32(body[8:]))}
	rest := body[12:]
	if version >= frameV2 {
		if len(rest) < 2 {
			return Batch{}, 0, fmt.Errorf("metarepl: frame at %d cut short", bt.Offset)
		}
		attrs := binary.BigEndian.Uint16(rest)
		if attrs&^attrKnown != 0 {
			return Batch{}, 0, fmt.Errorf("metarepl: frame at %d has unknown attributes %#x", bt.Offset, attrs)
		}
		bt.Checkpoint = attrs&attrCheckpoint != 0
		rest = rest[2:]
	}
	if len(rest) < 4 {
		return Batch{}, 0, fmt.Errorf("metarepl: frame at %d cut short", bt.Offset)
	}
	count := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if count == 0 || uint64(count)*4 > uint64(len(rest)) {
		return Batch{}, 0, fmt.Errorf("metarepl: frame at %d claims %d records in %d bytes", bt.Offset, count, len(rest))
	}
	bt.Records = make([][]byte, count)
	for i := range bt.Records {
		if len(rest) < 4 {
			return Batch{}, 0, fmt.Errorf("metarepl: frame at %d: record %d cut short", bt.Offset, i)
		}
		l := binary.BigEndian.Uint32(rest)
		if uint64(l) > uint64(len(rest)-4) {
			return Batch{}, 0, fmt.Errorf("metarepl: frame at %d: record %d of %d bytes overruns", bt.Offset, i, l)
		}
		bt.Records[i] = rest[4 : 4+l : 4+l]
		rest = rest[4+l:]
	}
	if len(rest) != 0 {
		return Batch{}, 0, fmt.Errorf("metarepl: frame at %d: %d bytes after its records", bt.Offset, len(rest))
	}
	if bt.Offset < 0 || bt.Epoch < 0 {
		return Batch{}, 0, fmt.Errorf("metarepl: frame with offset %d, epoch %d", bt.Offset, bt.Epoch)
	}
	return bt, n, nil
}
