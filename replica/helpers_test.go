package replica

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// testLogger discards output so test logs stay readable; set -v style
// debugging by swapping in slog.Default().
func testLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// batchOpts describes a record batch built by makeBatch.
type batchOpts struct {
	pid      int64 // -1: not idempotent
	epoch    int16
	seq      int32
	n        int   // records
	ts       int64 // first timestamp; record i has ts+i
	attrs    int16
	valueLen int
}

// makeBatch encodes an uncompressed magic-2 record batch the way a producer
// would (base offset 0), with a valid CRC-32C over attributes..end.
func makeBatch(t testing.TB, o batchOpts) []byte {
	t.Helper()
	if o.n <= 0 {
		o.n = 1
	}
	var records []byte
	for i := 0; i < o.n; i++ {
		r := kmsg.Record{
			TimestampDelta64: int64(i),
			OffsetDelta:      int32(i),
			Value:            make([]byte, o.valueLen),
		}
		// Length counts the bytes after the length varint; encode once with
		// Length 0 (a one-byte varint) to measure.
		body := len(r.AppendTo(nil)) - 1
		r.Length = int32(body)
		records = r.AppendTo(records)
	}
	seq := o.seq
	if o.pid < 0 {
		seq = -1
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           o.attrs,
		LastOffsetDelta:      int32(o.n - 1),
		FirstTimestamp:       o.ts,
		MaxTimestamp:         o.ts + int64(o.n-1),
		ProducerID:           o.pid,
		ProducerEpoch:        o.epoch,
		FirstSequence:        seq,
		NumRecords:           int32(o.n),
		Records:              records,
	}
	if o.pid < 0 {
		b.ProducerEpoch = -1
	}
	buf := b.AppendTo(nil)
	binary.BigEndian.PutUint32(buf[8:12], uint32(len(buf)-12))
	crc := crc32.Checksum(buf[21:], crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(buf[17:21], crc)
	return buf
}
