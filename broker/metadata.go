package broker

import (
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/coordinator"
	"github.com/sluice-io/sluice/replicamgr"
)

// authorizedOperationsOmitted is what Kafka returns when the client did not
// ask for authorized operations.
const authorizedOperationsOmitted = -2147483648

func (b *Broker) handleMetadata(req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	img := b.metaImage()
	resp.Brokers = b.metadataBrokers(img)
	resp.ClusterID = kmsg.StringPtr(img.ClusterID())
	resp.ControllerID = b.controllerID(img)
	resp.AuthorizedOperations = authorizedOperationsOmitted

	// v0 sends an empty list to mean "all topics"; v1+ uses null for that.
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, name := range img.TopicNames() {
			mt, _ := img.Topic(name)
			resp.Topics = append(resp.Topics, b.topicMetadata(mt))
		}
		return resp
	}
	// Before v4 the request had no flag and brokers always auto-created.
	autoCreate := b.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		var mt *controller.Topic
		switch {
		case rt.Topic != nil:
			mt, _ = img.Topic(*rt.Topic)
		case rt.TopicID != [16]byte{}:
			mt, _ = img.TopicByID(controller.TopicID(rt.TopicID))
		}
		if mt == nil && rt.Topic != nil && *rt.Topic == coordinator.OffsetsTopic {
			// Never auto-created as an ordinary topic: the group
			// coordinator creates it with its own partition count.
			if err := b.groups.Ready(); err == nil {
				mt, _ = b.metaImage().Topic(*rt.Topic)
			}
		}
		if mt == nil && rt.Topic != nil && autoCreate && !isInternalTopic(*rt.Topic) {
			_, err := b.createTopic(*rt.Topic, b.cfg.NumPartitions, nil)
			if err != nil && !errors.Is(err, controller.ErrTopicExists) {
				st := kmsg.NewMetadataResponseTopic()
				st.Topic = rt.Topic
				st.ErrorCode = errorCode(err)
				resp.Topics = append(resp.Topics, st)
				continue
			}
			mt, _ = b.metaImage().Topic(*rt.Topic)
		}
		if mt == nil {
			st := kmsg.NewMetadataResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if rt.Topic == nil {
				st.ErrorCode = kerr.UnknownTopicID.Code
			} else if controller.ValidateTopicName(*rt.Topic) != nil {
				st.ErrorCode = kerr.InvalidTopicException.Code
			}
			resp.Topics = append(resp.Topics, st)
			continue
		}
		resp.Topics = append(resp.Topics, b.topicMetadata(mt))
	}
	return resp
}

// metadataBrokers lists the unfenced brokers of the image where clients
// reach them (Kafka lists only those: a fenced broker is down or not yet
// caught up).
func (b *Broker) metadataBrokers(img *controller.Image) []kmsg.MetadataResponseBroker {
	var out []kmsg.MetadataResponseBroker
	for _, br := range img.Brokers() {
		if br.Fenced && br.ID != b.localID() {
			continue
		}
		e, ok := b.endpoint(img, br.ID)
		if !ok {
			continue // registered without a listener: unreachable
		}
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port, mb.Rack = br.ID, e.Host, e.Port, br.Rack
		out = append(out, mb)
	}
	return out
}

// topicMetadata describes a topic as the image records it: leader,
// replicas, ISR and epoch of each partition. This node adds only what it
// knows of its own replica: one whose files are offline or whose log is
// poisoned is reported so (KAFKA_STORAGE_ERROR, in OfflineReplicas), and
// one it leads but has not opened yet (a create under way) is
// LEADER_NOT_AVAILABLE, which clients retry.
func (b *Broker) topicMetadata(mt *controller.Topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	st.Topic = kmsg.StringPtr(mt.Name)
	st.TopicID = mt.ID
	st.IsInternal = isInternalTopic(mt.Name)
	st.AuthorizedOperations = authorizedOperationsOmitted
	local := b.topics.get(mt.Name)
	if local != nil && local.id != mt.ID {
		local = nil // a topic of the same name, deleted since
	}
	self := b.localID()
	for _, p := range mt.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.Index
		mp.Leader, mp.LeaderEpoch = p.Leader, p.LeaderEpoch
		mp.Replicas, mp.ISR = p.Replicas, p.ISR
		if slices.Contains(p.Replicas, self) {
			switch {
			case local == nil || int(p.Index) >= len(local.parts) || local.rt.Partitions[p.Index].Role == replicamgr.NotHosted:
				// The replica manager has not opened it yet.
				if p.Leader == self {
					mp.ErrorCode = kerr.LeaderNotAvailable.Code
				}
			case local.parts[p.Index] == nil || local.parts[p.Index].Poisoned() != nil:
				// Offline: its files could not be read (replicamgr), or
				// an fsync of them failed and it refuses writes until
				// restart.
				mp.ErrorCode = kerr.KafkaStorageError.Code
				mp.OfflineReplicas = []int32{self}
			}
		}
		st.Partitions = append(st.Partitions, mp)
	}
	return st
}

// isInternalTopic reports Kafka's internal topics; other names starting with
// "__" are ordinary user topics.
func isInternalTopic(name string) bool {
	return name == "__consumer_offsets" || name == "__transaction_state"
}

func init() {
	register(api{key: kmsg.Metadata, min: 0, max: 13,
		handle: method((*Broker).handleMetadata),
		errorCodes: codes(func(r *kmsg.MetadataResponse, count func(int16)) {
			count(r.ErrorCode) // v13+: a request-level error
			for _, t := range r.Topics {
				count(t.ErrorCode)
				for _, p := range t.Partitions {
					count(p.ErrorCode)
				}
			}
		}),
	})
}
