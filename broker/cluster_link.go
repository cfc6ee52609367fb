package broker

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/netio"
	"github.com/sluice-io/sluice/segment"
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

// previousEpochSetter takes the broker epoch of this node's last clean
// shutdown, for its next registration to send as PreviousBrokerEpoch.
type previousEpochSetter interface {
	SetPreviousBrokerEpoch(epoch int64)
}

// brokerEpochSource tells the broker epoch this node's registration with a
// controller elsewhere got.
type brokerEpochSource interface {
	BrokerEpoch() int64
}

// A clean shutdown records this broker's epoch in every log directory's
// clean-shutdown marker (Kafka keeps it in .kafka_cleanshutdown as
// {"version":0,"brokerEpoch":N}). The next start sends it with its
// registration (KIP-966's PreviousBrokerEpoch): the controller then knows
// this broker flushed everything it had and keeps it an eligible leader
// where it was one; without it, or with an epoch the controller did not
// give last, the restart counts as unclean and the broker leaves every ISR
// and ELR first.

// cleanShutdownRecord is the marker's content.
type cleanShutdownRecord struct {
	Version     int   `json:"version"`
	BrokerEpoch int64 `json:"broker_epoch"`
}

// cleanShutdownMarker is the marker's content for a broker that stops at
// epoch (-1: not registered with a controller elsewhere).
func cleanShutdownMarker(epoch int64) []byte {
	b, _ := json.Marshal(cleanShutdownRecord{BrokerEpoch: epoch}) // cannot fail: two numbers
	return b
}

// cleanShutdownEpoch is what this broker writes into its markers as it
// stops: the epoch its controller gave it, or -1.
func (b *Broker) cleanShutdownEpoch() int64 {
	if src, ok := b.meta.(brokerEpochSource); ok {
		return src.BrokerEpoch()
	}
	return -1
}

// previousBrokerEpoch reads the epoch of the last clean shutdown from the
// markers of dirs: -1 unless every directory has one and they all name the
// same epoch (a directory without one died with the process, or was added
// since; an empty marker is an older Sluice's, which kept no epoch).
func previousBrokerEpoch(fsys segment.FS, dirs []string) int64 {
	epoch := int64(-1)
	for i, dir := range dirs {
		data, err := segment.ReadFile(fsys, filepath.Join(dir, cleanShutdownFile))
		if err != nil {
			return -1
		}
		var rec cleanShutdownRecord
		if json.Unmarshal(data, &rec) != nil || rec.Version != 0 || rec.BrokerEpoch < 0 {
			return -1
		}
		if i > 0 && rec.BrokerEpoch != epoch {
			return -1
		}
		epoch = rec.BrokerEpoch
	}
	return epoch
}

// notePreviousBrokerEpoch hands the epoch of the last clean shutdown to a
// controller link, before it registers this node (and before the log
// directories' markers are taken).
func (b *Broker) notePreviousBrokerEpoch(meta any) {
	if s, ok := meta.(previousEpochSetter); ok {
		epoch := previousBrokerEpoch(b.fs, b.cfg.LogDirs)
		s.SetPreviousBrokerEpoch(epoch)
		b.logger.Info("registering with the epoch of the last clean shutdown", "previous_broker_epoch", epoch)
	}
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
	case *kmsg.DescribeQuorumRequest:
		out := resp.(*kmsg.DescribeQuorumResponse)
		out.ErrorCode = code
		for _, rt := range r.Topics {
			t := kmsg.NewDescribeQuorumResponseTopic()
			t.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				p := kmsg.NewDescribeQuorumResponseTopicPartition()
				p.Partition, p.ErrorCode = rp.Partition, code
				t.Partitions = append(t.Partitions, p)
			}
			out.Topics = append(out.Topics, t)
		}
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
	store, ok := b.ctrlStore()
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
