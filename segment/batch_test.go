package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/internal/testkit"
)

func TestValidateBatchesValid(t *testing.T) {
	a := makeBatch(t, batchSpec{records: 3, valSize: 10, ts: 1000})
	b := makeBatch(t, batchSpec{records: 1, valSize: 0, ts: 2000})
	buf := append(append([]byte{}, a...), b...)
	hs, err := ValidateBatches(buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 2 || hs[0].NumRecords != 3 || hs[1].NumRecords != 1 || hs[0].Size() != len(a) {
		t.Fatalf("headers: %+v", hs)
	}
	h := hs[0]
	if h.LastOffset() != 2 || h.MaxTimestamp != 1002 || h.FirstTimestamp != 1000 || h.Compression() != CodecNone ||
		h.LogAppendTime() || h.Transactional() || h.Control() || h.ProducerID != -1 {
		t.Fatalf("header fields: %+v", h)
	}
	if _, err := ParseBatchHeader(a); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseBatchHeader(a[:60]); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("short header: %v", err)
	}
}

func TestValidateBatchesErrors(t *testing.T) {
	good := makeBatch(t, batchSpec{records: 2, valSize: 5})
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name string
		buf  []byte
		max  int
		want error
	}{
		{"empty", nil, 0, ErrCorruptBatch},
		{"short header", good[:40], 0, ErrCorruptBatch},
		{"truncated", good[:len(good)-1], 0, ErrCorruptBatch},
		{"trailing garbage", append(bytes.Clone(good), 1, 2, 3), 0, ErrCorruptBatch},
		{"length too small", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 10); return b }), 0, ErrCorruptBatch},
		{"negative length", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], math.MaxUint32); return b }), 0, ErrCorruptBatch},
		{"magic 1", mutate(func(b []byte) []byte { b[16] = 1; return b }), 0, ErrCorruptBatch},
		{"crc", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), 0, ErrCorruptBatch},
		{"too large", good, len(good) - 1, ErrBatchTooLarge},
		{"count mismatch", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[57:], 3); testkit.FixCRC(b); return b }), 0, ErrInvalidRecord},
		{"zero records", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[57:], 0)
			binary.BigEndian.PutUint32(b[23:], math.MaxUint32)
			testkit.FixCRC(b)
			return b
		}), 0, ErrInvalidRecord},
		{"codec 5", mutate(func(b []byte) []byte { b[22] |= 5; testkit.FixCRC(b); return b }), 0, ErrInvalidRecord},
		{"record length", mutate(func(b []byte) []byte { b[61] = 0x7e; testkit.FixCRC(b); return b }), 0, ErrInvalidRecord},
		{"fewer records than count", mutate(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[57:], 1)
			binary.BigEndian.PutUint32(b[23:], 0)
			testkit.FixCRC(b)
			return b
		}), 0, ErrInvalidRecord},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ValidateBatches(c.buf, c.max)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// The position of the failing batch is part of the message.
	two := append(bytes.Clone(good), good[:len(good)-2]...)
	if _, err := ValidateBatches(two, 0); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("batch at byte %d:", len(good))) {
		t.Fatalf("error should name the second batch: %v", err)
	}
}

func TestValidateCompressedSkipsRecords(t *testing.T) {
	b := makeBatch(t, batchSpec{records: 2, valSize: 5, codec: int16(CodecZstd)})
	// Scramble the "compressed" payload; only the CRC protects it.
	for i := BatchHeaderSize; i < len(b); i++ {
		b[i] = 0xff
	}
	testkit.FixCRC(b)
	hs, err := ValidateBatches(b, 0)
	if err != nil || hs[0].Compression() != CodecZstd {
		t.Fatalf("compressed batch: %v %+v", err, hs)
	}
}

func TestHeaderRewrites(t *testing.T) {
	b := makeBatch(t, batchSpec{records: 4, valSize: 3, ts: 50})
	SetBaseOffset(b, 1234)
	SetPartitionLeaderEpoch(b, 9)
	hs, err := ValidateBatches(b, 0)
	if err != nil {
		t.Fatalf("base offset and epoch are outside the CRC: %v", err)
	}
	if hs[0].BaseOffset != 1234 || hs[0].PartitionLeaderEpoch != 9 || hs[0].LastOffset() != 1237 {
		t.Fatalf("%+v", hs[0])
	}
	SetMaxTimestampLogAppendTime(b, 99999)
	hs, err = ValidateBatches(b, 0)
	if err != nil {
		t.Fatalf("CRC not recomputed: %v", err)
	}
	if !hs[0].LogAppendTime() || hs[0].MaxTimestamp != 99999 {
		t.Fatalf("%+v", hs[0])
	}
}

func TestLastSequence(t *testing.T) {
	for _, c := range []struct{ base, delta, want int32 }{
		{0, 4, 4}, {-1, 4, -1}, {math.MaxInt32, 0, math.MaxInt32}, {math.MaxInt32, 1, 0}, {math.MaxInt32 - 1, 5, 3},
	} {
		h := BatchHeader{BaseSequence: c.base, LastOffsetDelta: c.delta}
		if got := h.LastSequence(); got != c.want {
			t.Errorf("LastSequence(%d+%d) = %d, want %d", c.base, c.delta, got, c.want)
		}
	}
}

func TestValidateZeroAlloc(t *testing.T) {
	buf := makeBatch(t, batchSpec{records: 16, valSize: 100})
	dst := make([]BatchHeader, 0, 4)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := AppendValidatedBatches(dst[:0], buf, 0); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("AppendValidatedBatches allocates %.1f times", allocs)
	}
}

func FuzzValidateBatches(f *testing.F) {
	good := makeBatch(f, batchSpec{records: 3, valSize: 7, ts: 10})
	two := append(bytes.Clone(good), makeBatch(f, batchSpec{records: 1, ts: 20})...)
	f.Add(good)
	f.Add(two)
	f.Add(makeBatch(f, batchSpec{records: 2, codec: int16(CodecGzip)}))
	f.Add(good[:BatchHeaderSize])
	f.Add(good[:len(good)/2])
	for _, i := range []int{8, 16, 21, 23, 57, 61, 62, len(good) - 1} {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		f.Add(b)
		c := bytes.Clone(b)
		testkit.FixCRC(c) // flips that survive the CRC reach the record walk
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		hs, err := ValidateBatches(buf, 1<<20)
		if err != nil {
			if !errors.Is(err, ErrCorruptBatch) && !errors.Is(err, ErrInvalidRecord) && !errors.Is(err, ErrBatchTooLarge) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		total := 0
		for _, h := range hs {
			total += h.Size()
		}
		if total != len(buf) {
			t.Fatalf("accepted headers cover %d of %d bytes", total, len(buf))
		}
		again, err := ValidateBatches(bytes.Clone(buf), 1<<20)
		if err != nil || len(again) != len(hs) {
			t.Fatalf("re-validation differs: %v", err)
		}
		for i := range hs {
			if hs[i] != again[i] {
				t.Fatalf("header %d differs on re-validation", i)
			}
		}
	})
}

func BenchmarkValidateBatches(b *testing.B) {
	// 16 KiB batch of 1 KiB records, as a typical produce request.
	buf := makeBatch(b, batchSpec{records: 16, valSize: 1000})
	dst := make([]BatchHeader, 0, 1)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AppendValidatedBatches(dst[:0], buf, 0); err != nil {
			b.Fatal(err)
		}
	}
}
