package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
)

func (b *Broker) handleCreatePartitions(req *kmsg.CreatePartitionsRequest) *kmsg.CreatePartitionsResponse {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		err := b.createPartitions(rt, req.ValidateOnly)
		st.ErrorCode, st.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (b *Broker) createPartitions(rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	t := b.topics.get(rt.Topic)
	if t == nil {
		return fmt.Errorf("topic %q: %w", rt.Topic, controller.ErrUnknownTopic)
	}
	if err := clientMayGrow(rt.Topic); err != nil {
		b.logRefusal("CreatePartitions", rt.Topic, err)
		return err
	}
	for _, a := range rt.Assignment {
		if len(a.Replicas) != 1 || a.Replicas[0] != b.cfg.NodeID {
			return kerr.ErrorForCode(kerr.InvalidReplicaAssignment.Code)
		}
	}
	if n := int32(len(t.parts)); rt.Assignment != nil && int32(len(rt.Assignment)) != rt.Count-n {
		return fmt.Errorf("%w: %d assignments for %d new partitions", kerr.InvalidReplicaAssignment, len(rt.Assignment), rt.Count-n)
	}
	if validateOnly {
		_, err := growWithinLimits(b.meta.Snapshot(), rt.Topic, rt.Count, b.maxPartitions())
		return err
	}
	mt, err := b.meta.Apply(func(s *controller.State) (*controller.Topic, error) {
		return growWithinLimits(s, rt.Topic, rt.Count, b.maxPartitions())
	})
	if err != nil {
		return err
	}
	if _, err := b.topics.open(mt); err != nil {
		b.undoGrow(mt, int32(len(t.parts)), err)
		return err
	}
	b.logger.Info("partitions added", "topic", rt.Topic, "partitions", rt.Count)
	return nil
}

func init() {
	register(api{key: kmsg.CreatePartitions, min: 0, max: 3,
		handle: method((*Broker).handleCreatePartitions),
		errorCodes: codes(func(r *kmsg.CreatePartitionsResponse, count func(int16)) {
			for _, t := range r.Topics {
				count(t.ErrorCode)
			}
		}),
	})
}
