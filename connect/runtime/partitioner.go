package runtime

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A source record may name its partition (Kafka's SourceRecord.kafkaPartition);
// franz-go only honours Record.Partition under a manual partitioner, so
// the partition rides in the record's context and sourcePartitioner uses
// it, leaving every other record to Kafka's default (murmur2 of the key,
// sticky batches for keyless records).

type explicitPartitionKey struct{}

// withPartition marks kr for partition p.
func withPartition(kr *kgo.Record, p int32) {
	kr.Partition = p
	kr.Context = context.WithValue(context.Background(), explicitPartitionKey{}, p)
}

func explicitPartition(r *kgo.Record) (int32, bool) {
	if r.Context == nil {
		return 0, false
	}
	p, ok := r.Context.Value(explicitPartitionKey{}).(int32)
	return p, ok
}

type sourcePartitioner struct{ def kgo.Partitioner }

func newSourcePartitioner() kgo.Partitioner {
	return sourcePartitioner{def: kgo.StickyKeyPartitioner(nil)}
}

func (s sourcePartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return &sourceTopicPartitioner{def: s.def.ForTopic(topic)}
}

type sourceTopicPartitioner struct{ def kgo.TopicPartitioner }

func (s *sourceTopicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	if _, ok := explicitPartition(r); ok {
		return true
	}
	return s.def.RequiresConsistency(r)
}

// Partition answers the record's own partition when it has one; a
// partition beyond the topic's count wraps, as there is no way to fail a
// single record from here (Kafka's producer would refuse it).
func (s *sourceTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if p, ok := explicitPartition(r); ok && p >= 0 {
		return int(p) % n
	}
	return s.def.Partition(r, n)
}

func (s *sourceTopicPartitioner) OnNewBatch() {
	if nb, ok := s.def.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}
