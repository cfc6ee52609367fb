package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
)

// DescribeQuorum (KIP-595, KIP-836, KIP-853) is what kafka-metadata-quorum
// describe --status and --replication read: the metadata log's leader, its
// high watermark, and how far each voter and each observer has got.
//
// With one voter (issue 16) the controller node is the whole quorum: it
// leads the log in epoch 0 (the epoch the metadata fetch answers with), its
// own log end is the high watermark, and the brokers are the observers,
// placed by the metadata offset their heartbeats report. Brokers forward
// the request to the controller, as Kafka's do.

func (b *Broker) handleDescribeQuorum(req *kmsg.DescribeQuorumRequest) *kmsg.DescribeQuorumResponse {
	resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
	store, isController := b.ctrlStore()
	for _, rt := range req.Topics {
		t := kmsg.NewDescribeQuorumResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewDescribeQuorumResponseTopicPartition()
			p.Partition = rp.Partition
			// NotLeaderForPartition is reached only when forwarding is
			// off (a single node is always its own controller).
			if p.ErrorCode = metadataPartitionError(rt.Topic, rp.Partition, isController); p.ErrorCode == 0 {
				b.describeQuorumPartition(&p, store.End())
			}
			if p.ErrorCode != 0 {
				msg := kerr.ErrorForCode(p.ErrorCode).Error()
				p.ErrorMessage = &msg
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	if req.Version >= 2 {
		resp.Nodes = b.quorumNodes()
	}
	return resp
}

// metadataPartitionError is the error code for a request naming a partition
// of the metadata log: only __cluster_metadata partition 0 exists, and only
// the controller serves it.
func metadataPartitionError(topic string, partition int32, isController bool) int16 {
	switch {
	case topic != controller.MetadataTopic || partition != 0:
		return kerr.UnknownTopicOrPartition.Code
	case !isController:
		return kerr.NotLeaderForPartition.Code
	}
	return 0
}

// describeQuorumPartition fills the metadata log's state: this node as the
// leader and only voter, caught up now, and every registered broker other
// than itself as an observer.
func (b *Broker) describeQuorumPartition(p *kmsg.DescribeQuorumResponseTopicPartition, end int64) {
	nowMs := b.now().UnixMilli()
	self := b.localID()
	voters := map[int32]bool{self: true}
	if b.ctrl != nil {
		b.describeQuorumVoters(p, voters, nowMs)
	} else {
		p.LeaderID, p.LeaderEpoch, p.HighWatermark = self, 0, end
		v := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		v.ReplicaID, v.LogEndOffset, v.LastFetchTimestamp, v.LastCaughtUpTimestamp = self, end, nowMs, nowMs
		p.CurrentVoters = append(p.CurrentVoters, v)
	}

	b.liveness.mu.Lock()
	observers := b.heartbeatsLocked().Observers()
	b.liveness.mu.Unlock()
	for _, o := range observers {
		if voters[o.ID] {
			continue // a combined node is listed once, as a voter
		}
		r := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		r.ReplicaID, r.LogEndOffset = o.ID, o.LogEndOffset
		r.LastFetchTimestamp, r.LastCaughtUpTimestamp = o.LastHeard.UnixMilli(), -1
		if o.LogEndOffset >= end {
			// Caught up when last heard from: Kafka's "last time its
			// log end reached the leader's" is at least then.
			r.LastCaughtUpTimestamp = r.LastFetchTimestamp
		}
		p.Observers = append(p.Observers, r)
	}
}

// describeQuorumVoters fills the leader and the voters of a controller
// quorum from the active controller's metadata log: each voter's log end
// and lag as the leader tracks them, its incarnation as the directory id.
func (b *Broker) describeQuorumVoters(p *kmsg.DescribeQuorumResponseTopicPartition, voters map[int32]bool, nowMs int64) {
	st := b.ctrl.rep.Status()
	p.LeaderID, p.LeaderEpoch, p.HighWatermark = b.localID(), st.Epoch, st.HighWatermark
	for _, vs := range st.Voters {
		voters[vs.Voter.ID] = true
		r := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		r.ReplicaID, r.ReplicaDirectoryID, r.LogEndOffset = vs.Voter.ID, vs.Voter.Incarnation, vs.LogEndOffset
		r.LastFetchTimestamp, r.LastCaughtUpTimestamp = -1, -1
		if at := b.ctrl.rep.TimeOf(vs.LastCaughtUpMs); !at.IsZero() {
			r.LastCaughtUpTimestamp = at.UnixMilli()
		}
		if vs.Voter.ID == b.localID() {
			r.LastFetchTimestamp, r.LastCaughtUpTimestamp = nowMs, nowMs
		}
		p.CurrentVoters = append(p.CurrentVoters, r)
	}
}

// quorumNodes lists the voters' controller endpoints (v2): a quorum's
// from its register (which membership changes move), else from
// controller.quorum.voters under the first controller listener's name. A
// node with no voters configured is its own quorum, reached where it
// advertises itself.
func (b *Broker) quorumNodes() []kmsg.DescribeQuorumResponseNode {
	if b.ctrl != nil && b.ctrl.v != nil {
		if reg := b.ctrl.v.Register(); len(reg.Voters) > 0 {
			var out []kmsg.DescribeQuorumResponseNode
			for _, m := range reg.Voters {
				n := kmsg.NewDescribeQuorumResponseNode()
				n.NodeID = m.Voter.ID
				for _, e := range m.Endpoints {
					l := kmsg.NewDescribeQuorumResponseNodeListener()
					l.Name, l.Host, l.Port = e.Name, e.Host, e.Port
					n.Listeners = append(n.Listeners, l)
				}
				out = append(out, n)
			}
			return out
		}
	}
	if len(b.cfg.Voters) == 0 {
		reg := b.registration()
		n := kmsg.NewDescribeQuorumResponseNode()
		n.NodeID = reg.ID
		for _, e := range reg.Endpoints[:min(1, len(reg.Endpoints))] {
			l := kmsg.NewDescribeQuorumResponseNodeListener()
			l.Name, l.Host, l.Port = e.Name, e.Host, uint16(e.Port)
			n.Listeners = append(n.Listeners, l)
		}
		return []kmsg.DescribeQuorumResponseNode{n}
	}
	name := "CONTROLLER"
	if len(b.cfg.ControllerListenerNames) > 0 {
		name = b.cfg.ControllerListenerNames[0]
	}
	var out []kmsg.DescribeQuorumResponseNode
	for _, v := range b.cfg.Voters {
		n := kmsg.NewDescribeQuorumResponseNode()
		n.NodeID = v.ID
		l := kmsg.NewDescribeQuorumResponseNodeListener()
		l.Name, l.Host, l.Port = name, v.Host, uint16(v.Port)
		n.Listeners = append(n.Listeners, l)
		out = append(out, n)
	}
	return out
}

func init() {
	register(api{key: kmsg.DescribeQuorum, min: 0, max: 2, forward: true,
		handle: method((*Broker).handleDescribeQuorum),
		errorCodes: codes(func(r *kmsg.DescribeQuorumResponse, count func(int16)) {
			count(r.ErrorCode)
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					count(p.ErrorCode)
				}
			}
		}),
	})
}
