package broker

import (
	"errors"
	"net"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/coordinator"
)

// authorizedOperationsOmitted is what Kafka returns when the client did not
// ask for authorized operations.
const authorizedOperationsOmitted = -2147483648

func (b *Broker) handleMetadata(req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = []kmsg.MetadataResponseBroker{b.advertisedBroker()}
	resp.ClusterID = kmsg.StringPtr(b.meta.ClusterID())
	resp.ControllerID = b.cfg.NodeID
	resp.AuthorizedOperations = authorizedOperationsOmitted

	// v0 sends an empty list to mean "all topics"; v1+ uses null for that.
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range b.topics.all() {
			resp.Topics = append(resp.Topics, b.topicMetadata(t))
		}
		return resp
	}
	// Before v4 the request had no flag and brokers always auto-created.
	autoCreate := b.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		var t *topic
		switch {
		case rt.Topic != nil:
			t = b.topics.get(*rt.Topic)
		case rt.TopicID != [16]byte{}:
			t = b.topics.getByID(controller.TopicID(rt.TopicID))
		}
		if t == nil && rt.Topic != nil && *rt.Topic == coordinator.OffsetsTopic {
			// Never auto-created as an ordinary topic: the group
			// coordinator creates it with its own partition count.
			if err := b.groups.Ready(); err == nil {
				t = b.topics.get(*rt.Topic)
			}
		}
		if t == nil && rt.Topic != nil && autoCreate && !isInternalTopic(*rt.Topic) {
			_, err := b.createTopic(*rt.Topic, b.cfg.NumPartitions, nil)
			if err != nil && !errors.Is(err, controller.ErrTopicExists) {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = rt.Topic
				mt.ErrorCode = errorCode(err)
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			t = b.topics.get(*rt.Topic)
		}
		if t == nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID = rt.Topic, rt.TopicID
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if rt.Topic == nil {
				mt.ErrorCode = kerr.UnknownTopicID.Code
			} else if controller.ValidateTopicName(*rt.Topic) != nil {
				mt.ErrorCode = kerr.InvalidTopicException.Code
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, b.topicMetadata(t))
	}
	return resp
}

func (b *Broker) advertisedBroker() kmsg.MetadataResponseBroker {
	l := b.cfg.AdvertisedListeners[0]
	mb := kmsg.NewMetadataResponseBroker()
	mb.NodeID = b.cfg.NodeID
	mb.Host = l.Host
	mb.Port = int32(l.Port)
	if l.Port == 0 && b.listener != nil {
		// Listening on an ephemeral port (tests): advertise the real one.
		mb.Port = int32(b.listener.Addr().(*net.TCPAddr).Port)
	}
	return mb
}

func (b *Broker) topicMetadata(t *topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = kmsg.StringPtr(t.name)
	mt.TopicID = t.id
	mt.IsInternal = isInternalTopic(t.name)
	mt.AuthorizedOperations = authorizedOperationsOmitted
	for i, p := range t.parts {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = int32(i)
		mp.Leader = b.cfg.NodeID
		mp.Replicas = []int32{b.cfg.NodeID}
		mp.ISR = []int32{b.cfg.NodeID}
		if p == nil || p.Poisoned() != nil {
			// Offline: its files could not be read (topics.go), or an
			// fsync of them failed and it refuses writes until restart.
			mp.ErrorCode = kerr.KafkaStorageError.Code
			mp.LeaderEpoch = t.epochs[i]
			if p != nil {
				mp.LeaderEpoch = p.LeaderEpoch()
			}
			mp.OfflineReplicas = []int32{b.cfg.NodeID}
			mt.Partitions = append(mt.Partitions, mp)
			continue
		}
		mp.LeaderEpoch = p.LeaderEpoch()
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// isInternalTopic reports Kafka's internal topics; other names starting with
// "__" are ordinary user topics.
func isInternalTopic(name string) bool {
	return name == "__consumer_offsets" || name == "__transaction_state"
}

func sortTopics(ts []*topic) { sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name }) }

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
