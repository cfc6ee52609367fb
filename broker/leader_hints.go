package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KIP-951: a Produce (v10+) or Fetch (v16+) answered NOT_LEADER_OR_FOLLOWER
// or FENCED_LEADER_EPOCH names the partition's current leader and epoch, as
// this node's metadata image has them, and the response carries those
// leaders' endpoints, so the client re-routes without a Metadata round trip.

// leaderHint is a partition's current leader elsewhere.
type leaderHint struct {
	id, epoch int32
}

// hintFor is the leader of topic's partition per the image, when it is
// another broker; false when there is none to point to.
func (b *Broker) hintFor(topic string, partition int32, code int16) (leaderHint, bool) {
	if code != kerr.NotLeaderForPartition.Code && code != kerr.FencedLeaderEpoch.Code {
		return leaderHint{}, false
	}
	p, ok := b.metaImage().Partition(topic, partition)
	if !ok || p.Leader < 0 || p.Leader == b.localID() {
		return leaderHint{}, false
	}
	return leaderHint{p.Leader, p.LeaderEpoch}, true
}

// endpointsOf are the client-listener endpoints of the hinted leaders.
type hintedNode struct {
	id   int32
	host string
	port int32
	rack *string
}

func (b *Broker) hintedNodes(ids map[int32]bool) []hintedNode {
	img := b.metaImage()
	var out []hintedNode
	for _, br := range img.Brokers() {
		if !ids[br.ID] {
			continue
		}
		if e, ok := b.endpoint(img, br.ID); ok {
			out = append(out, hintedNode{br.ID, e.Host, e.Port, br.Rack})
		}
	}
	return out
}

// addProduceHints fills CurrentLeader and the Brokers (NodeEndpoints) of a
// Produce response.
func (b *Broker) addProduceHints(resp *kmsg.ProduceResponse) {
	if resp.Version < 10 {
		return
	}
	var ids map[int32]bool // only a refused partition allocates
	for i := range resp.Topics {
		t := &resp.Topics[i]
		name := t.Topic
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.ErrorCode == 0 {
				continue
			}
			if name == "" { // v13+ names topics by id
				if mt, ok := b.metaImage().TopicByID(t.TopicID); ok {
					name = mt.Name
				}
			}
			if h, ok := b.hintFor(name, p.Partition, p.ErrorCode); ok {
				p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = h.id, h.epoch
				if ids == nil {
					ids = map[int32]bool{}
				}
				ids[h.id] = true
			}
		}
	}
	if ids == nil {
		return
	}
	for _, n := range b.hintedNodes(ids) {
		br := kmsg.NewProduceResponseBroker()
		br.NodeID, br.Host, br.Port, br.Rack = n.id, n.host, n.port, n.rack
		resp.Brokers = append(resp.Brokers, br)
	}
}
