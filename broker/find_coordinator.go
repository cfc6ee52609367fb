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
// the group coordinator and transactions exist, clients then stop at the
// next request (JoinGroup, or a transactional InitProducerId), which this
// broker does not advertise or refuses, instead of retrying a coordinator
// that never appears.
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
