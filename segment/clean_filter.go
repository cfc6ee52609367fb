package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// cleanFilter decides, record by record, what a cleaning pass keeps of a
// batch, and writes the batches that survive (Kafka's
// MemoryRecords.filterTo with the cleaner's RecordFilter).
type cleanFilter struct {
	m *offsetMap
	// retainTombstones is set per source segment: its tombstones are
	// younger than delete.retention.ms (see deleteHorizon) and stay.
	retainTombstones bool
	// lastOfProducer maps each idempotent producer to the last offset of
	// its newest batch in the log: that batch keeps its header even when
	// all its records go, so the producer's sequence state survives.
	lastOfProducer map[int64]int64
	stats          *CleanStats

	recs []byte       // scratch: the kept records, uncompressed
	zbuf bytes.Buffer // scratch for the compressor
}

// cleanedRecord is one record of a batch being filtered: its raw bytes
// (length prefix included) and what the decision needs.
type cleanedRecord struct {
	raw       []byte
	offset    int64
	timestamp int64 // absolute (CreateTime) timestamp
}

// filter appends to dst what survives of batch b (whole, its header h).
// mustKeep makes an emptied batch survive as a bare header: the cleaner
// sets it for the last batch of every cleaned segment, so the segment ends
// at the offset the old ones ended at (no offset gap between segments,
// which recovery would report as lost data).
func (f *cleanFilter) filter(dst, b []byte, h BatchHeader, mustKeep bool) ([]byte, error) {
	if h.Control() {
		// Transaction control batches (commit/abort markers) are kept
		// as they are. Kafka removes a marker once the transaction's
		// data is gone and delete.retention.ms has passed, and removes
		// the data batches of aborted transactions: both belong here,
		// together with the producer's transaction index.
		f.stats.RecordsKept += int64(h.NumRecords)
		return append(dst, b...), nil
	}
	recs, err := batchRecords(b, h)
	if err != nil {
		return dst, err
	}
	kept := f.recs[:0]
	n, dropped := int32(0), false
	maxTs := int64(-1)
	err = eachRawRecord(recs, h, func(r cleanedRecord, key, value []byte) {
		switch {
		case key == nil:
			// A compacted topic refuses null keys; one that got in
			// before the topic was compacted has nothing to keep it.
			f.stats.RecordsDropped++
			dropped = true
		case f.m.latest(key) > r.offset:
			f.stats.RecordsDropped++
			dropped = true
		case value == nil && !f.retainTombstones:
			f.stats.RecordsDropped++
			f.stats.TombstonesDropped++
			dropped = true
		default:
			f.stats.RecordsKept++
			kept = append(kept, r.raw...)
			n++
			maxTs = max(maxTs, r.timestamp)
		}
	})
	f.recs = kept
	if err != nil {
		return dst, err
	}
	switch {
	case !dropped:
		return append(dst, b...), nil
	case n == 0:
		if mustKeep || (h.ProducerID >= 0 && f.lastOfProducer[h.ProducerID] == h.LastOffset()) {
			return appendEmptyBatch(dst, b, h), nil
		}
		return dst, nil
	}
	if h.LogAppendTime() {
		maxTs = h.MaxTimestamp
	}
	return f.appendRebuilt(dst, b, h, kept, n, maxTs)
}

// batchRecords returns the records section of batch b, decompressed. The
// batch passed max.decompressed.message.bytes when it was produced.
func batchRecords(b []byte, h BatchHeader) ([]byte, error) {
	recs := b[BatchHeaderSize:h.Size()]
	if c := h.Compression(); c != CodecNone {
		out, err := recordDecompressor.Decompress(recs, kgo.CompressionCodecType(c))
		if err != nil {
			return nil, fmt.Errorf("batch at %d: %s: %w", h.BaseOffset, c, ErrCorruptBatch)
		}
		return out, nil
	}
	return recs, nil
}

// crcOf is the CRC-32C a batch's header must carry.
func crcOf(b []byte) uint32 { return crc32.Checksum(b[offAttributes:], castagnoli) }

// eachRawRecord walks the (uncompressed) records section of the batch
// with header h.
func eachRawRecord(recs []byte, h BatchHeader, fn func(r cleanedRecord, key, value []byte)) error {
	pos := 0
	for i := int32(0); i < h.NumRecords; i++ {
		l, p, ok := varint(recs, pos)
		if !ok || l < 0 || int64(len(recs)-p) < l {
			return fmt.Errorf("batch at %d record %d: bad length: %w", h.BaseOffset, i, ErrInvalidRecord)
		}
		rec, err := decodeRecord(recs[p : p+int(l)])
		if err != nil {
			return fmt.Errorf("batch at %d record %d: %w", h.BaseOffset, i, err)
		}
		fn(cleanedRecord{raw: recs[pos : p+int(l)], offset: h.BaseOffset + rec.Offset,
			timestamp: h.FirstTimestamp + rec.Timestamp}, rec.Key, rec.Value)
		pos = p + int(l)
	}
	if pos != len(recs) {
		return fmt.Errorf("batch at %d: %d bytes after its %d records: %w", h.BaseOffset, len(recs)-pos, h.NumRecords, ErrInvalidRecord)
	}
	return nil
}

// appendRebuilt appends a batch holding the kept records of b. Base and
// last offset, leader epoch, producer fields, attributes (the codec
// included) and first timestamp stay those of b: the records keep their
// offset and timestamp deltas byte for byte, and the producer's sequence
// arithmetic (base sequence + last offset delta) still holds. Count,
// length, max timestamp and CRC are the new batch's.
func (f *cleanFilter) appendRebuilt(dst, b []byte, h BatchHeader, kept []byte, n int32, maxTs int64) ([]byte, error) {
	section := kept
	if c := h.Compression(); c != CodecNone {
		comp, err := compressorFor(c)
		if err != nil {
			return dst, err
		}
		f.zbuf.Reset()
		out, got := comp.Compress(&f.zbuf, kept)
		if got != kgo.CompressionCodecType(c) {
			return dst, fmt.Errorf("batch at %d: recompressing with %s failed", h.BaseOffset, c)
		}
		section = out
	}
	start := len(dst)
	dst = append(dst, b[:BatchHeaderSize]...)
	dst = append(dst, section...)
	nb := dst[start:]
	be := binary.BigEndian
	be.PutUint32(nb[offLength:], uint32(len(nb)-12))
	be.PutUint64(nb[offMaxTimestamp:], uint64(maxTs))
	be.PutUint32(nb[offNumRecords:], uint32(n))
	be.PutUint32(nb[offCRC:], crcOf(nb))
	return dst, nil
}

// appendEmptyBatch appends the header of b with no records, as Kafka
// writes an emptied batch it must keep: offsets, producer fields and
// epoch as in b, no compression (there is nothing to compress), both
// timestamps b's max timestamp.
func appendEmptyBatch(dst, b []byte, h BatchHeader) []byte {
	start := len(dst)
	dst = append(dst, b[:BatchHeaderSize]...)
	nb := dst[start:]
	be := binary.BigEndian
	be.PutUint32(nb[offLength:], minBatchLength)
	be.PutUint16(nb[offAttributes:], uint16(h.Attributes)&^attrCompressionMask)
	be.PutUint64(nb[offFirstTimestamp:], uint64(h.MaxTimestamp))
	be.PutUint32(nb[offNumRecords:], 0)
	be.PutUint32(nb[offCRC:], crcOf(nb))
	return dst
}

// compressorFor returns franz-go's compressor for codec c (the same
// pierrec/lz4 and klauspost/compress encoders producers use).
func compressorFor(c Codec) (kgo.Compressor, error) {
	comps := compressors()
	if int(c) >= len(comps) || comps[c] == nil {
		return nil, fmt.Errorf("no compressor for codec %s", c)
	}
	return comps[c], nil
}

var compressors = sync.OnceValue(func() []kgo.Compressor {
	out := make([]kgo.Compressor, CodecZstd+1)
	for c, codec := range map[Codec]kgo.CompressionCodec{
		CodecGzip: kgo.GzipCompression(), CodecSnappy: kgo.SnappyCompression(),
		CodecLZ4: kgo.Lz4Compression(), CodecZstd: kgo.ZstdCompression(),
	} {
		comp, err := kgo.DefaultCompressor(codec)
		if err != nil {
			panic(fmt.Sprintf("compressor for %s: %v", c, err)) // static options; cannot fail
		}
		out[c] = comp
	}
	return out
})
