package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/netio"
)

// ElectLeaders (API 43, KIP-460): an operator asks the controller for
// preferred or unclean leader elections (kafka-leader-election.sh). Only
// the controller decides, so a broker following a controller elsewhere
// forwards it (api.forward); here, on the controller's node, the election
// is planned by controller.PlanElectLeaders and committed through the
// Store, then applied to this node's replicas. The answers are Kafka
// KRaft's (ReplicationControlManager.electLeaders).

// handleElectLeaders answers on the controller's node.
func (b *Broker) handleElectLeaders(req *kmsg.ElectLeadersRequest) *kmsg.ElectLeadersResponse {
	store, ok := b.ctrlStore()
	if !ok {
		return electLeadersFailed(req, kerr.NotController.Code, nil)
	}
	typ := controller.ElectionType(req.ElectionType) // v0 has none: preferred
	if typ != controller.PreferredElection && typ != controller.UncleanElection {
		msg := fmt.Sprintf("unknown election type %d", req.ElectionType)
		return electLeadersFailed(req, kerr.InvalidRequest.Code, &msg)
	}
	var results []controller.ElectionResult
	var topics []string // every topic, for a request that names none
	_, err := store.Commit(func(s *controller.State) ([]controller.Record, error) {
		parts := electionTargets(s, req.Topics)
		if req.Topics == nil {
			topics = s.TopicNames()
		}
		res, rs := s.PlanElectLeaders(typ, parts, b.policy())
		results = res
		return rs, nil
	})
	if err != nil {
		b.logger.Error("committing leader elections", "err", err)
		msg := err.Error()
		return electLeadersFailed(req, errorCode(err), &msg)
	}
	b.applyImage()
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	if req.Topics == nil {
		resp.Topics = electAllResults(topics, results)
		return resp
	}
	i := 0
	for _, rt := range req.Topics {
		t := kmsg.NewElectLeadersResponseTopic()
		t.Topic = rt.Topic
		for range rt.Partitions {
			t.Partitions = append(t.Partitions, electionPartition(results[i]))
			i++
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// electionTargets lists the partitions a request names, in its order
// (duplicates included: each gets its own answer, as in Kafka), or every
// partition of s when it names none. The list is never nil: the planner
// reads nil as "all, without the failures", and Kafka's answer to "all"
// keeps every failure but ELECTION_NOT_NEEDED.
func electionTargets(s *controller.State, topics []kmsg.ElectLeadersRequestTopic) []controller.TopicPartition {
	parts := []controller.TopicPartition{}
	if topics == nil {
		for _, name := range s.TopicNames() {
			for _, p := range s.Topics[name].Partitions {
				parts = append(parts, controller.TopicPartition{Topic: name, Partition: p.Index})
			}
		}
		return parts
	}
	for _, rt := range topics {
		for _, p := range rt.Partitions {
			parts = append(parts, controller.TopicPartition{Topic: rt.Topic, Partition: p})
		}
	}
	return parts
}

// electAllResults is the answer to a request for every partition: one
// entry per topic, even if empty, holding each partition whose election
// was needed, whether or not it succeeded.
func electAllResults(topics []string, results []controller.ElectionResult) []kmsg.ElectLeadersResponseTopic {
	byTopic := map[string][]controller.ElectionResult{}
	for _, r := range results {
		if !errors.Is(r.Err, controller.ErrElectionNotNeeded) {
			byTopic[r.Topic] = append(byTopic[r.Topic], r)
		}
	}
	out := make([]kmsg.ElectLeadersResponseTopic, 0, len(topics))
	for _, name := range topics {
		t := kmsg.NewElectLeadersResponseTopic()
		t.Topic = name
		for _, r := range byTopic[name] {
			t.Partitions = append(t.Partitions, electionPartition(r))
		}
		out = append(out, t)
	}
	return out
}

func electionPartition(r controller.ElectionResult) kmsg.ElectLeadersResponseTopicPartition {
	p := kmsg.NewElectLeadersResponseTopicPartition()
	p.Partition = r.Partition
	p.ErrorCode = errorCode(r.Err)
	p.ErrorMessage = errorMessage(r.Err)
	return p
}

// electLeadersFailed answers a request that failed as a whole: code at the
// top (v1+) and on every partition it names (ElectLeadersRequest.getErrorResponse).
// Forwarding uses it too when the controller cannot be reached.
func electLeadersFailed(req *kmsg.ElectLeadersRequest, code int16, msg *string) *kmsg.ElectLeadersResponse {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	resp.ErrorCode = code
	msg = failureMessage(code, msg)
	for _, rt := range req.Topics {
		t := kmsg.NewElectLeadersResponseTopic()
		t.Topic = rt.Topic
		for _, id := range rt.Partitions {
			p := kmsg.NewElectLeadersResponseTopicPartition()
			p.Partition, p.ErrorCode, p.ErrorMessage = id, code, msg
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// failureMessage is msg, or the text of code when msg is nil: a request
// refused as a whole says why on every item, as Kafka's ApiError does.
func failureMessage(code int16, msg *string) *string {
	if msg != nil || code == 0 {
		return msg
	}
	s := kerr.ErrorForCode(code).Error()
	return &s
}

func init() {
	register(api{key: kmsg.ElectLeaders, min: 0, max: 2, forward: true,
		handle: func(b *Broker, _ context.Context, _ *netio.Request, req kmsg.Request) kmsg.Response {
			return b.handleElectLeaders(req.(*kmsg.ElectLeadersRequest))
		},
		errorCodes: codes(func(r *kmsg.ElectLeadersResponse, count func(int16)) {
			count(r.ErrorCode) // v1+
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					count(p.ErrorCode)
				}
			}
		}),
	})
}
