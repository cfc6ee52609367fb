package metarepl

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/metalog"
	"github.com/sluice-io/sluice/segment"
)

// BenchmarkAppend measures committed Appends per second on the real file
// system, one voter (ISR of itself) and three voters over MemNetwork, with
// 16 concurrent appenders, writing each Append alone (group1) or grouping
// the ones waiting into one fsync (group256):
//
//	go test ./metarepl -run '^$' -bench Append -benchtime 2s
func BenchmarkAppend(b *testing.B) {
	for _, voters := range []int{1, 3} {
		for _, group := range []int{1, 256} {
			b.Run(fmt.Sprintf("voters%d/group%d", voters, group), func(b *testing.B) {
				dir := b.TempDir()
				c := newClusterOn(b, 10000, 1, func(id int32) (segment.FS, string) {
					return segment.OSFS(), filepath.Join(dir, fmt.Sprint(id))
				}, group)
				if voters == 1 {
					cfg := c.reg.takeover(b, voterOf(1))
					r, err := c.reg.apply(caspaxos.SetISR(cfg.Epoch, []metalog.Voter{voterOf(1)}))
					if err != nil {
						b.Fatal(err)
					}
					if err := c.nodes[1].BecomeLeader(c.ctx(), metalog.ConfigOf(r), 1); err != nil {
						b.Fatal(err)
					}
				} else {
					c.elect(1, 2, 3)
				}
				rec := [][]byte{make([]byte, 200)}
				b.SetParallelism(8)
				b.SetBytes(200)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := c.nodes[1].Append(context.Background(), rec); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkTrimTo measures TrimTo on the real file system: 1 MiB of 200-byte
// batches below a checkpoint of kept MiB (the restated state) and 100 KiB
// after it. TrimTo holds the log's lock throughout (the copy and two
// fsyncs), so this is how long Appends and reads wait:
//
//	go test ./metarepl -run '^$' -bench TrimTo -benchtime 20x
func BenchmarkTrimTo(b *testing.B) {
	for _, kept := range []int{1, 8} {
		b.Run(fmt.Sprintf("checkpoint%dMiB", kept), func(b *testing.B) {
			rec := make([]byte, 200)
			state := make([][]byte, kept<<20/1024)
			for i := range state {
				state[i] = make([]byte, 1024)
			}
			b.SetBytes(int64(kept)<<20 + 100<<10)
			for i := range b.N {
				b.StopTimer()
				l, err := OpenLog(segment.OSFS(), filepath.Join(b.TempDir(), fmt.Sprint(i)))
				if err != nil {
					b.Fatal(err)
				}
				var bs []Batch
				for off := int64(0); off < 1<<20/200; off++ {
					bs = append(bs, Batch{Offset: off, Epoch: 1, Records: [][]byte{rec}})
				}
				ck := Batch{Offset: int64(len(bs)), Epoch: 1, Records: state, Checkpoint: true}
				bs = append(bs, ck)
				for off := ck.End(); off < ck.End()+100<<10/200; off++ {
					bs = append(bs, Batch{Offset: off, Epoch: 1, Records: [][]byte{rec}})
				}
				if err := l.Append(bs...); err != nil {
					b.Fatal(err)
				}
				if err := l.SetHighWatermark(l.End()); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := l.TrimTo(ck.Offset); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				l.Close()
			}
		})
	}
}
