package segment

import (
	"bytes"
	"math"
	"testing"
)

// BenchmarkAppend appends 16 KiB batches of 1 KiB records (no fsync).
func BenchmarkAppend(b *testing.B) {
	for _, name := range []string{"memfs", "osfs"} {
		b.Run(name, func(b *testing.B) {
			var fsys FS = NewMemFS()
			dir := testDir
			if name == "osfs" {
				fsys, dir = OSFS(), b.TempDir()
			}
			cfg := Config{SegmentBytes: 64 << 20, IndexIntervalBytes: 4096, RetentionBytes: 256 << 20, RetentionMs: -1}
			l := openLog(b, fsys, dir, cfg, nil)
			defer l.Close()
			proto := makeBatch(b, batchSpec{records: 16, valSize: 1000})
			buf := bytes.Clone(proto)
			hs := make([]BatchHeader, 0, 1)
			b.SetBytes(int64(len(proto)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				copy(buf, proto)
				var err error
				if hs, err = AppendValidatedBatches(hs[:0], buf, 1<<20); err != nil {
					b.Fatal(err)
				}
				if _, err := l.Append(buf, hs, 1, -1); err != nil {
					b.Fatal(err)
				}
				if i++; i%4096 == 0 {
					if _, err := l.ApplyRetention(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkRead measures locating and collecting 1 MiB from the middle of
// the log (no data copy: ranges only, as for sendfile).
func BenchmarkRead(b *testing.B) {
	cfg := Config{SegmentBytes: 64 << 20, IndexIntervalBytes: 4096, RetentionBytes: -1, RetentionMs: -1}
	l := openLog(b, NewMemFS(), testDir, cfg, nil)
	defer l.Close()
	proto := makeBatch(b, batchSpec{records: 16, valSize: 1000})
	for i := 0; i < 2000; i++ {
		buf := bytes.Clone(proto)
		hs, _ := ValidateBatches(buf, 0)
		if _, err := l.Append(buf, hs, 1, -1); err != nil {
			b.Fatal(err)
		}
	}
	leo := l.EndOffset()
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		r, err := l.Read((i*7919)%(leo/2), 1<<20, math.MaxInt64, true)
		if err != nil || r.Bytes == 0 {
			b.Fatal(err)
		}
		r.Release()
		i++
	}
}

// BenchmarkProduceValidation measures what produce validation costs for a
// compressed batch of 100 JSON-like records (about 20 KiB before
// compression): "framing" is what ran before compressed batches were
// looked into (lengths, CRC, counts); "records" adds decompressing and
// walking every record. SetBytes is the decompressed size.
func BenchmarkProduceValidation(b *testing.B) {
	recs := jsonRecords(100)
	for _, c := range []Codec{CodecLZ4, CodecZstd} {
		batch := batchOf(c, compressed(b, c, recs), 100)
		for _, mode := range []string{"framing", "records"} {
			b.Run(c.String()+"/"+mode, func(b *testing.B) {
				hs := make([]BatchHeader, 0, 1)
				b.SetBytes(int64(len(recs)))
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if hs, err = AppendValidatedBatches(hs[:0], batch, 1<<20); err != nil {
						b.Fatal(err)
					}
					if mode == "records" {
						if err := ValidateCompressedBatches(batch, 0); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
