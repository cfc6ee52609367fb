package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/netio"
)

// AlterPartitionReassignments (API 45, KIP-455) moves partitions to new
// replicas or cancels a move; ListPartitionReassignments (API 46) lists the
// moves under way (kafka-reassign-partitions.sh). Only the controller
// decides a move, so the first is forwarded by a broker that follows a
// controller elsewhere; the controller's node plans it with
// controller.PlanAlterPartitionReassignments and commits it through the
// Store. The move then proceeds by itself: the new replicas fetch, the
// leader adds them to the ISR with AlterPartition, and the AlterPartition
// whose ISR covers the target completes it (controller.change). The list
// is read from the metadata image, which every broker holds, so any node
// answers it.

// handleAlterPartitionReassignments answers on the controller's node.
func (b *Broker) handleAlterPartitionReassignments(req *kmsg.AlterPartitionAssignmentsRequest) *kmsg.AlterPartitionAssignmentsResponse {
	store, ok := b.ctrlStore()
	if !ok {
		return reassignmentsFailed(req, kerr.NotController.Code, nil)
	}
	var reqs []controller.Reassignment
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			reqs = append(reqs, controller.Reassignment{TopicPartition: controller.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}, Replicas: rp.Replicas})
		}
	}
	// Before v1 the request had no flag: the factor could always change.
	allowRFChange := req.Version < 1 || req.AllowReplicationFactorChange
	results := make([]controller.ReassignmentResult, len(reqs))
	_, err := store.Commit(func(s *controller.State) ([]controller.Record, error) {
		// One partition at a time, so that a move refused for changing
		// the replication factor (checked after the planner's own
		// checks, as Kafka orders them) leaves its record out.
		var rs []controller.Record
		for i, r := range reqs {
			res, recs := s.PlanAlterPartitionReassignments([]controller.Reassignment{r}, b.policy())
			results[i] = res[0]
			if res[0].Err == nil && !allowRFChange {
				if err := checkReplicationFactorKept(s, r); err != nil {
					results[i].Err = err
					continue
				}
			}
			rs = append(rs, recs...)
		}
		return rs, nil
	})
	if err != nil {
		b.logger.Error("committing partition reassignments", "err", err)
		msg := err.Error()
		return reassignmentsFailed(req, errorCode(err), &msg)
	}
	b.applyImage()
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = allowRFChange
	i := 0
	for _, rt := range req.Topics {
		t := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			p.Partition = rp.Partition
			p.ErrorCode, p.ErrorMessage = errorCode(results[i].Err), errorMessage(results[i].Err)
			t.Partitions = append(t.Partitions, p)
			i++
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// checkReplicationFactorKept refuses, for a request that forbids it
// (KIP-860), a target whose size differs from the partition's replica
// count, or from its target's while a move is under way
// (validatePartitionReplicationFactorUnchanged). Cancelling and unknown
// partitions are the planner's to answer.
func checkReplicationFactorKept(s *controller.State, r controller.Reassignment) error {
	t, ok := s.Topics[r.Topic]
	if r.Replicas == nil || !ok || r.Partition < 0 || int(r.Partition) >= len(t.Partitions) {
		return nil
	}
	p := t.Partitions[r.Partition]
	if n := len(p.TargetReplicas()); n != len(r.Replicas) {
		return fmt.Errorf("%w: %s-%d: the replication factor would change from %d to %d, which the request does not allow",
			controller.ErrInvalidReplication, r.Topic, r.Partition, n, len(r.Replicas))
	}
	return nil
}

// reassignmentsFailed answers a request that failed as a whole: code at the
// top and on every partition it names
// (AlterPartitionReassignmentsRequest.getErrorResponse). Forwarding uses
// it too when the controller cannot be reached.
func reassignmentsFailed(req *kmsg.AlterPartitionAssignmentsRequest, code int16, msg *string) *kmsg.AlterPartitionAssignmentsResponse {
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	msg = failureMessage(code, msg)
	resp.ErrorCode, resp.ErrorMessage = code, msg
	resp.AllowReplicationFactorChange = req.Version < 1 || req.AllowReplicationFactorChange
	for _, rt := range req.Topics {
		t := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			p.Partition, p.ErrorCode, p.ErrorMessage = rp.Partition, code, msg
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// handleListPartitionReassignments lists the moves under way among the
// partitions asked (null topics: all), from this node's image; unknown
// topics and partitions, and those not moving, are left out, as Kafka
// does. Replicas are the current ones: target and removing together.
func (b *Broker) handleListPartitionReassignments(req *kmsg.ListPartitionReassignmentsRequest) *kmsg.ListPartitionReassignmentsResponse {
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	var parts []controller.TopicPartition
	if req.Topics != nil {
		parts = []controller.TopicPartition{}
		for _, rt := range req.Topics {
			for _, p := range rt.Partitions {
				parts = append(parts, controller.TopicPartition{Topic: rt.Topic, Partition: p})
			}
		}
	}
	for _, o := range b.metaImage().ListPartitionReassignments(parts) {
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != o.Topic {
			t := kmsg.NewListPartitionReassignmentsResponseTopic()
			t.Topic = o.Topic
			resp.Topics = append(resp.Topics, t)
		}
		t := &resp.Topics[len(resp.Topics)-1]
		p := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		p.Partition, p.Replicas, p.AddingReplicas, p.RemovingReplicas = o.Partition, o.Replicas, o.Adding, o.Removing
		t.Partitions = append(t.Partitions, p)
	}
	return resp
}

func init() {
	register(api{key: kmsg.AlterPartitionAssignments, min: 0, max: 1, forward: true,
		handle: func(b *Broker, _ context.Context, _ *netio.Request, req kmsg.Request) kmsg.Response {
			return b.handleAlterPartitionReassignments(req.(*kmsg.AlterPartitionAssignmentsRequest))
		},
		errorCodes: codes(func(r *kmsg.AlterPartitionAssignmentsResponse, count func(int16)) {
			count(r.ErrorCode)
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					count(p.ErrorCode)
				}
			}
		}),
	})
	register(api{key: kmsg.ListPartitionReassignments, min: 0, max: 0,
		handle: func(b *Broker, _ context.Context, _ *netio.Request, req kmsg.Request) kmsg.Response {
			return b.handleListPartitionReassignments(req.(*kmsg.ListPartitionReassignmentsRequest))
		},
		errorCodes: codes(func(r *kmsg.ListPartitionReassignmentsResponse, count func(int16)) {
			count(r.ErrorCode)
		}),
	})
}
