package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/netio"
	"github.com/sluice-io/sluice/replicamgr"
)

// AlterPartition (API 56): a partition's leader asks the controller to
// change its ISR. The controller validates in Kafka's order and commits
// with a partition-epoch compare-and-set (controller.PlanAlterPartition);
// this node sends its own leaders' proposals the same way, to itself when
// it holds the controller's store, over the controller link otherwise.

// sender sends a request to the controller elsewhere (controllerlink).
type sender interface {
	Send(ctx context.Context, req kmsg.Request) (kmsg.Response, error)
}

// policy is the cluster-wide default the controller's planners apply
// where a topic has no override.
func (b *Broker) policy() controller.Policy {
	return controller.Policy{MinInsyncReplicas: int(b.cfg.MinInsyncReplicas), UncleanLeaderElection: b.cfg.UncleanLeaderElection}
}

// decideAlterPartition validates and commits an AlterPartition on the
// controller, then applies the new image here.
func (b *Broker) decideAlterPartition(store *controller.Store, brokerID int32, brokerEpoch int64, version int16, items []controller.AlterPartitionItem) ([]controller.AlterPartitionResult, error) {
	var results []controller.AlterPartitionResult
	_, err := store.Commit(func(s *controller.State) ([]controller.Record, error) {
		res, rs, err := s.PlanAlterPartition(brokerID, brokerEpoch, version, items, b.policy())
		results = res
		return rs, err
	})
	if err != nil {
		return nil, err
	}
	b.applyControllerImage()
	return results, nil
}

// alterPartition is the replica manager's way to the controller for one of
// this node's leaders (replicamgr.Deps.AlterPartition).
func (b *Broker) alterPartition(ctx context.Context, topicID controller.TopicID, partition int32, p isr.Proposal) isr.AlterResult {
	item := controller.AlterPartitionItem{TopicID: topicID, Partition: partition, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch}
	for _, m := range p.ISR {
		item.NewISR = append(item.NewISR, controller.ISRMember{BrokerID: m.ID, BrokerEpoch: m.Epoch})
	}
	if mt, ok := b.metaImage().TopicByID(topicID); ok && int(partition) < len(mt.Partitions) {
		// After an unclean election the first change is RECOVERED with
		// this leader alone; the followers it wanted join with its next
		// proposal (KIP-704).
		var recovery bool
		if item, recovery = controller.LeaderProposal(mt.Partitions[partition], b.localID(), item); recovery {
			b.logger.Info("leader recovered after an unclean election: marking the partition RECOVERED before any follower joins its ISR",
				"topic", mt.Name, "partition", partition, "leader_epoch", item.LeaderEpoch)
		}
	}
	return b.alters.submit(ctx, item)
}

// alterTimeout bounds one AlterPartition request to a controller elsewhere.
const alterTimeout = 30 * time.Second

// sendAlterBatch decides items as one AlterPartition of this node, on the
// store it holds or at the controller elsewhere (alterBatcher.send).
func (b *Broker) sendAlterBatch(items []controller.AlterPartitionItem) []isr.AlterResult {
	epoch := int64(-1)
	if br, ok := b.metaImage().Broker(b.localID()); ok {
		epoch = br.Epoch
	}
	var src any = b.meta
	if store, ok := b.ctrlStore(); ok {
		src = store
	}
	switch src := src.(type) {
	case *controller.Store:
		results, err := b.decideAlterPartition(src, b.localID(), epoch, 3, items)
		if err != nil {
			return allFailed(len(items), kerrOf(err))
		}
		out := make([]isr.AlterResult, len(results))
		for i, r := range results {
			out[i] = isr.AlterResult{Err: kerrOf(r.Err), LeaderEpoch: r.Partition.LeaderEpoch, PartitionEpoch: r.Partition.PartitionEpoch, ISR: r.Partition.ISR}
		}
		return out
	case sender:
		ctx, cancel := context.WithTimeout(context.Background(), alterTimeout)
		defer cancel()
		return b.sendAlterPartition(ctx, src, epoch, items)
	}
	return allFailed(len(items), fmt.Errorf("no controller to send AlterPartition to: %w", kerr.NotController))
}

// allFailed is n results of err.
func allFailed(n int, err error) []isr.AlterResult {
	out := make([]isr.AlterResult, n)
	for i := range out {
		out[i].Err = err
	}
	return out
}

// recoverElected sends the KIP-704 recovery step (this leader alone,
// RECOVERED) for the partitions in elected, the ones this node has just
// come to lead, that an unclean election left RECOVERING, so that they
// are marked RECOVERED as soon as the leadership is taken, not only with
// the leader's first ISR change (a partition with no follower to add
// would stay RECOVERING). It waits for the controller: run it off the
// path that applies images. A step that loses the partition-epoch
// compare-and-set to the leader's own proposal is harmless: both say the
// same, and the loser waits for the metadata.
func (b *Broker) recoverElected(ctx context.Context, elected []replicamgr.TopicPartition) {
	img := b.metaImage()
	self := isr.BrokerState{ID: b.localID(), Epoch: -1}
	if br, ok := img.Broker(b.localID()); ok {
		self.Epoch = br.Epoch
	}
	for _, tp := range elected {
		mt, ok := img.Topic(tp.Topic)
		if !ok || tp.Partition < 0 || int(tp.Partition) >= len(mt.Partitions) {
			continue
		}
		p := mt.Partitions[tp.Partition]
		if p.Leader != b.localID() || p.LeaderRecoveryState != controller.Recovering {
			continue
		}
		res := b.alterPartition(ctx, mt.ID, tp.Partition, isr.Proposal{LeaderID: self.ID, LeaderEpoch: p.LeaderEpoch,
			PartitionEpoch: p.PartitionEpoch, ISR: []isr.BrokerState{self}})
		if res.Err != nil {
			b.logger.Warn("marking a partition RECOVERED after an unclean election; its leader's next ISR change will",
				"topic", tp.Topic, "partition", tp.Partition, "leader_epoch", p.LeaderEpoch, "err", res.Err)
		}
	}
}

// kerrOf turns an error into the Kafka error the isr package reads.
func kerrOf(err error) error {
	if err == nil {
		return nil
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return err
	}
	if code := errorCode(err); code != 0 {
		return fmt.Errorf("%v: %w", err, kerr.ErrorForCode(code))
	}
	return err
}

// sendAlterPartition sends items to a controller elsewhere as one
// request, a topic entry per run of items of the same topic, and matches
// the answers back by topic and partition.
func (b *Broker) sendAlterPartition(ctx context.Context, s sender, epoch int64, items []controller.AlterPartitionItem) []isr.AlterResult {
	req := kmsg.NewPtrAlterPartitionRequest()
	req.BrokerID, req.BrokerEpoch = b.localID(), epoch
	img := b.metaImage()
	for _, item := range items {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].TopicID != item.TopicID {
			rt := kmsg.NewAlterPartitionRequestTopic()
			rt.TopicID = item.TopicID
			if mt, ok := img.TopicByID(item.TopicID); ok {
				rt.Topic = mt.Name
			}
			req.Topics = append(req.Topics, rt)
		}
		rt := &req.Topics[len(req.Topics)-1]
		rp := kmsg.NewAlterPartitionRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = item.Partition, item.LeaderEpoch, item.PartitionEpoch
		rp.LeaderRecoveryState = int8(item.LeaderRecoveryState)
		for _, m := range item.NewISR {
			e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
			e.BrokerID, e.BrokerEpoch = m.BrokerID, m.BrokerEpoch
			rp.NewEpochISR = append(rp.NewEpochISR, e)
			rp.NewISR = append(rp.NewISR, m.BrokerID)
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
	kresp, err := s.Send(ctx, req)
	if err != nil {
		return allFailed(len(items), err)
	}
	resp := kresp.(*kmsg.AlterPartitionResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return allFailed(len(items), err)
	}
	type key struct {
		id        controller.TopicID
		partition int32
	}
	answers := make(map[key]kmsg.AlterPartitionResponseTopicPartition, len(items))
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			answers[key{t.TopidID, p.Partition}] = p
		}
	}
	out := make([]isr.AlterResult, len(items))
	for i, item := range items {
		p, ok := answers[key{item.TopicID, item.Partition}]
		if !ok {
			out[i].Err = fmt.Errorf("AlterPartition answer lacks topic %s partition %d: %w", item.TopicID, item.Partition, kerr.UnknownServerError)
			continue
		}
		out[i] = isr.AlterResult{Err: kerr.ErrorForCode(p.ErrorCode), LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: p.ISR}
	}
	return out
}

// handleAlterPartition is the controller's side.
func (b *Broker) handleAlterPartition(req *kmsg.AlterPartitionRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterPartitionResponse)
	store, ok := b.ctrlStore()
	if !ok {
		resp.ErrorCode = kerr.NotController.Code
		return resp
	}
	var items []controller.AlterPartitionItem
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			it := controller.AlterPartitionItem{TopicID: rt.TopicID, Topic: rt.Topic, Partition: rp.Partition, LeaderEpoch: rp.LeaderEpoch,
				PartitionEpoch: rp.PartitionEpoch, LeaderRecoveryState: controller.LeaderRecoveryState(rp.LeaderRecoveryState)}
			if req.Version >= 3 {
				for _, e := range rp.NewEpochISR {
					it.NewISR = append(it.NewISR, controller.ISRMember{BrokerID: e.BrokerID, BrokerEpoch: e.BrokerEpoch})
				}
			} else {
				for _, id := range rp.NewISR {
					it.NewISR = append(it.NewISR, controller.ISRMember{BrokerID: id, BrokerEpoch: -1})
				}
			}
			items = append(items, it)
		}
	}
	results, err := b.decideAlterPartition(store, req.BrokerID, req.BrokerEpoch, req.Version, items)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp
	}
	i := 0
	for _, rt := range req.Topics {
		t := kmsg.NewAlterPartitionResponseTopic()
		t.Topic, t.TopidID = rt.Topic, rt.TopicID
		for range rt.Partitions {
			r := results[i]
			p := kmsg.NewAlterPartitionResponseTopicPartition()
			p.Partition = items[i].Partition
			p.ErrorCode = errorCode(r.Err)
			if r.Err == nil || errors.Is(r.Err, controller.ErrNewLeaderElected) {
				p.LeaderID, p.LeaderEpoch, p.PartitionEpoch = r.Partition.Leader, r.Partition.LeaderEpoch, r.Partition.PartitionEpoch
				p.ISR, p.LeaderRecoveryState = r.Partition.ISR, int8(r.Partition.LeaderRecoveryState)
			}
			t.Partitions = append(t.Partitions, p)
			i++
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

func init() {
	register(api{key: kmsg.AlterPartition, min: 0, max: 3,
		handle: func(b *Broker, _ context.Context, _ *netio.Request, req kmsg.Request) kmsg.Response {
			return b.handleAlterPartition(req.(*kmsg.AlterPartitionRequest))
		},
		errorCodes: func(resp kmsg.Response, count func(int16)) {
			r := resp.(*kmsg.AlterPartitionResponse)
			count(r.ErrorCode)
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					count(p.ErrorCode)
				}
			}
		},
	})
}
