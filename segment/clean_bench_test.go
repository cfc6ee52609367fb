package segment

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkClean measures a cleaning pass over 16 MiB of dirty log: 1 KiB
// records, 16 to a batch, whose keys are 10% unique (issue 18's
// workload). Bytes/s is dirty log cleaned per second.
func BenchmarkClean(b *testing.B) {
	for _, name := range []string{"memfs", "osfs"} {
		b.Run(name, func(b *testing.B) {
			const records = 16 << 10
			cfg := Config{SegmentBytes: 4 << 20, IndexIntervalBytes: 4096, RetentionBytes: -1, RetentionMs: -1}
			value := bytes.Repeat([]byte("v"), 1000)
			rng := rand.New(rand.NewPCG(1, 1))
			var dirty int64
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				var fsys FS = NewMemFS()
				dir := testDir
				if name == "osfs" {
					fsys, dir = OSFS(), b.TempDir()
				}
				l := openLog(b, fsys, dir, cfg, nil)
				for n := 0; n < records; n += 16 {
					kvs := make([]KV, 16)
					for j := range kvs {
						kvs[j] = KV{Key: fmt.Appendf(nil, "key-%06d", rng.IntN(records/10)), Value: value}
					}
					appendKVs(b, l, kvs, 0)
				}
				dirty = l.Size() - l.active().size
				b.StartTimer()
				st, err := l.Clean(CleanOptions{})
				b.StopTimer()
				if err != nil || st.RecordsDropped == 0 {
					b.Fatalf("%v %+v", err, st)
				}
				_ = l.Close()
				b.StartTimer()
			}
			b.SetBytes(dirty)
		})
	}
}
