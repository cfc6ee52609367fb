package broker

import (
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
)

func (b *Broker) handleCreateTopics(req *kmsg.CreateTopicsRequest) *kmsg.CreateTopicsResponse {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		fail := func(code int16, err error) {
			st.ErrorCode = code
			st.ErrorMessage = errorMessage(err)
			resp.Topics = append(resp.Topics, st)
		}
		if seen[rt.Topic] > 1 {
			fail(kerr.InvalidRequest.Code, fmt.Errorf("topic %q appears more than once in the request", rt.Topic))
			continue
		}
		if err := clientMayCreate(rt.Topic); err != nil {
			b.logRefusal("CreateTopics", rt.Topic, err)
			fail(errorCode(err), err)
			continue
		}
		partitions, rf := rt.NumPartitions, rt.ReplicationFactor
		if len(rt.ReplicaAssignment) > 0 {
			if partitions != -1 || rf != -1 {
				fail(kerr.InvalidRequest.Code, fmt.Errorf("give either a replica assignment or partitions and replication factor, not both"))
				continue
			}
			if err := b.checkAssignment(rt.ReplicaAssignment); err != nil {
				fail(kerr.InvalidReplicaAssignment.Code, err)
				continue
			}
			partitions = int32(len(rt.ReplicaAssignment))
			rf = int16(len(rt.ReplicaAssignment[0].Replicas))
		}
		if partitions == -1 {
			partitions = b.cfg.NumPartitions
		}
		if rf == -1 {
			rf = int16(b.cfg.DefaultReplicationFactor)
		}
		configs := map[string]string{}
		var cfgErr error
		for _, c := range rt.Configs {
			if c.Value == nil {
				continue
			}
			if err := config.ValidateTopicConfig(c.Name, *c.Value); err != nil {
				cfgErr = err
				break
			}
			configs[c.Name] = *c.Value
		}
		if cfgErr != nil {
			fail(kerr.InvalidConfig.Code, cfgErr)
			continue
		}
		var err error
		if req.ValidateOnly {
			err = b.validateNewTopic(rt.Topic, partitions, rf, configs)
		} else {
			var t *topic
			t, err = b.createTopicRF(rt.Topic, partitions, rf, configs)
			if err == nil {
				st.TopicID = t.id
			}
		}
		if err != nil {
			fail(errorCode(err), err)
			continue
		}
		st.NumPartitions, st.ReplicationFactor = partitions, rf
		for _, e := range b.cfg.DescribeTopicConfig(configs) {
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			c.Name, c.Value = e.Name, kmsg.StringPtr(e.Value)
			c.ReadOnly, c.IsSensitive = e.ReadOnly, e.Sensitive
			c.Source = int8(e.Source)
			st.Configs = append(st.Configs, c)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// checkAssignment accepts a manual assignment only if it places every
// replica on this node, once.
func (b *Broker) checkAssignment(as []kmsg.CreateTopicsRequestTopicReplicaAssignment) error {
	for i, a := range as {
		if a.Partition != int32(i) {
			return fmt.Errorf("assignment for partition %d given out of order (expected %d)", a.Partition, i)
		}
		if len(a.Replicas) != 1 || a.Replicas[0] != b.cfg.NodeID {
			return fmt.Errorf("partition %d: replicas %v; this cluster has only broker %d", a.Partition, a.Replicas, b.cfg.NodeID)
		}
	}
	return nil
}

func (b *Broker) validateNewTopic(name string, partitions int32, rf int16, configs map[string]string) error {
	st := b.meta.Snapshot()
	if _, err := createWithinLimits(st, name, partitions, rf, configs, b.maxPartitions()); err != nil {
		return err
	}
	_, err := b.cfg.TopicConfig(configs)
	return err
}

// createTopic creates a topic with the default replication factor; used by
// auto-creation.
func (b *Broker) createTopic(name string, partitions int32, configs map[string]string) (*topic, error) {
	return b.createTopicRF(name, partitions, int16(b.cfg.DefaultReplicationFactor), configs)
}

// createTopicRF records the topic in the metadata, then opens its partitions.
func (b *Broker) createTopicRF(name string, partitions int32, rf int16, configs map[string]string) (*topic, error) {
	if _, err := b.cfg.TopicConfig(configs); err != nil {
		return nil, err
	}
	limit := b.maxPartitions()
	if isInternalTopic(name) {
		// Only the broker creates internal topics (clients are refused in
		// handleCreateTopics) and offsets.topic.num.partitions bounds them;
		// a broker full of user partitions must still serve groups.
		limit = math.MaxInt64
	}
	mt, err := b.meta.Apply(func(s *controller.State) (*controller.Topic, error) {
		return createWithinLimits(s, name, partitions, rf, configs, limit)
	})
	if err != nil {
		return nil, err
	}
	t, err := b.topics.open(mt)
	if err != nil {
		b.undoCreate(mt, err)
		return nil, err
	}
	b.logger.Info("topic created", "topic", name, "partitions", partitions, "topic_id", mt.ID.String(), "configs", configs)
	return t, nil
}

func init() {
	register(api{key: kmsg.CreateTopics, min: 0, max: 7,
		handle: method((*Broker).handleCreateTopics),
		errorCodes: codes(func(r *kmsg.CreateTopicsResponse, count func(int16)) {
			for _, t := range r.Topics {
				count(t.ErrorCode)
			}
		}),
	})
}
