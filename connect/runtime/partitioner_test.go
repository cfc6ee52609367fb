package runtime

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestSourcePartitionerHonoursAnExplicitPartitionAndHashesKeys(t *testing.T) {
	tp := newSourcePartitioner().ForTopic("t")
	explicit := &kgo.Record{Key: []byte("k")}
	withPartition(explicit, 3)
	if got := tp.Partition(explicit, 8); got != 3 {
		t.Fatalf("explicit partition 3 of 8: got %d", got)
	}
	if !tp.RequiresConsistency(explicit) {
		t.Fatal("an explicit partition must not move to another partition")
	}
	// Keyed records without a partition go where Kafka's murmur2 puts
	// them, the same every time.
	keyed := &kgo.Record{Key: []byte("order-42")}
	a, b := tp.Partition(keyed, 8), tp.Partition(&kgo.Record{Key: []byte("order-42")}, 8)
	if a != b || a < 0 || a >= 8 {
		t.Fatalf("keyed record: %d then %d", a, b)
	}
	// Partition 0 is a real choice, not "unset".
	zero := &kgo.Record{Key: []byte("order-42")}
	withPartition(zero, 0)
	if got := tp.Partition(zero, 8); got != 0 {
		t.Fatalf("explicit partition 0: got %d", got)
	}
}
