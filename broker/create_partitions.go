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
	img := b.metaImage()
	mt, _ := img.Topic(rt.Topic)
	if mt == nil || mt.ID != t.id {
		return fmt.Errorf("topic %q: %w", rt.Topic, controller.ErrUnknownTopic)
	}
	have := int32(len(mt.Partitions))
	var assignment [][]int32
	if rt.Assignment != nil {
		if int32(len(rt.Assignment)) != rt.Count-have {
			return fmt.Errorf("%w: %d assignments for %d new partitions", kerr.InvalidReplicaAssignment, len(rt.Assignment), rt.Count-have)
		}
		for i, a := range rt.Assignment {
			if err := checkReplicas(img, have+int32(i), a.Replicas, len(mt.Partitions[0].Replicas)); err != nil {
				return fmt.Errorf("%w: %v", kerr.InvalidReplicaAssignment, err)
			}
			assignment = append(assignment, a.Replicas)
		}
	}
	plan := growWithinLimits(rt.Topic, rt.Count, assignment, b.maxPartitions())
	if validateOnly {
		_, err := img.Plan(plan)
		return err
	}
	img, err := b.meta.Commit(plan)
	if err != nil {
		return err
	}
	mt, _ = img.Topic(rt.Topic)
	if err := b.applyImage()[rt.Topic]; err != nil {
		b.undoGrow(mt, have, err)
		return err
	}
	b.logger.Info("partitions added", "topic", rt.Topic, "partitions", rt.Count)
	return nil
}

func init() {
	register(api{key: kmsg.CreatePartitions, min: 0, max: 3, forward: true,
		handle: method((*Broker).handleCreatePartitions),
		errorCodes: codes(func(r *kmsg.CreatePartitionsResponse, count func(int16)) {
			for _, t := range r.Topics {
				count(t.ErrorCode)
			}
		}),
	})
}
