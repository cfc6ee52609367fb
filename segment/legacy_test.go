package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// lmsg describes one legacy message for the builders below.
type lmsg struct {
	magic      int8
	attrs      int8
	ts         int64 // magic 1 only
	key, value []byte
}

// legacyEntry encodes m at offset off with kmsg, filling in the size and
// the CRC-32 (IEEE) over magic..end.
func legacyEntry(off int64, m lmsg) []byte {
	var enc func() []byte
	var size *int32
	var crc *int32
	if m.magic == 0 {
		v := kmsg.MessageV0{Offset: off, Magic: 0, Attributes: m.attrs, Key: m.key, Value: m.value}
		enc, size, crc = func() []byte { return v.AppendTo(nil) }, &v.MessageSize, &v.CRC
	} else {
		v := kmsg.MessageV1{Offset: off, Magic: m.magic, Attributes: m.attrs, Timestamp: m.ts, Key: m.key, Value: m.value}
		enc, size, crc = func() []byte { return v.AppendTo(nil) }, &v.MessageSize, &v.CRC
	}
	*size = int32(len(enc()) - 12)
	*crc = int32(crc32.ChecksumIEEE(enc()[16:]))
	return enc()
}

// legacySet encodes msgs with offsets first, first+1, ...
func legacySet(first int64, msgs ...lmsg) []byte {
	var set []byte
	for i, m := range msgs {
		set = append(set, legacyEntry(first+int64(i), m)...)
	}
	return set
}

func compress(tb testing.TB, codec kgo.CompressionCodec, data []byte) []byte {
	tb.Helper()
	c, err := kgo.DefaultCompressor(codec)
	if err != nil {
		tb.Fatal(err)
	}
	out, _ := c.Compress(new(bytes.Buffer), data)
	return bytes.Clone(out)
}

// xerial frames data the way the Java snappy client did, in two blocks.
func xerial(data []byte) []byte {
	out := append([]byte{}, xerialMagic...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for _, part := range [][]byte{data[:len(data)/2], data[len(data)/2:]} {
		block := s2.EncodeSnappy(nil, part)
		out = append(binary.BigEndian.AppendUint32(out, uint32(len(block))), block...)
	}
	return out
}

// decodeUpconverted validates out and decodes its single batch.
func decodeUpconverted(tb testing.TB, out []byte) (kmsg.RecordBatch, []kmsg.Record) {
	tb.Helper()
	hs, err := ValidateBatches(out, 0)
	if err != nil || len(hs) != 1 {
		tb.Fatalf("output does not validate as one batch: %d, %v", len(hs), err)
	}
	var b kmsg.RecordBatch
	if err := b.ReadFrom(out); err != nil {
		tb.Fatal(err)
	}
	var recs []kmsg.Record
	for rest := b.Records; len(rest) > 0; {
		l, n := binary.Varint(rest)
		var r kmsg.Record
		if err := r.ReadFrom(rest[:n+int(l)]); err != nil {
			tb.Fatal(err)
		}
		recs = append(recs, r)
		rest = rest[n+int(l):]
	}
	return b, recs
}

func sameNullable(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// checkUpconverted decodes out and compares its records with want: keys, values, absolute timestamps
// and offset deltas 0..n-1.
func checkUpconverted(t *testing.T, out []byte, want []lmsg, wantTS []int64, logAppend bool) {
	t.Helper()
	b, recs := decodeUpconverted(t, out)
	if len(recs) != len(want) || b.NumRecords != int32(len(want)) || b.LastOffsetDelta != int32(len(want)-1) {
		t.Fatalf("%d records (header %d, last delta %d), want %d", len(recs), b.NumRecords, b.LastOffsetDelta, len(want))
	}
	if b.FirstOffset != 0 || b.ProducerID != -1 || b.ProducerEpoch != -1 || b.FirstSequence != -1 {
		t.Errorf("header: offset %d producer %d/%d seq %d", b.FirstOffset, b.ProducerID, b.ProducerEpoch, b.FirstSequence)
	}
	if got := b.Attributes&attrLogAppendTime != 0; got != logAppend || b.Attributes&^attrLogAppendTime != 0 {
		t.Errorf("attributes %#x, want LogAppendTime=%v and nothing else", b.Attributes, logAppend)
	}
	maxTS := wantTS[0]
	for i, r := range recs {
		maxTS = max(maxTS, wantTS[i])
		if int(r.OffsetDelta) != i || b.FirstTimestamp+r.TimestampDelta64 != wantTS[i] {
			t.Errorf("record %d: offset delta %d, timestamp %d, want %d", i, r.OffsetDelta, b.FirstTimestamp+r.TimestampDelta64, wantTS[i])
		}
		if !sameNullable(r.Key, want[i].key) || !sameNullable(r.Value, want[i].value) || len(r.Headers) != 0 {
			t.Errorf("record %d: key %q value %q, want %q %q", i, r.Key, r.Value, want[i].key, want[i].value)
		}
	}
	if b.FirstTimestamp != wantTS[0] || b.MaxTimestamp != maxTS {
		t.Errorf("first/max timestamp %d/%d, want %d/%d", b.FirstTimestamp, b.MaxTimestamp, wantTS[0], maxTS)
	}
}

func TestUpconvertV0(t *testing.T) {
	msgs := []lmsg{
		{key: []byte("k1"), value: []byte("v1")},
		{key: nil, value: []byte("no key")},
		{key: []byte("no value"), value: nil},
		{key: []byte{}, value: []byte{}},
	}
	out, err := UpconvertMessageSet(legacySet(100, msgs...), 0)
	if err != nil {
		t.Fatal(err)
	}
	checkUpconverted(t, out, msgs, []int64{-1, -1, -1, -1}, false)
}

func TestUpconvertV1Timestamps(t *testing.T) {
	msgs := []lmsg{
		{magic: 1, ts: 1000, key: []byte("a"), value: []byte("1")},
		{magic: 1, ts: 900, value: []byte("2")},
		{magic: 1, ts: 1500, key: []byte("c")},
	}
	out, err := UpconvertMessageSet(legacySet(0, msgs...), 0)
	if err != nil {
		t.Fatal(err)
	}
	checkUpconverted(t, out, msgs, []int64{1000, 900, 1500}, false)
	_, recs := decodeUpconverted(t, out)
	if recs[1].TimestampDelta64 != -100 || recs[2].TimestampDelta64 != 500 {
		t.Errorf("deltas %d %d, want -100 500", recs[1].TimestampDelta64, recs[2].TimestampDelta64)
	}

	// LogAppendTime only when every message says so.
	lat := []lmsg{msgs[0], msgs[1]}
	for i := range lat {
		lat[i].attrs = legacyAttrTSType
	}
	if out, err = UpconvertMessageSet(legacySet(0, lat...), 0); err != nil {
		t.Fatal(err)
	}
	checkUpconverted(t, out, lat, []int64{1000, 900}, true)
	mixed := []lmsg{lat[0], msgs[2]}
	if out, err = UpconvertMessageSet(legacySet(0, mixed...), 0); err != nil {
		t.Fatal(err)
	}
	checkUpconverted(t, out, mixed, []int64{1000, 1500}, false)
}

func TestUpconvertCompressed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		magic int8
		codec int8
		comp  func([]byte) []byte
	}{
		{"gzip v0", 0, 1, func(b []byte) []byte { return compress(t, kgo.GzipCompression(), b) }},
		{"gzip v1", 1, 1, func(b []byte) []byte { return compress(t, kgo.GzipCompression(), b) }},
		{"snappy v0", 0, 2, func(b []byte) []byte { return compress(t, kgo.SnappyCompression(), b) }},
		{"snappy xerial v1", 1, 2, xerial},
		{"lz4 v1", 1, 3, func(b []byte) []byte { return compress(t, kgo.Lz4Compression(), b) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner := []lmsg{
				{magic: tc.magic, ts: 50, key: []byte("k0"), value: []byte("v0")},
				{magic: tc.magic, ts: 40, value: bytes.Repeat([]byte("x"), 3000)},
				{magic: tc.magic, ts: 70, key: []byte("k2")},
			}
			first := int64(0) // magic 1 inner offsets are relative
			if tc.magic == 0 {
				first = 500
			}
			wrapper := lmsg{magic: tc.magic, attrs: tc.codec, ts: 70, value: tc.comp(legacySet(first, inner...))}
			plain := lmsg{magic: tc.magic, ts: 80, key: []byte("after")}
			out, err := UpconvertMessageSet(append(legacyEntry(502, wrapper), legacyEntry(503, plain)...), 0)
			if err != nil {
				t.Fatal(err)
			}
			ts := []int64{50, 40, 70, 80}
			if tc.magic == 0 {
				ts = []int64{-1, -1, -1, -1}
			}
			checkUpconverted(t, out, append(inner, plain), ts, false)
		})
	}

	// A LogAppendTime wrapper's timestamp replaces its inner ones.
	inner := legacySet(0, lmsg{magic: 1, ts: 1, value: []byte("a")}, lmsg{magic: 1, ts: 2, value: []byte("b")})
	w := lmsg{magic: 1, attrs: 1 | legacyAttrTSType, ts: 999, value: compress(t, kgo.GzipCompression(), inner)}
	out, err := UpconvertMessageSet(legacyEntry(1, w), 0)
	if err != nil {
		t.Fatal(err)
	}
	checkUpconverted(t, out, []lmsg{{value: []byte("a")}, {value: []byte("b")}}, []int64{999, 999}, true)
}

func TestUpconvertErrors(t *testing.T) {
	gz := func(b []byte) []byte { return compress(t, kgo.GzipCompression(), b) }
	good := legacySet(0, lmsg{magic: 1, ts: 5, key: []byte("k"), value: []byte("value")})
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	v2 := makeBatch(t, batchSpec{records: 2, valSize: 10, producer: -1})
	nested := legacyEntry(0, lmsg{attrs: 1, value: gz(legacyEntry(0, lmsg{attrs: 1, value: gz(good)}))})
	badLZ4 := compress(t, kgo.Lz4Compression(), legacySet(0, lmsg{value: []byte("x")}))
	hc := 6 // lz4 frame header checksum, after magic, FLG, BD [, content size]
	if badLZ4[4]&0x08 != 0 {
		hc += 8
	}
	badLZ4[hc] ^= 0xff
	extra := legacyEntry(0, lmsg{value: []byte("v")})
	binary.BigEndian.PutUint32(extra[8:], binary.BigEndian.Uint32(extra[8:])+1)
	extra = append(extra, 0)
	binary.BigEndian.PutUint32(extra[12:], crc32.ChecksumIEEE(extra[16:]))

	for _, tc := range []struct {
		name string
		set  []byte
		want error
	}{
		{"empty", nil, ErrCorruptBatch},
		{"crc mismatch", flipped, ErrCorruptBatch},
		{"truncated entry", good[:len(good)-1], ErrCorruptBatch},
		{"partial trailing header", append(bytes.Clone(good), 0, 0, 0, 0, 0), ErrCorruptBatch},
		{"negative size", append(make([]byte, 8), 0xff, 0xff, 0xff, 0xff), ErrCorruptBatch},
		{"bytes after value", extra, ErrCorruptBatch},
		{"magic 2 batch", v2, ErrInvalidRecord},
		{"magic 2 after legacy", append(bytes.Clone(good), v2...), ErrInvalidRecord},
		{"nested compression", nested, ErrInvalidRecord},
		{"inner magic mismatch", legacyEntry(0, lmsg{attrs: 1, value: gz(good)}), ErrInvalidRecord},
		{"zstd codec", legacyEntry(0, lmsg{magic: 1, attrs: 4, value: []byte("x")}), ErrInvalidRecord},
		{"null wrapper value", legacyEntry(0, lmsg{attrs: 1}), ErrInvalidRecord},
		{"empty inner set", legacyEntry(0, lmsg{attrs: 1, value: gz(nil)}), ErrInvalidRecord},
		{"garbage gzip", legacyEntry(0, lmsg{attrs: 1, value: []byte("not gzip")}), ErrCorruptBatch},
		{"truncated inner", legacyEntry(0, lmsg{magic: 1, attrs: 1, value: gz(good[:len(good)-2])}), ErrCorruptBatch},
		{"magic 0 broken lz4 (KAFKA-3160)", legacyEntry(0, lmsg{attrs: 3, value: badLZ4}), ErrInvalidRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := UpconvertMessageSet(tc.set, 0)
			if !errors.Is(err, tc.want) || out != nil {
				t.Fatalf("got %v (%d bytes), want %v", err, len(out), tc.want)
			}
		})
	}
}

func TestUpconvertTooLarge(t *testing.T) {
	set := legacySet(0, lmsg{value: bytes.Repeat([]byte("v"), 500)}, lmsg{value: bytes.Repeat([]byte("w"), 500)})
	out, err := UpconvertMessageSet(set, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UpconvertMessageSet(set, len(out)); err != nil {
		t.Fatalf("exactly at the limit: %v", err)
	}
	if _, err := UpconvertMessageSet(set, len(out)-1); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("one byte over: %v", err)
	}

	// Bombs fail on the decompressed size, before the output is built.
	bomb := legacySet(0, lmsg{value: make([]byte, 1<<20)})
	for i, codec := range []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression()} {
		w := legacyEntry(0, lmsg{attrs: int8(i + 1), value: compress(t, codec, bomb)})
		if _, err := UpconvertMessageSet(w, 1000); !errors.Is(err, ErrBatchTooLarge) {
			t.Errorf("codec %d: %v", i+1, err)
		}
	}
	// Snappy claiming 2 GiB in a few bytes is rejected from its header.
	claim := binary.AppendUvarint(nil, 1<<31-1)
	if _, err := UpconvertMessageSet(legacyEntry(0, lmsg{attrs: 2, value: claim}), 1<<20); !errors.Is(err, ErrBatchTooLarge) {
		t.Errorf("snappy claim: %v", err)
	}
}

// countLegacyMessages counts messages, expanding wrappers, using only the
// entry framing and kgo, independently of the code under test.
func countLegacyMessages(set []byte, top bool) int {
	n := 0
	for len(set) >= 18 {
		size := int(binary.BigEndian.Uint32(set[8:]))
		if codec := set[17] & 7; top && codec != 0 {
			p := 18 + 8*int(set[16])                                      // past the magic-1 timestamp
			p += 4 + max(0, int(int32(binary.BigEndian.Uint32(set[p:])))) // key; the value is non-null
			value := set[p+4 : 12+size]
			inner, _ := kgo.DefaultDecompressor().Decompress(value, kgo.CompressionCodecType(codec))
			n += countLegacyMessages(inner, false)
		} else {
			n++
		}
		set = set[12+size:]
	}
	return n
}

func FuzzUpconvertMessageSet(f *testing.F) {
	v0 := legacySet(7, lmsg{key: []byte("k"), value: []byte("v")}, lmsg{value: nil}, lmsg{key: []byte{}})
	v1 := legacySet(0, lmsg{magic: 1, ts: 10, value: []byte("a")}, lmsg{magic: 1, attrs: legacyAttrTSType, ts: 5, key: []byte("b")})
	f.Add(v0)
	f.Add(v1)
	for i, codec := range []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression()} {
		f.Add(legacyEntry(0, lmsg{magic: 1, attrs: int8(i + 1), ts: 3, value: compress(f, codec, v1)}))
		f.Add(legacyEntry(0, lmsg{magic: 0, attrs: int8(i + 1), value: compress(f, codec, v0)}))
	}
	f.Add(legacyEntry(0, lmsg{magic: 1, attrs: 2, value: xerial(v1)}))
	f.Add(append(bytes.Clone(v0), v1...))
	f.Add(v0[:len(v0)-3])
	flipped := bytes.Clone(v1)
	flipped[20] ^= 0x10
	f.Add(flipped)
	f.Add(makeBatch(f, batchSpec{records: 1, valSize: 3, producer: -1}))
	f.Fuzz(func(t *testing.T, set []byte) {
		out, err := UpconvertMessageSet(set, 1<<20)
		if err != nil {
			if out != nil || !(errors.Is(err, ErrCorruptBatch) || errors.Is(err, ErrInvalidRecord) || errors.Is(err, ErrBatchTooLarge)) {
				t.Fatalf("unexpected error %v with %d bytes", err, len(out))
			}
			return
		}
		hs, err := ValidateBatches(out, 0)
		if err != nil {
			t.Fatalf("accepted output does not validate: %v", err)
		}
		if want := countLegacyMessages(set, true); int(hs[0].NumRecords) != want {
			t.Fatalf("%d records from %d messages", hs[0].NumRecords, want)
		}
	})
}
