// Package testkit is what the tests of several packages share: one
// record-batch builder, one way to wait for a condition, one table of
// network engines. Only _test.go files import it, so nothing here reaches
// the binary.
//
// It imports no package of this module, so any package's own tests (netio's
// and segment's included) can use it without an import cycle.
package testkit

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record is one record of a Batch.
type Record struct {
	Key, Value     []byte // nil is a null key or value
	TimestampDelta int64  // from the batch's FirstTimestamp
	Headers        []kmsg.Header
}

// Producer is the idempotent producer a Batch says it comes from.
type Producer struct {
	ID            int64
	Epoch         int16
	FirstSequence int32
}

// Batch describes a magic-2 record batch as a producer sends it. The zero
// value is an empty batch at base offset 0 from a producer that is not
// idempotent.
type Batch struct {
	BaseOffset           int64
	PartitionLeaderEpoch int32 // producers send -1; the broker stamps its own
	Attributes           int16 // codec bits, timestamp type, …; Encode compresses nothing
	FirstTimestamp       int64
	// MaxTimestamp is written as given when not 0; 0 means FirstTimestamp
	// plus the largest TimestampDelta (or, with RecordsSection, plus
	// NumRecords-1, as if record i had delta i).
	MaxTimestamp int64
	// Producer nil writes producer id, epoch and first sequence -1.
	Producer *Producer
	Records  []Record // record i gets offset delta i
	// RecordsSection, when not nil, is the records section written as it
	// is (compressed with the codec in Attributes, or damaged on purpose),
	// and NumRecords is the count the header claims; Records is ignored.
	RecordsSection []byte
	NumRecords     int32
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode returns the batch's bytes, with its length field and its CRC-32C
// (over attributes to the end) right.
func (b Batch) Encode() []byte {
	kb := kmsg.RecordBatch{
		FirstOffset:          b.BaseOffset,
		PartitionLeaderEpoch: b.PartitionLeaderEpoch,
		Magic:                2,
		Attributes:           b.Attributes,
		FirstTimestamp:       b.FirstTimestamp,
		MaxTimestamp:         b.MaxTimestamp,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
	}
	if p := b.Producer; p != nil {
		kb.ProducerID, kb.ProducerEpoch, kb.FirstSequence = p.ID, p.Epoch, p.FirstSequence
	}
	var maxDelta int64
	if b.RecordsSection != nil {
		kb.Records, kb.NumRecords = b.RecordsSection, b.NumRecords
		maxDelta = max(int64(b.NumRecords)-1, 0)
	} else {
		kb.NumRecords = int32(len(b.Records))
		for i, r := range b.Records {
			rec := kmsg.Record{
				TimestampDelta64: r.TimestampDelta,
				OffsetDelta:      int32(i),
				Key:              r.Key,
				Value:            r.Value,
				Headers:          r.Headers,
			}
			// Length (a varint) counts the bytes after itself: encode
			// once with Length 0, one byte, to learn them.
			rec.Length = int32(len(rec.AppendTo(nil)) - 1)
			kb.Records = rec.AppendTo(kb.Records)
			maxDelta = max(maxDelta, r.TimestampDelta)
		}
	}
	kb.LastOffsetDelta = kb.NumRecords - 1
	if kb.MaxTimestamp == 0 {
		kb.MaxTimestamp = b.FirstTimestamp + maxDelta
	}
	raw := kb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12)) // length: all after itself
	FixCRC(raw)
	return raw
}

// FixCRC rewrites the CRC-32C of the batch at the start of raw for what its
// bytes say now, as far as its length field reaches (or raw ends): so a
// test can change a header field and still get past the CRC check to the
// one it means to trip.
func FixCRC(raw []byte) {
	size := min(12+int(binary.BigEndian.Uint32(raw[8:])), len(raw))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:size], castagnoli))
}
