package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/coordinator"
)

// Coordinator key types of FindCoordinator.
const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
)

// handleFindCoordinator names the broker that leads the coordinator's
// partition, as the metadata image records it. Until transactions exist, a
// transactional client is pointed at this broker and stops at its
// InitProducerId, which this broker refuses, instead of retrying a
// coordinator that never appears.
//
// Advertising FindCoordinator also matters to librdkafka: it enables lz4
// only for brokers that list this API.
func (b *Broker) handleFindCoordinator(req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	answer := func(key string) (int32, string, int32, int16) {
		if req.CoordinatorType != coordinatorGroup && req.CoordinatorType != coordinatorTransaction {
			return -1, "", -1, kerr.InvalidRequest.Code
		}
		if key == "" && req.CoordinatorType == coordinatorTransaction {
			return -1, "", -1, kerr.InvalidRequest.Code
		}
		node := b.localID()
		if req.CoordinatorType == coordinatorGroup {
			// The coordinator's log must exist before a client
			// relies on it; creating it here is Kafka's moment too.
			if err := b.groups.Ready(); err != nil {
				return -1, "", -1, kerr.CoordinatorNotAvailable.Code
			}
			var ok bool
			if node, ok = groupCoordinator(b.metaImage(), key); !ok {
				return -1, "", -1, kerr.CoordinatorNotAvailable.Code
			}
		}
		e, ok := b.endpoint(b.metaImage(), node)
		if !ok {
			return -1, "", -1, kerr.CoordinatorNotAvailable.Code
		}
		return node, e.Host, e.Port, 0
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

// groupCoordinator is the broker leading the __consumer_offsets partition
// that group's id hashes to (coordinator.PartitionFor, Kafka's mapping), as
// the metadata image records it; false while that partition has no leader.
func groupCoordinator(img *controller.Image, group string) (int32, bool) {
	mt, ok := img.Topic(coordinator.OffsetsTopic)
	if !ok || len(mt.Partitions) == 0 {
		return -1, false
	}
	leader := mt.Partitions[coordinator.PartitionFor(group, int32(len(mt.Partitions)))].Leader
	return leader, leader >= 0
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
