package segment

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

// keyed describes a batch's records: one letter per record, k keyed, n a
// null key, e an empty (but present) key.
func keyedRecords(pattern string, valSize int) []byte {
	var out []byte
	for i, c := range pattern {
		r := kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: int32(i),
			Value: bytes.Repeat([]byte{'v'}, valSize)}
		switch c {
		case 'k':
			r.Key = []byte(fmt.Sprintf("key-%d", i))
		case 'e':
			r.Key = []byte{}
		}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		out = r.AppendTo(out)
	}
	return out
}

// patternBatch is a batch of pattern's records, compressed with codec.
func patternBatch(t *testing.T, codec Codec, pattern string, valSize int) []byte {
	t.Helper()
	recs := keyedRecords(pattern, valSize)
	if codec != CodecNone {
		recs = compressed(t, codec, recs)
	}
	return batchOf(codec, recs, int32(len(pattern)))
}

func TestFindNullKeys(t *testing.T) {
	cases := []struct {
		name     string
		patterns []string // one batch each
		valSize  int
		batch    int
		want     []int32
	}{
		{name: "keyed", patterns: []string{"kkkk"}},
		{name: "empty keys are keys", patterns: []string{"eke"}},
		{name: "keyless", patterns: []string{"nnn"}, want: []int32{0, 1, 2}},
		{name: "mixed", patterns: []string{"knkkenn"}, want: []int32{1, 5, 6}},
		{name: "one keyless", patterns: []string{"n"}, want: []int32{0}},
		// Records larger than the stream's 16 KiB buffer take its
		// field-by-field path.
		{name: "large records", patterns: []string{"knk"}, valSize: 40 << 10, want: []int32{1}},
		// Kafka stops at the first batch with keyless records; indexes
		// are within it.
		{name: "second batch", patterns: []string{"kk", "knn", "nnnn"}, batch: 1, want: []int32{1, 2}},
	}
	for _, codec := range append([]Codec{CodecNone}, codecs...) {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%s", codec, tc.name), func(t *testing.T) {
				var buf []byte
				for _, p := range tc.patterns {
					buf = append(buf, patternBatch(t, codec, p, tc.valSize)...)
				}
				nk, err := FindNullKeys(buf, 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				if nk.Count != len(tc.want) || !slices.Equal(nk.Indexes, tc.want) {
					t.Fatalf("count %d indexes %v, want %v", nk.Count, nk.Indexes, tc.want)
				}
				if nk.Count > 0 && nk.Batch != tc.batch {
					t.Fatalf("batch %d, want %d", nk.Batch, tc.batch)
				}
			})
		}
	}
}

// A batch of many keyless records reports the first MaxNullKeysReported
// indexes and the exact count.
func TestFindNullKeysCapsIndexes(t *testing.T) {
	n := MaxNullKeysReported + 500
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		nk, err := FindNullKeys(patternBatch(t, codec, string(bytes.Repeat([]byte{'n'}, n)), 0), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if nk.Count != n || len(nk.Indexes) != MaxNullKeysReported {
			t.Fatalf("%s: count %d, %d indexes; want %d, %d", codec, nk.Count, len(nk.Indexes), n, MaxNullKeysReported)
		}
		for i, idx := range nk.Indexes {
			if idx != int32(i) {
				t.Fatalf("%s: index %d is %d", codec, i, idx)
			}
		}
	}
}

// A damaged batch is refused as damaged, not as keyless, with the error
// the append path would give.
func TestFindNullKeysRefusesBadBatches(t *testing.T) {
	keyless := keyedRecords("nnn", 10)
	crcBroken := patternBatch(t, CodecNone, "nnn", 10)
	crcBroken[len(crcBroken)-1] ^= 0xff
	cases := []struct {
		name    string
		buf     []byte
		maxSize int
		want    error
	}{
		// A keyless record inflating past max.decompressed.message.bytes
		// is refused for its size.
		{"bomb", testkit.Batch{Attributes: int16(CodecGzip), RecordsSection: zeroBomb(t, CodecGzip, 4<<20), NumRecords: 1}.Encode(), 0, ErrBatchTooLarge},
		{"uncompressed claims more records", batchOf(CodecNone, keyless, 4), 0, ErrInvalidRecord},
		{"gzip claims more records", batchOf(CodecGzip, compressed(t, CodecGzip, keyless), 4), 0, ErrInvalidRecord},
		{"lz4 claims more records", batchOf(CodecLZ4, compressed(t, CodecLZ4, keyless), 4), 0, ErrInvalidRecord},
		{"zstd claims fewer records", batchOf(CodecZstd, compressed(t, CodecZstd, keyless), 2), 0, ErrInvalidRecord},
		{"garbage under a good crc", batchOf(CodecSnappy, []byte("not snappy at all"), 3), 0, ErrCorruptBatch},
		{"crc mismatch", crcBroken, 0, ErrCorruptBatch},
		{"too large", patternBatch(t, CodecNone, "nnn", 10), 50, ErrBatchTooLarge},
		{"keyless then broken", append(patternBatch(t, CodecNone, "n", 0), batchOf(CodecNone, keyless, 5)...), 0, ErrInvalidRecord},
		{"empty", nil, 0, ErrCorruptBatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nk, err := FindNullKeys(tc.buf, tc.maxSize, 1<<20)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if nk.Count != 0 {
				t.Fatalf("reported %d keyless records with an error", nk.Count)
			}
			// The same error class as the validations it stands in for.
			_, verr := ValidateBatches(tc.buf, tc.maxSize)
			if verr == nil {
				verr = ValidateCompressedBatches(tc.buf, 1<<20)
			}
			if !errors.Is(verr, tc.want) {
				t.Fatalf("validation says %v, want %v", verr, tc.want)
			}
		})
	}
}
