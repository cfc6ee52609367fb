package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleInitProducerID hands an idempotent producer a fresh id at epoch 0.
// A producer that re-initializes (KIP-360) also gets a fresh id: without
// transactions there is no state worth keeping under the old one.
func (b *Broker) handleInitProducerID(req *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		// Transactions need a coordinator that a later issue builds.
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp
	}
	id, err := b.meta.NextProducerID()
	if err != nil {
		// No block of ids from the controller now (it is moving, or
		// unreachable): a retriable answer, as Kafka's producer-id
		// manager gives while it waits for a block. UNKNOWN_SERVER_ERROR
		// would fail the producer for good.
		b.logger.Warn("allocating producer id; the client retries", "err", err)
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}

func init() {
	register(api{key: kmsg.InitProducerID, min: 0, max: 5,
		handle: method((*Broker).handleInitProducerID),
		errorCodes: codes(func(r *kmsg.InitProducerIDResponse, count func(int16)) {
			count(r.ErrorCode)
		}),
	})
}
