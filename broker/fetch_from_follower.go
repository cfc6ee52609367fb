package broker

import (
	"github.com/sluice-io/sluice/replica"
)

// KIP-392, fetch from the closest replica: with replica.selector.class set
// to Kafka's RackAwareReplicaSelector, a leader asked by a consumer in
// another rack (Fetch v11+ RackID) answers with no records and the
// PreferredReadReplica to fetch from instead: an in-sync follower in the
// consumer's rack whose log holds the fetch offset. The follower serves
// the consumer up to its own high watermark.

// follower is partition i's local replica when this node follows it.
func (t *topic) follower(i int32) *replica.Partition {
	if t == nil || i < 0 || int(i) >= len(t.rt.Partitions) {
		return nil
	}
	p := t.rt.Partitions[i].Replica
	if p == nil || p.IsLeader() {
		return nil
	}
	return p
}

// preferredReadReplica picks a replica in the consumer's rack for a fetch
// at offset, when the selector is on and the leader is not in that rack.
func (b *Broker) preferredReadReplica(t *topic, partition int32, rack string, offset int64) (int32, bool) {
	if b.cfg.ReplicaSelectorClass == "" || rack == "" || b.cfg.BrokerRack == rack {
		return 0, false
	}
	repl := t.replication(partition)
	if repl == nil {
		return 0, false
	}
	img := b.metaImage()
	best, bestLEO := int32(-1), int64(-1)
	for _, f := range repl.Stats().Followers {
		br, ok := img.Broker(f.ID)
		switch {
		case f.ID == b.localID() || !f.InISR || !ok || br.Fenced || br.Rack == nil || *br.Rack != rack:
			continue
		case f.LogStartOffset > offset || f.LogEndOffset < offset:
			continue // its log does not hold the offset
		}
		if f.LogEndOffset > bestLEO {
			best, bestLEO = f.ID, f.LogEndOffset
		}
	}
	return best, best >= 0
}
