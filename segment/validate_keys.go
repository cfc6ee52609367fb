package segment

import (
	"encoding/binary"
	"fmt"
)

// A compacted topic keeps the last record of each key, so a record without
// a key has nothing to be kept under: Kafka refuses it at produce
// (LogValidator.validateKey: INVALID_RECORD, naming each such record by its
// index within its batch). FindNullKeys finds those records while
// validating, so that each compressed batch is inflated once.

// MaxNullKeysReported caps NullKeys.Indexes. Kafka names every keyless
// record, so a batch of a million of them would build a million errors and
// a response of tens of megabytes. Producers use the indexes only to tell
// which of a batch's records failed for a reason of their own; records past
// the cap fail with their batch all the same, and Count stays exact.
const MaxNullKeysReported = 1000

// NullKeys are the records without a key in the first batch of a produce
// request that has any: the batch where Kafka's validator stops.
type NullKeys struct {
	Batch   int     // that batch's index among the request's batches
	Count   int     // how many of its records have a null key; 0: none
	Indexes []int32 // the first MaxNullKeysReported of their indexes within the batch, ascending
}

// FindNullKeys validates buf (one or more record batches of a produce
// request) as ValidateBatches(buf, maxBatchBytes) and
// ValidateCompressedBatches(buf, maxDecompressed) do, and refuses what they
// refuse with the same errors, so that a damaged batch is reported as
// damaged rather than as keyless. Then it reports the records without a
// key (Count 0: none). Compressed batches are streamed as
// ValidateCompressedBatches streams them: memory stays bounded, and at
// most maxDecompressed bytes (<= 0: the default) are inflated per batch.
func FindNullKeys(buf []byte, maxBatchBytes int, maxDecompressed int64) (NullKeys, error) {
	if maxDecompressed <= 0 {
		maxDecompressed = DefaultMaxDecompressedBytes
	}
	if len(buf) == 0 {
		return NullKeys{}, fmt.Errorf("empty record set: %w", ErrCorruptBatch)
	}
	var nk NullKeys
	for pos, batch := 0, 0; pos < len(buf); batch++ {
		h, err := validateBatch(buf[pos:], maxBatchBytes)
		if err != nil {
			return NullKeys{}, fmt.Errorf("batch at byte %d: %w", pos, err)
		}
		b := buf[pos : pos+h.Size()]
		var at func(i int32)
		if nk.Count == 0 {
			// Only the first batch with keyless records is reported,
			// but every batch is validated.
			at = func(i int32) {
				nk.Batch = batch
				nk.Count++
				if len(nk.Indexes) < MaxNullKeysReported {
					nk.Indexes = append(nk.Indexes, i)
				}
			}
		}
		if h.Compression() == CodecNone {
			if at != nil {
				eachNullKey(b[BatchHeaderSize:], h.NumRecords, at)
			}
		} else if err := checkCompressed(b[BatchHeaderSize:], h, maxDecompressed, at); err != nil {
			return NullKeys{}, fmt.Errorf("batch at byte %d: %w", pos, err)
		}
		pos += h.Size()
	}
	return nk, nil
}

// eachNullKey calls at with the index of each record of an uncompressed
// records section that has a null key. The section must have passed
// checkRecords.
func eachNullKey(recs []byte, count int32, at func(i int32)) {
	pos := 0
	for i := int32(0); i < count; i++ {
		l, n := binary.Varint(recs[pos:])
		body := recs[pos+n : pos+n+int(l)]
		_, p, _ := varlong(body, 1) // after attributes: timestamp delta
		_, p, _ = varint(body, p)   // offset delta
		if nullKey(body[p:]) {
			at(i)
		}
		pos += n + int(l)
	}
}

// nullKey says whether p starts with the length of a null field (-1).
func nullKey(p []byte) bool {
	v, n := binary.Varint(p)
	return n > 0 && v == -1
}
