package broker

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// decompressor handles every Kafka codec, including the xerial framing
// that Java clients put around snappy.
var decompressor = kgo.DefaultDecompressor()

// readBatchAt copies the whole batch that holds offset out of the log. Only
// slow paths use it (timestamp lookups), never fetch.
func readBatchAt(p *replica.Partition, offset int64) ([]byte, segment.BatchHeader, error) {
	rr, err := p.Read(offset, 1, true)
	if err != nil {
		return nil, segment.BatchHeader{}, err
	}
	defer rr.Release()
	if len(rr.Ranges) == 0 {
		return nil, segment.BatchHeader{}, errors.New("no batch")
	}
	fr := rr.Ranges[0]
	head := make([]byte, segment.BatchHeaderSize)
	if _, err := fr.File.ReadAt(head, fr.Offset); err != nil {
		return nil, segment.BatchHeader{}, err
	}
	h, err := segment.ParseBatchHeader(head)
	if err != nil {
		return nil, h, err
	}
	if int64(h.Size()) > fr.Length {
		return nil, h, fmt.Errorf("batch at %d runs past its file range", h.BaseOffset)
	}
	buf := make([]byte, h.Size())
	if _, err := fr.File.ReadAt(buf, fr.Offset); err != nil {
		return nil, h, err
	}
	return buf, h, nil
}

// recordAtOrAfter returns the offset and timestamp of the first record of
// batch whose timestamp is at least ts. Kafka answers ListOffsets by
// timestamp per record, and one batch can span a wide time range.
func recordAtOrAfter(batch []byte, h segment.BatchHeader, ts int64) (offset, timestamp int64, ok bool) {
	if h.LogAppendTime() {
		// Every record carries the batch's append time.
		return h.BaseOffset, h.MaxTimestamp, h.MaxTimestamp >= ts
	}
	records := batch[segment.BatchHeaderSize:]
	if codec := h.Compression(); codec != segment.CodecNone {
		var err error
		if records, err = decompressor.Decompress(records, kgo.CompressionCodecType(codec)); err != nil {
			return 0, 0, false
		}
	}
	for i := int32(0); i < h.NumRecords && len(records) > 0; i++ {
		length, n := binary.Varint(records)
		if n <= 0 || length < 0 || int64(len(records)-n) < length {
			return 0, 0, false
		}
		body := records[n : n+int(length)]
		records = records[n+int(length):]
		if len(body) < 1 {
			return 0, 0, false
		}
		tsDelta, n1 := binary.Varint(body[1:]) // after the attributes byte
		if n1 <= 0 {
			return 0, 0, false
		}
		offDelta, n2 := binary.Varint(body[1+n1:])
		if n2 <= 0 {
			return 0, 0, false
		}
		if rts := h.FirstTimestamp + tsDelta; rts >= ts {
			return h.BaseOffset + offDelta, rts, true
		}
	}
	return 0, 0, false
}
