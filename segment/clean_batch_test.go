package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// Tests of what the cleaner writes in place of a batch it changes.

// compressBatch rewrites an uncompressed batch b with its records section
// compressed with codec.
func compressBatch(t *testing.T, b []byte, codec Codec) []byte {
	t.Helper()
	comp, err := compressorFor(codec)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	section, _ := comp.Compress(&buf, b[BatchHeaderSize:])
	out := append(append([]byte(nil), b[:BatchHeaderSize]...), section...)
	binary.BigEndian.PutUint32(out[offLength:], uint32(len(out)-12))
	binary.BigEndian.PutUint16(out[offAttributes:], uint16(codec))
	binary.BigEndian.PutUint32(out[offCRC:], crcOf(out))
	return out
}

func TestCleanCompressedBatchesKeepTheirCodec(t *testing.T) {
	for _, codec := range []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			fs, c := NewMemFS(), newClock()
			l := openLog(t, fs, testDir, cleanConfig(), c)
			defer l.Close()
			for i := 0; i < 20; i++ {
				kvs := []KV{
					{Key: []byte("a"), Value: fmt.Appendf(nil, "a%d", i)},
					{Key: fmt.Appendf(nil, "u%d", i), Value: []byte("unique")},
					{Key: []byte("b"), Value: fmt.Appendf(nil, "b%d", i)},
				}
				b, err := BuildBatch(kvs, c.now().UnixMilli())
				if err != nil {
					t.Fatal(err)
				}
				appendRaw(t, l, compressBatch(t, b, codec))
			}
			rollTo(t, l, c)
			pre := viewOf(t, l)
			st, err := l.Clean(CleanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkCleaned(t, pre, viewOf(t, l), st.EndOffset, st.EndOffset)
			b := readEverything(t, l)
			rebuilt := 0
			for p := 0; p < len(b); {
				h := parseHeader(b[p:])
				if h.LastOffset() < 60 && h.NumRecords > 0 && h.NumRecords < 3 {
					rebuilt++
					if h.Compression() != codec {
						t.Fatalf("rebuilt batch at %d compressed with %s", h.BaseOffset, h.Compression())
					}
				}
				p += h.Size()
			}
			if rebuilt == 0 || st.RecordsDropped == 0 {
				t.Fatalf("no batch was rebuilt: %+v", st)
			}
		})
	}
}

// TestCleanKeepsEmptiedBatches: a batch all of whose records go is kept as
// a bare header when it is its idempotent producer's last batch (the
// producer's sequence state lives in it) or the last batch of a cleaned
// segment (the segment must end where it ended); other emptied batches go.
// The producers' last batches are found by the pass, or given to it.
func TestCleanKeepsEmptiedBatches(t *testing.T) {
	for _, given := range []bool{false, true} {
		t.Run(fmt.Sprintf("given=%v", given), func(t *testing.T) {
			fs, c := NewMemFS(), newClock()
			l := openLog(t, fs, testDir, cleanConfig(), c)
			defer l.Close()
			kv := func(k, v string) []KV { return []KV{{Key: []byte(k), Value: []byte(v)}} }
			mustBatch := func(kvs []KV) []byte {
				b, err := BuildBatch(kvs, c.now().UnixMilli())
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			first := appendRaw(t, l, setProducer(mustBatch(kv("a", "1")), 9, 0))
			last := appendRaw(t, l, setProducer(mustBatch(kv("b", "1")), 9, 1))
			plain := appendKVs(t, l, kv("c", "1"), c.now().UnixMilli())
			appendKVs(t, l, append(append(kv("a", "2"), kv("b", "2")...), kv("c", "2")...), c.now().UnixMilli())
			rollTo(t, l, c)
			segEnd := l.active().base
			var opts CleanOptions
			keep, drop := last, first
			if given {
				// The producer state says the first batch is the last
				// one (as if a later one had been truncated away).
				opts.ProducerLastOffsets = map[int64]int64{9: first.LastOffset}
				keep, drop = first, last
			}
			if _, err := l.Clean(opts); err != nil {
				t.Fatal(err)
			}
			b := readEverything(t, l)
			kept := map[int64]BatchHeader{}
			for p := 0; p < len(b); {
				h := parseHeader(b[p:])
				kept[h.LastOffset()] = h
				p += h.Size()
			}
			if _, ok := kept[drop.LastOffset]; ok {
				t.Fatalf("an emptied batch nothing needs was kept: %+v", kept[drop.LastOffset])
			}
			if _, ok := kept[plain.LastOffset]; ok {
				t.Fatalf("an emptied batch nothing needs was kept: %+v", kept[plain.LastOffset])
			}
			h, ok := kept[keep.LastOffset]
			if !ok || h.NumRecords != 0 || h.ProducerID != 9 {
				t.Fatalf("producer 9's last batch (%d) is gone or changed: %+v", keep.LastOffset, h)
			}
			if _, ok := kept[segEnd-1]; !ok {
				t.Fatalf("the segment's last batch (%d) is gone", segEnd-1)
			}
		})
	}
}

// setProducer stamps batch b (one BuildBatch batch) as coming from an
// idempotent producer, fixing the CRC.
func setProducer(b []byte, id int64, seq int32) []byte {
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(id))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], 0)
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(seq))
	binary.BigEndian.PutUint32(b[offCRC:], crcOf(b))
	return b
}
