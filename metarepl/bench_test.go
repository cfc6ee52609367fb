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
