package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

var codecs = []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// rawRecords encodes n records (offset deltas from first) of valSize bytes.
func rawRecords(n, valSize int, first int32) []byte {
	var out []byte
	for i := 0; i < n; i++ {
		r := kmsg.Record{
			TimestampDelta64: int64(i),
			OffsetDelta:      first + int32(i),
			Key:              []byte(fmt.Sprintf("key-%d", i)),
			Value:            bytes.Repeat([]byte{byte('a' + i%26)}, valSize),
			Headers:          []kmsg.Header{{Key: "h", Value: []byte("v")}},
		}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		out = r.AppendTo(out)
	}
	return out
}

// jsonRecords encodes n records with JSON-like values of about 200 bytes,
// offset deltas 0..n-1: data that compresses as real events do.
func jsonRecords(n int) []byte {
	var out []byte
	for i := 0; i < n; i++ {
		r := kmsg.Record{
			TimestampDelta64: int64(i),
			OffsetDelta:      int32(i),
			Key:              []byte(fmt.Sprintf("user-%d", i%17)),
			Value: []byte(fmt.Sprintf(`{"id":%d,"user":"user-%d","event":"page_view","path":"/products/%d","ms":%d,"ok":true}`,
				i, i%17, i*7919%1000, 1700000000000+int64(i)*37)),
		}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		out = r.AppendTo(out)
	}
	return out
}

// compressWriter returns a writer compressing into w with codec.
func compressWriter(tb testing.TB, codec Codec, w io.Writer) io.WriteCloser {
	tb.Helper()
	switch codec {
	case CodecGzip:
		return gzip.NewWriter(w)
	case CodecLZ4:
		return lz4.NewWriter(w)
	case CodecZstd:
		zw, err := zstd.NewWriter(w)
		if err != nil {
			tb.Fatal(err)
		}
		return zw
	}
	tb.Fatalf("no streaming writer for %s", codec)
	return nil
}

func compressed(tb testing.TB, codec Codec, data []byte) []byte {
	tb.Helper()
	if codec == CodecSnappy {
		return s2.EncodeSnappy(nil, data)
	}
	var buf bytes.Buffer
	w := compressWriter(tb, codec, &buf)
	if _, err := w.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// batchOf wraps an already compressed records section in a v2 batch that
// claims count records, with a correct CRC.
func batchOf(codec Codec, payload []byte, count int32) []byte {
	return testkit.Batch{
		Attributes: int16(codec), FirstTimestamp: 1000, MaxTimestamp: 1000 + int64(count) - 1,
		RecordsSection: payload, NumRecords: count,
	}.Encode()
}

func TestValidateCompressedAcceptsEveryCodec(t *testing.T) {
	for _, c := range codecs {
		b := batchOf(c, compressed(t, c, rawRecords(50, 100, 0)), 50)
		if _, err := ValidateBatches(b, 0); err != nil {
			t.Fatalf("%s: ValidateBatches: %v", c, err)
		}
		if err := ValidateCompressedBatches(b, 0); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
	}
	// Java clients frame snappy the xerial way.
	recs := rawRecords(30, 2000, 0)
	xerial := append(append([]byte{}, xerialMagic...), 0, 0, 0, 1, 0, 0, 0, 1)
	for len(recs) > 0 {
		n := min(len(recs), 32<<10)
		block := s2.EncodeSnappy(nil, recs[:n])
		xerial = binary.BigEndian.AppendUint32(xerial, uint32(len(block)))
		xerial = append(xerial, block...)
		recs = recs[n:]
	}
	if err := ValidateCompressedBatches(batchOf(CodecSnappy, xerial, 30), 0); err != nil {
		t.Fatalf("xerial snappy: %v", err)
	}
}

// Garbage under a correct CRC used to be stored and broke every consumer.
func TestValidateCompressedRefusesGarbage(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	garbage := make([]byte, 200)
	for i := range garbage {
		garbage[i] = byte(rng.UintN(256))
	}
	for _, c := range codecs {
		b := batchOf(c, garbage, 3)
		if _, err := ValidateBatches(b, 0); err != nil {
			t.Fatalf("%s: framing should pass: %v", c, err)
		}
		if err := ValidateCompressedBatches(b, 0); !errors.Is(err, ErrCorruptBatch) && !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("%s garbage: %v, want CORRUPT_MESSAGE or INVALID_RECORD", c, err)
		}
	}
}

func TestValidateCompressedChecksRecordsAgainstHeader(t *testing.T) {
	for _, c := range codecs {
		cases := []struct {
			name  string
			batch []byte
		}{
			// A few hundred bytes claiming 2^31-1 records would move the
			// log end offset by 2^31.
			{"count 2^31-1", batchOf(c, compressed(t, c, rawRecords(1, 100, 0)), math.MaxInt32)},
			{"fewer records", batchOf(c, compressed(t, c, rawRecords(4, 10, 0)), 5)},
			{"more records", batchOf(c, compressed(t, c, rawRecords(6, 10, 0)), 5)},
			{"offset deltas", batchOf(c, compressed(t, c, rawRecords(5, 10, 3)), 5)},
			{"cut record", batchOf(c, compressed(t, c, rawRecords(5, 10, 0)[:40]), 5)},
		}
		for _, tc := range cases {
			err := ValidateCompressedBatches(tc.batch, 0)
			if !errors.Is(err, ErrInvalidRecord) {
				t.Errorf("%s %s: %v, want INVALID_RECORD", c, tc.name, err)
			}
		}
		// A bit flipped in transit is a CRC error first.
		b := batchOf(c, compressed(t, c, rawRecords(5, 10, 0)), 5)
		b[len(b)-3] ^= 1
		if err := ValidateCompressedBatches(b, 0); !errors.Is(err, ErrCorruptBatch) {
			t.Errorf("%s flipped bit: %v, want CORRUPT_MESSAGE", c, err)
		}
	}
}

// zeroBomb returns a records section of one record whose value is size
// zero bytes, compressed with codec, built without holding it.
func zeroBomb(tb testing.TB, codec Codec, size int64) []byte {
	tb.Helper()
	head := []byte{0}                   // attributes
	head = binary.AppendVarint(head, 0) // timestamp delta
	head = binary.AppendVarint(head, 0) // offset delta
	head = binary.AppendVarint(head, -1)
	head = binary.AppendVarint(head, size)
	length := int64(len(head)) + size + 1 // + header count
	var buf bytes.Buffer
	w := compressWriter(tb, codec, &buf)
	w.Write(binary.AppendVarint(nil, length))
	w.Write(head)
	zeros := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(zeros)) {
		if _, err := w.Write(zeros[:min(left, int64(len(zeros)))]); err != nil {
			tb.Fatal(err)
		}
	}
	w.Write([]byte{0})
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// allocated returns the bytes fn allocated on the heap.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// 256 MiB of zeros in a small gzip or zstd batch is refused at the
// (128 MiB) cap, with memory bounded far below what the batch inflates to;
// under a larger cap a timestamp lookup streams through all of it. (The
// broker tests use the full gibibyte.)
func TestValidateCompressedBombIsCapped(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 256 MiB twice")
	}
	const bomb = 256 << 20
	for _, c := range []Codec{CodecGzip, CodecZstd} {
		payload := zeroBomb(t, c, bomb)
		b := batchOf(c, payload, 1)
		t.Logf("%s: %d MiB of zeros in a %d-byte batch", c, bomb>>20, len(b))
		var err error
		n := allocated(func() { err = ValidateCompressedBatches(b, 0) })
		if !errors.Is(err, ErrBatchTooLarge) {
			t.Fatalf("%s bomb: %v, want MESSAGE_TOO_LARGE", c, err)
		}
		if n > 32<<20 {
			t.Fatalf("%s bomb: validation allocated %d MiB", c, n>>20)
		}
		t.Logf("%s: refused (%v) after allocating %d KiB", c, err, n>>10)
		// Under a cap it fits, the same batch streams through.
		h := parseHeader(b)
		var found bool
		n = allocated(func() {
			_, _, found, err = RecordAtOrAfter(bytes.NewReader(b[BatchHeaderSize:]), int64(len(payload)), h, 5000, 2*bomb)
		})
		if err != nil || found || n > 32<<20 {
			t.Fatalf("%s bomb: timestamp lookup: found %v, %v after allocating %d MiB", c, found, err, n>>20)
		}
		t.Logf("%s: timestamp lookup through %d MiB allocated %d KiB", c, bomb>>20, n>>10)
	}
}

func TestRecordAtOrAfterFindsTheRecord(t *testing.T) {
	for _, c := range append([]Codec{CodecNone}, codecs...) {
		recs := rawRecords(20, 50, 0)
		payload := recs
		if c != CodecNone {
			payload = compressed(t, c, recs)
		}
		h := parseHeader(batchOf(c, payload, 20))
		h.BaseOffset = 100
		off, ts, ok, err := RecordAtOrAfter(bytes.NewReader(payload), int64(len(payload)), h, 1007, 0)
		if err != nil || !ok || off != 107 || ts != 1007 {
			t.Fatalf("%s: offset %d ts %d found %v err %v, want 107 at 1007", c, off, ts, ok, err)
		}
		if _, _, ok, err := RecordAtOrAfter(bytes.NewReader(payload), int64(len(payload)), h, 2000, 0); ok || err != nil {
			t.Fatalf("%s: found a record after the last: %v", c, err)
		}
	}
}

// Snappy blocks do not stream, so a block claiming more than snappy can
// expand to is refused before its output is allocated, and one within
// reason still counts against the cap.
func TestValidateSnappyClaimsAreChecked(t *testing.T) {
	liar := binary.AppendUvarint(nil, 1<<30) // claims a gibibyte
	liar = append(liar, make([]byte, 100)...)
	var err error
	n := allocated(func() { err = ValidateCompressedBatches(batchOf(CodecSnappy, liar, 1), 0) })
	if !errors.Is(err, ErrCorruptBatch) || n > 1<<20 {
		t.Fatalf("lying snappy block: %v after allocating %d KiB", err, n>>10)
	}
	zeros := rawRecords(1, 1<<20, 0)
	if err := ValidateCompressedBatches(batchOf(CodecSnappy, compressed(t, CodecSnappy, zeros), 1), 64<<10); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("snappy over the cap: %v", err)
	}
}
