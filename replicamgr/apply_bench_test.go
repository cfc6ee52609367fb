package replicamgr

import (
	"testing"

	"github.com/sluice-io/sluice/controller"
)

// BenchmarkApplyImageOneChange: what a broker holding 3,000 replicas (30
// topics of 100 partitions, replicas [1 2]) spends applying an image that
// changed one partition's ISR, as after each AlterPartition while a
// restarted broker rejoins.
func BenchmarkApplyImageOneChange(b *testing.B) {
	c := newCluster(b)
	var ids []controller.TopicID
	for i := range 30 {
		var rs [][]int32
		for range 100 {
			rs = append(rs, []int32{1, 2})
		}
		ids = append(ids, c.createTopic("t"+string(rune('a'+i%26))+string(rune('a'+i/26)), nil, rs...))
	}
	if ch := c.m.ApplyImage(c.meta.Image()); len(ch.Failed) > 0 {
		b.Fatal(ch.Failed)
	}
	b.ResetTimer()
	for i := range b.N {
		isr := []int32{1}
		if i%2 == 1 {
			isr = []int32{1, 2}
		}
		if _, err := c.meta.Commit(func(*controller.State) ([]controller.Record, error) {
			return []controller.Record{controller.PartitionChangeRecord{TopicID: ids[i%len(ids)], Partition: int32(i % 100),
				Leader: controller.NoLeaderChange, ISR: isr}}, nil
		}); err != nil {
			b.Fatal(err)
		}
		c.m.ApplyImage(c.meta.Image())
	}
}
