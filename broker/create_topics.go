package broker

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/netio"
)

// createTopics answers CreateTopics; byBroker allows the internal topics,
// which only a broker creates (its own or one forwarded in an Envelope).
func (b *Broker) createTopics(req *kmsg.CreateTopicsRequest, byBroker bool) *kmsg.CreateTopicsResponse {
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
		if err := clientMayCreate(rt.Topic); err != nil && !(byBroker && isInternalTopic(rt.Topic)) {
			b.logRefusal("CreateTopics", rt.Topic, err)
			fail(errorCode(err), err)
			continue
		}
		partitions, rf := rt.NumPartitions, rt.ReplicationFactor
		var assignment [][]int32
		if len(rt.ReplicaAssignment) > 0 {
			if partitions != -1 || rf != -1 {
				fail(kerr.InvalidRequest.Code, fmt.Errorf("give either a replica assignment or partitions and replication factor, not both"))
				continue
			}
			var err error
			if assignment, err = checkAssignment(b.metaImage(), rt.ReplicaAssignment); err != nil {
				fail(kerr.InvalidReplicaAssignment.Code, err)
				continue
			}
			partitions = int32(len(assignment))
			rf = int16(len(assignment[0]))
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
		nt := controller.NewTopic{Name: rt.Topic, Partitions: partitions, ReplicationFactor: rf, Assignment: assignment, Configs: configs}
		var err error
		if req.ValidateOnly {
			err = b.validateNewTopic(nt)
		} else {
			var t *topic
			t, err = b.createTopicWith(nt)
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

// checkAssignment accepts a manual assignment that lists the partitions in
// order, each with the same number of replicas, every one a broker the image
// knows, none twice; it returns each partition's replicas.
func checkAssignment(img *controller.Image, as []kmsg.CreateTopicsRequestTopicReplicaAssignment) ([][]int32, error) {
	out := make([][]int32, len(as))
	for i, a := range as {
		if a.Partition != int32(i) {
			return nil, fmt.Errorf("assignment for partition %d given out of order (expected %d)", a.Partition, i)
		}
		if err := checkReplicas(img, a.Partition, a.Replicas, len(as[0].Replicas)); err != nil {
			return nil, err
		}
		out[i] = a.Replicas
	}
	return out, nil
}

// checkReplicas checks one partition's manual replicas: rf of them, each a
// registered broker, none twice.
func checkReplicas(img *controller.Image, p int32, replicas []int32, rf int) error {
	if len(replicas) == 0 || len(replicas) != rf {
		return fmt.Errorf("partition %d: replicas %v; every partition needs the same number of replicas (%d), at least one", p, replicas, rf)
	}
	for j, id := range replicas {
		if _, ok := img.Broker(id); !ok {
			return fmt.Errorf("partition %d: replicas %v; broker %d is not in this cluster (brokers: %v)", p, replicas, id, brokerIDs(img))
		}
		if slices.Contains(replicas[j+1:], id) {
			return fmt.Errorf("partition %d: replicas %v name broker %d twice", p, replicas, id)
		}
	}
	return nil
}

func brokerIDs(img *controller.Image) []int32 {
	var ids []int32
	for _, br := range img.Brokers() {
		ids = append(ids, br.ID)
	}
	return ids
}

func (b *Broker) validateNewTopic(nt controller.NewTopic) error {
	nt.ID = controller.NewTopicID()
	if _, err := b.metaImage().Plan(createWithinLimits(nt, b.maxPartitions())); err != nil {
		return err
	}
	_, err := b.cfg.TopicConfig(nt.Configs)
	return err
}

// createTopic creates a topic with the default replication factor; used by
// auto-creation.
func (b *Broker) createTopic(name string, partitions int32, configs map[string]string) (*topic, error) {
	return b.createTopicRF(name, partitions, int16(b.cfg.DefaultReplicationFactor), configs)
}

// createTopicRF creates a topic whose replicas placement chooses.
func (b *Broker) createTopicRF(name string, partitions int32, rf int16, configs map[string]string) (*topic, error) {
	return b.createTopicWith(controller.NewTopic{Name: name, Partitions: partitions, ReplicationFactor: rf, Configs: configs})
}

// createTopicWith records the topic in the metadata, then opens its
// partitions.
func (b *Broker) createTopicWith(nt controller.NewTopic) (*topic, error) {
	if fw, ok := b.metaForwarder(); ok && !isInternalTopic(nt.Name) {
		return b.forwardCreateTopic(fw, nt)
	}
	if _, err := b.cfg.TopicConfig(nt.Configs); err != nil {
		return nil, err
	}
	limit := b.maxPartitions()
	if isInternalTopic(nt.Name) {
		// Only the broker creates internal topics (clients are refused in
		// handleCreateTopics) and offsets.topic.num.partitions bounds them;
		// a broker full of user partitions must still serve groups.
		limit = math.MaxInt64
	}
	nt.ID = controller.NewTopicID()
	img, err := b.meta.Commit(createWithinLimits(nt, limit))
	if err != nil {
		return nil, err
	}
	mt, _ := img.Topic(nt.Name)
	if err := b.applyImage()[nt.Name]; err != nil {
		b.undoCreate(mt, err)
		return nil, err
	}
	t := b.topics.get(nt.Name)
	if t == nil || t.id != mt.ID {
		return nil, fmt.Errorf("topic %q was deleted as it was created: %w", nt.Name, controller.ErrUnknownTopic)
	}
	b.logger.Info("topic created", "topic", nt.Name, "partitions", nt.Partitions, "topic_id", mt.ID.String(), "configs", nt.Configs)
	return t, nil
}

func init() {
	register(api{key: kmsg.CreateTopics, min: 0, max: 7, forward: true,
		handle: func(b *Broker, ctx context.Context, _ *netio.Request, req kmsg.Request) kmsg.Response {
			return b.createTopics(req.(*kmsg.CreateTopicsRequest), isFromBroker(ctx))
		},
		errorCodes: codes(func(r *kmsg.CreateTopicsResponse, count func(int16)) {
			for _, t := range r.Topics {
				count(t.ErrorCode)
			}
		}),
	})
}

// forwardCreateTopic has the controller create a topic this broker needs
// (auto-creation on Metadata) when the controller is another node.
func (b *Broker) forwardCreateTopic(fw forwarder, nt controller.NewTopic) (*topic, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version, req.TimeoutMillis = 7, 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = nt.Name, nt.Partitions, nt.ReplicationFactor
	for k, v := range nt.Configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := fw.Forward(context.Background(), req)
	if err != nil {
		return nil, err
	}
	r := resp.(*kmsg.CreateTopicsResponse)
	if len(r.Topics) != 1 {
		return nil, fmt.Errorf("creating %s through the controller: %d topics in the answer: %w", nt.Name, len(r.Topics), kerr.UnknownServerError)
	}
	if code := r.Topics[0].ErrorCode; code != 0 {
		if code == kerr.TopicAlreadyExists.Code {
			return nil, fmt.Errorf("%w: %s", controller.ErrTopicExists, nt.Name)
		}
		return nil, fmt.Errorf("creating %s through the controller: %w", nt.Name, kerr.ErrorForCode(code))
	}
	b.applyImage() // see forwardCreateOffsetsTopic
	if t := b.topics.get(nt.Name); t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("%s was created but is not in this node's metadata yet: %w", nt.Name, kerr.LeaderNotAvailable)
}
