package broker

import (
	"errors"
	"fmt"
	"io"

	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// maxDecompressedBytes is max.decompressed.message.bytes: the most bytes
// the records of one compressed batch may inflate to, at produce and when
// a timestamp lookup reads inside a batch.
func (b *Broker) maxDecompressedBytes() int64 { return int64(b.cfg.MaxDecompressedMessageBytes) }

// recordAtOrAfter returns the offset and timestamp of the first record at
// or after timestamp ts in the batch that holds offset. Kafka answers
// ListOffsets by timestamp per record, and one batch can span a wide time
// range. The batch is streamed from its file, decompressing as it goes, so
// a batch that inflates to gigabytes costs bounded memory; a batch that
// cannot be read is logged and ok is false (the caller then answers with
// the batch's own offset).
func (b *Broker) recordAtOrAfter(p *replica.Partition, offset, ts int64) (roff, rts int64, ok bool) {
	roff, rts, ok, err := b.findRecord(p, offset, ts)
	if err != nil {
		b.logger.Warn("timestamp lookup could not read inside a batch", "topic", p.Topic(),
			"partition", p.Index(), "offset", offset, "err", err)
	}
	return roff, rts, ok
}

func (b *Broker) findRecord(p *replica.Partition, offset, ts int64) (int64, int64, bool, error) {
	rr, err := p.Read(offset, 1, true)
	if err != nil {
		return 0, 0, false, err
	}
	defer rr.Release()
	if len(rr.Ranges) == 0 {
		return 0, 0, false, errors.New("no batch")
	}
	fr := rr.Ranges[0]
	head := make([]byte, segment.BatchHeaderSize)
	if _, err := fr.File.ReadAt(head, fr.Offset); err != nil {
		return 0, 0, false, err
	}
	h, err := segment.ParseBatchHeader(head)
	if err != nil {
		return 0, 0, false, err
	}
	if int64(h.Size()) > fr.Length {
		return 0, 0, false, fmt.Errorf("batch at %d runs past its file range", h.BaseOffset)
	}
	size := int64(h.Size() - segment.BatchHeaderSize)
	body := io.NewSectionReader(fr.File, fr.Offset+segment.BatchHeaderSize, size)
	return segment.RecordAtOrAfter(body, size, h, ts, b.maxDecompressedBytes())
}
