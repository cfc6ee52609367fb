package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
)

func (b *Broker) handleDeleteTopics(req *kmsg.DeleteTopicsRequest) *kmsg.DeleteTopicsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for i := range req.TopicNames {
			targets = append(targets, target{name: &req.TopicNames[i]})
		}
	}
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		var t *topic
		if tg.name != nil {
			t = b.topics.get(*tg.name)
		} else {
			t = b.topics.getByID(controller.TopicID(tg.id))
		}
		switch {
		case t == nil && tg.name == nil:
			st.ErrorCode = kerr.UnknownTopicID.Code
		case t == nil:
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		case !b.cfg.DeleteTopicEnable:
			st.ErrorCode = kerr.TopicDeletionDisabled.Code
		default:
			st.Topic, st.TopicID = kmsg.StringPtr(t.name), t.id
			err := clientMayDelete(t.name)
			if err != nil {
				b.logRefusal("DeleteTopics", t.name, err)
			} else {
				err = b.deleteTopic(t.name)
			}
			st.ErrorCode, st.ErrorMessage = errorCode(err), errorMessage(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// deleteTopic removes the topic from the metadata first (durable), then its
// data; a crash in between leaves directories that the next start removes.
func (b *Broker) deleteTopic(name string) error {
	_, err := b.meta.Commit(func(s *controller.State) ([]controller.Record, error) { return s.PlanDeleteTopic(name) })
	if err != nil {
		return err
	}
	b.applyImage() // deletes its replicas and answers the fetches waiting on them
	b.logger.Info("topic deleted", "topic", name)
	return nil
}

func init() {
	register(api{key: kmsg.DeleteTopics, min: 0, max: 6, forward: true,
		handle: method((*Broker).handleDeleteTopics),
		errorCodes: codes(func(r *kmsg.DeleteTopicsResponse, count func(int16)) {
			for _, t := range r.Topics {
				count(t.ErrorCode)
			}
		}),
	})
}
