package segment

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// KV is one record for BuildBatch: a nil Value is a tombstone.
type KV struct {
	Key, Value []byte
}

// BuildBatch encodes records as one uncompressed v2 batch with relative
// offsets from 0 and every record at timestamp ts; the log assigns the real
// offsets and leader epoch on append. The broker's own writers (the group
// coordinator) use it to go through the same append path as a producer.
func BuildBatch(records []KV, ts int64) ([]byte, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("no records: %w", ErrInvalidRecord)
	}
	w := batchWriter{}
	w.out = make([]byte, BatchHeaderSize, BatchHeaderSize+64*len(records))
	for _, r := range records {
		if err := w.add(r.Key, r.Value, ts, false); err != nil {
			return nil, err
		}
	}
	return w.finish(), nil
}

// Record is one decoded record of a batch.
type Record struct {
	Offset    int64
	Timestamp int64
	Key       []byte // nil when the record has no key
	Value     []byte // nil for a tombstone
}

var recordDecompressor = kgo.DefaultDecompressor()

// EachRecord decodes the batch at the start of b (which must hold it whole)
// and calls fn for each record, in order, decompressing first if needed.
// Key and Value alias the batch (or its decompressed copy) and are valid only
// during the call. It is for the broker's own slow readers (replaying the
// group coordinator's log); the fetch path never decodes records.
func EachRecord(b []byte, fn func(Record) error) error {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return err
	}
	if h.Size() > len(b) || h.Size() < BatchHeaderSize {
		return fmt.Errorf("batch at %d: length %d, have %d bytes: %w", h.BaseOffset, h.Size(), len(b), ErrCorruptBatch)
	}
	recs := b[BatchHeaderSize:h.Size()]
	if c := h.Compression(); c != CodecNone {
		if recs, err = recordDecompressor.Decompress(recs, kgo.CompressionCodecType(c)); err != nil {
			return fmt.Errorf("batch at %d: %s: %w", h.BaseOffset, c, ErrCorruptBatch)
		}
	}
	pos := 0
	for i := int32(0); i < h.NumRecords; i++ {
		l, p, ok := varint(recs, pos)
		if !ok || l < 0 || int64(len(recs)-p) < l {
			return fmt.Errorf("batch at %d record %d: bad length: %w", h.BaseOffset, i, ErrInvalidRecord)
		}
		r := recs[p : p+int(l)]
		pos = p + int(l)
		rec, err := decodeRecord(r)
		if err != nil {
			return fmt.Errorf("batch at %d record %d: %w", h.BaseOffset, i, err)
		}
		rec.Offset += h.BaseOffset
		if h.LogAppendTime() {
			rec.Timestamp = h.MaxTimestamp
		} else {
			rec.Timestamp += h.FirstTimestamp
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

// errMalformedRecord is decodeRecord's one error: built once, since every
// record of a replay goes through decodeRecord and a healthy one must cost
// no allocation (EachRecord adds the batch and record to it).
var errMalformedRecord = fmt.Errorf("malformed record: %w", ErrInvalidRecord)

// decodeRecord reads a record's body (after its length); Offset and
// Timestamp come back as deltas.
func decodeRecord(r []byte) (Record, error) {
	var rec Record
	if len(r) < 1 {
		return rec, errMalformedRecord
	}
	ts, p, ok := varlong(r, 1)
	if !ok {
		return rec, errMalformedRecord
	}
	off, p, ok := varint(r, p)
	if !ok {
		return rec, errMalformedRecord
	}
	rec.Timestamp, rec.Offset = ts, off
	if rec.Key, p, ok = nullableBytes(r, p); !ok {
		return rec, errMalformedRecord
	}
	if rec.Value, _, ok = nullableBytes(r, p); !ok {
		return rec, errMalformedRecord
	}
	return rec, nil
}

func nullableBytes(b []byte, pos int) ([]byte, int, bool) {
	l, p, ok := varint(b, pos)
	if !ok || l < -1 || l > int64(len(b)-p) {
		return nil, pos, false
	}
	if l == -1 {
		return nil, p, true
	}
	return b[p : p+int(l) : p+int(l)], p + int(l), true
}
