package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/netio"
)

// A broker whose metadata comes from a controller on another node
// (Deps.Metadata is a controllerlink.Link) reaches it through the optional
// interfaces below; the controller's side is served here too:
// BrokerRegistration and AllocateProducerIds on the node that holds the
// controller's store.

// forwarder sends requests only the controller decides to it.
type forwarder interface {
	Forward(ctx context.Context, req kmsg.Request) (kmsg.Response, error)
}

// registrar registers this broker with a controller elsewhere.
type registrar interface {
	Register(ctx context.Context, reg controller.Broker, incarnation [16]byte) (int64, error)
}

// followed is a source that follows a controller elsewhere: it calls the
// function OnChange set after every change, once Start has run.
type followed interface {
	OnChange(func())
	Start()
}

// heartbeater keeps this broker's session with a controller elsewhere and
// asks it for a controlled shutdown.
type heartbeater interface {
	StartHeartbeats(interval time.Duration)
	ControlledShutdown(ctx context.Context, interval time.Duration) error
}

// controlledShutdownTimeout bounds how long a stopping broker waits for
// the controller to move its leaderships away.
const controlledShutdownTimeout = 30 * time.Second

// registerTimeout bounds a broker's registration with its controller.
const registerTimeout = 30 * time.Second

// forward answers a request with the controller's answer; if the
// controller cannot be reached, every item of the request gets an error the
// client retries on.
func (b *Broker) forward(ctx context.Context, fw forwarder, req kmsg.Request) kmsg.Response {
	resp, err := fw.Forward(ctx, req)
	if err == nil {
		return resp
	}
	b.logger.Warn("forwarding to the controller", "api", kmsg.NameForKey(req.Key()), "err", err)
	code := kerr.RequestTimedOut.Code
	if errors.Is(err, context.Canceled) {
		code = kerr.NotController.Code
	}
	return forwardFailed(req, code)
}

// forwardFailed is the answer to a request the controller did not answer:
// code on every item.
func forwardFailed(req kmsg.Request, code int16) kmsg.Response {
	resp := req.ResponseKind()
	switch r := req.(type) {
	case *kmsg.CreateTopicsRequest:
		out := resp.(*kmsg.CreateTopicsResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = t.Topic, code
			out.Topics = append(out.Topics, rt)
		}
	case *kmsg.DeleteTopicsRequest:
		out := resp.(*kmsg.DeleteTopicsResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.TopicID, rt.ErrorCode = t.Topic, t.TopicID, code
			out.Topics = append(out.Topics, rt)
		}
		for _, name := range r.TopicNames {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = kmsg.StringPtr(name), code
			out.Topics = append(out.Topics, rt)
		}
	case *kmsg.CreatePartitionsRequest:
		out := resp.(*kmsg.CreatePartitionsResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewCreatePartitionsResponseTopic()
			rt.Topic, rt.ErrorCode = t.Topic, code
			out.Topics = append(out.Topics, rt)
		}
	case *kmsg.AlterConfigsRequest:
		out := resp.(*kmsg.AlterConfigsResponse)
		for _, rs := range r.Resources {
			rr := kmsg.NewAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = rs.ResourceType, rs.ResourceName, code
			out.Resources = append(out.Resources, rr)
		}
	case *kmsg.ElectLeadersRequest:
		return electLeadersFailed(r, code, nil)
	case *kmsg.AlterPartitionAssignmentsRequest:
		return reassignmentsFailed(r, code, nil)
	case *kmsg.IncrementalAlterConfigsRequest:
		out := resp.(*kmsg.IncrementalAlterConfigsResponse)
		for _, rs := range r.Resources {
			rr := kmsg.NewIncrementalAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = rs.ResourceType, rs.ResourceName, code
			out.Resources = append(out.Resources, rr)
		}
	}
	return resp
}

// handleAllocateProducerIDs reserves a block of producer ids for a broker
// whose InitProducerId answers come from it.
func (b *Broker) handleAllocateProducerIDs(req *kmsg.AllocateProducerIDsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
	store, ok := b.meta.(*controller.Store)
	if !ok {
		resp.ErrorCode = kerr.NotController.Code
		return resp
	}
	const block = 1000
	start, err := store.AllocateProducerIDs(block)
	if err != nil {
		b.logger.Error("allocating producer ids", "broker_id", req.BrokerID, "err", err)
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp
	}
	resp.ProducerIDStart, resp.ProducerIDLen = start, block
	return resp
}

func init() {
	register(api{key: kmsg.AllocateProducerIDs, min: 0, max: 0,
		handle: func(b *Broker, _ context.Context, _ *netio.Request, req kmsg.Request) kmsg.Response {
			return b.handleAllocateProducerIDs(req.(*kmsg.AllocateProducerIDsRequest))
		},
		errorCodes: func(resp kmsg.Response, count func(int16)) {
			count(resp.(*kmsg.AllocateProducerIDsResponse).ErrorCode)
		},
	})
}
