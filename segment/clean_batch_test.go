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

// TestCleanFilter runs the record filter alone over one batch of four
// records (offsets 100..103: a=1, b=1, a tombstone, a record without key;
// all at timestamp 1000), for each situation the cleaner meets.
func TestCleanFilter(t *testing.T) {
	build := func(attrs uint16, maxTs int64, producer int64) []byte {
		b, err := BuildBatch([]KV{
			{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("1")},
			{Key: []byte("a")}, {Value: []byte("no key")},
		}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		SetBaseOffset(b, 100)
		if producer >= 0 {
			b = setProducer(b, producer, 5)
		}
		binary.BigEndian.PutUint16(b[offAttributes:], binary.BigEndian.Uint16(b[offAttributes:])|attrs)
		if maxTs > 0 {
			binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(maxTs))
		}
		binary.BigEndian.PutUint32(b[offCRC:], crcOf(b))
		return b
	}
	type kept struct {
		offsets []int64 // records left, or nil for a bare header
		maxTs   int64
	}
	for _, tc := range []struct {
		name       string
		batch      []byte
		latest     map[string]int64 // the map: key -> latest offset
		tombstones bool             // retain tombstones
		mustKeep   bool
		producers  map[int64]int64
		want       *kept // nil: the batch goes
		verbatim   bool
	}{
		{name: "nothing superseded, tombstones kept", batch: build(0, 0, -1),
			latest: map[string]int64{"a": 102, "b": 101}, tombstones: true,
			want: &kept{[]int64{101, 102}, 1000}},
		{name: "tombstone past the horizon", batch: build(0, 0, -1),
			latest: map[string]int64{"a": 102, "b": 101},
			want:   &kept{[]int64{101}, 1000}},
		{name: "later records elsewhere", batch: build(0, 0, -1),
			latest: map[string]int64{"a": 500, "b": 500}},
		{name: "emptied, the segment's last", batch: build(0, 0, -1), mustKeep: true,
			latest: map[string]int64{"a": 500, "b": 500}, want: &kept{nil, 1000}},
		{name: "emptied, its producer's last", batch: build(0, 0, 7), producers: map[int64]int64{7: 103},
			latest: map[string]int64{"a": 500, "b": 500}, want: &kept{nil, 1000}},
		{name: "emptied, not its producer's last", batch: build(0, 0, 7), producers: map[int64]int64{7: 900},
			latest: map[string]int64{"a": 500, "b": 500}},
		{name: "log append time keeps the max timestamp", batch: build(attrLogAppendTime, 5555, -1),
			latest: map[string]int64{"a": 102, "b": 101}, tombstones: true,
			want: &kept{[]int64{101, 102}, 5555}},
		{name: "control batch as it is", batch: build(attrControl|attrTransactional, 0, 7),
			latest: map[string]int64{"a": 500, "b": 500}, verbatim: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newOffsetMap(1<<20, 0)
			for k, off := range tc.latest {
				m.put([]byte(k), off)
			}
			stats := &CleanStats{}
			f := &cleanFilter{m: m, retainTombstones: tc.tombstones, lastOfProducer: tc.producers, stats: stats}
			h := parseHeader(tc.batch)
			out, err := f.filter(nil, tc.batch, h, tc.mustKeep)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.verbatim:
				if !bytes.Equal(out, tc.batch) {
					t.Fatal("the batch was changed")
				}
				return
			case tc.want == nil:
				if len(out) != 0 {
					t.Fatalf("kept %d bytes", len(out))
				}
				return
			}
			nh, err := checkFrame(out, 0)
			if err != nil || nh.Size() != len(out) {
				t.Fatalf("rewritten batch: %v (%d of %d bytes)", err, nh.Size(), len(out))
			}
			if nh.BaseOffset != 100 || nh.LastOffset() != 103 || nh.ProducerID != h.ProducerID ||
				nh.BaseSequence != h.BaseSequence || nh.MaxTimestamp != tc.want.maxTs {
				t.Fatalf("header %+v, from %+v", nh, h)
			}
			var offs []int64
			if err := EachRecord(out, func(r Record) error { offs = append(offs, r.Offset); return nil }); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(offs) != fmt.Sprint(tc.want.offsets) || int(nh.NumRecords) != len(offs) {
				t.Fatalf("records at %v (count %d), want %v", offs, nh.NumRecords, tc.want.offsets)
			}
			if stats.RecordsKept+stats.RecordsDropped != 4 {
				t.Fatalf("stats %+v", stats)
			}
		})
	}
}
