package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Coordinator key types of FindCoordinator.
const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
)

// handleFindCoordinator names this node as the coordinator of every group
// and transactional id: a single-node cluster has no other candidate. Until
// transactions exist, a transactional client stops at its InitProducerId,
// which this broker refuses, instead of retrying a coordinator that never
// appears.
//
// Advertising FindCoordinator also matters to librdkafka: it enables lz4
// only for brokers that list this API.
func (b *Broker) handleFindCoordinator(req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	self := b.advertisedBroker()
	answer := func(key string) (node int32, host string, port int32, code int16) {
		if req.CoordinatorType != coordinatorGroup && req.CoordinatorType != coordinatorTransaction {
			return -1, "", -1, kerr.InvalidRequest.Code
		}
		if key == "" && req.CoordinatorType == coordinatorTransaction {
			return -1, "", -1, kerr.InvalidRequest.Code
		}
		if req.CoordinatorType == coordinatorGroup {
			// The coordinator's log must exist before a client
			// relies on it; creating it here is Kafka's moment too.
			if err := b.groups.Ready(); err != nil {
				return -1, "", -1, kerr.CoordinatorNotAvailable.Code
			}
		}
		return self.NodeID, self.Host, self.Port, 0
	}
	if req.Version < 4 {
		resp.NodeID, resp.Host, resp.Port, resp.ErrorCode = answer(req.CoordinatorKey)
		return resp
	}
	for _, key := range req.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.NodeID, c.Host, c.Port, c.ErrorCode = answer(key)
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp
}

func init() {
	register(api{key: kmsg.FindCoordinator, min: 0, max: 6,
		handle: method((*Broker).handleFindCoordinator),
		errorCodes: codes(func(r *kmsg.FindCoordinatorResponse, count func(int16)) {
			count(r.ErrorCode)
			for _, c := range r.Coordinators {
				count(c.ErrorCode)
			}
		}),
	})
}
