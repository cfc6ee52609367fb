package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/coordinator"
	"github.com/sluice-io/sluice/group"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// This file connects the group coordinator (package coordinator) to the
// broker: its log is the __consumer_offsets topic, written through the same
// partition append as Produce, and its view of topics is the registry's.

// newCoordinator builds the group coordinator from the broker settings and
// replays __consumer_offsets if it exists.
func (b *Broker) newCoordinator() (*coordinator.Coordinator, error) {
	c := b.cfg
	ms := func(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
	cfg := coordinator.Config{
		Classic: group.Config{
			MinSessionTimeout:     ms(int64(c.GroupMinSessionTimeoutMs)),
			MaxSessionTimeout:     ms(int64(c.GroupMaxSessionTimeoutMs)),
			InitialRebalanceDelay: ms(int64(c.GroupInitialRebalanceDelayMs)),
			MaxSize:               int(c.GroupMaxSize),
		},
		Consumer: group.ConsumerConfig{
			SessionTimeout:    ms(int64(c.ConsumerSessionTimeoutMs)),
			HeartbeatInterval: ms(int64(c.ConsumerHeartbeatIntervalMs)),
			MaxSize:           int(c.ConsumerGroupMaxSize),
			Assignors:         c.ConsumerAssignors,
		},
		Partitions:       c.OffsetsTopicNumPartitions,
		Retention:        time.Duration(c.OffsetsRetentionMinutes) * time.Minute,
		MaxMetadataBytes: int(c.OffsetMetadataMaxBytes),
	}
	if cfg.Classic.MaxSize == int(^uint32(0)>>1) {
		cfg.Classic.MaxSize = 0 // Kafka's "no limit"
	}
	if cfg.Consumer.MaxSize == int(^uint32(0)>>1) {
		cfg.Consumer.MaxSize = 0
	}
	coord := coordinator.New(cfg, offsetsLog{b}, b.topicImage, b.clock, b.logger)
	if err := coord.Load(); err != nil {
		return nil, err
	}
	return coord, nil
}

// offsetsCommitTimeout is how long a group's write waits for the offsets
// partition's followers (Kafka's offsets.commit.timeout.ms default).
const offsetsCommitTimeout = 5 * time.Second

// offsetsTopicConfigs are the settings Kafka gives __consumer_offsets: it is
// compacted (never deleted by age or size) with 100 MiB segments.
var offsetsTopicConfigs = map[string]string{
	"cleanup.policy": "compact",
	"segment.bytes":  strconv.Itoa(100 << 20),
}

// createOffsetsTopic creates __consumer_offsets if it does not exist.
func (b *Broker) createOffsetsTopic(partitions int32) (*topic, error) {
	if t := b.topics.get(coordinator.OffsetsTopic); t != nil {
		return t, nil
	}
	// Capped at the brokers the cluster has, so a single node (or a
	// cluster some of whose brokers never registered) can create it; but
	// not created with fewer replicas than that while registered brokers
	// are fenced, as a cluster still starting has them: the topic would
	// keep its lower replication factor for good. Kafka refuses too
	// (KIP-115); clients retry COORDINATOR_NOT_AVAILABLE.
	img := b.metaImage()
	rf := int16(min(int(b.cfg.OffsetsTopicReplicationFactor), max(img.RegisteredBrokerCount(), 1)))
	if live := img.LiveBrokerCount(); live < int(rf) && img.RegisteredBrokerCount() > 1 {
		return nil, fmt.Errorf("%w: %s needs %d live brokers for its replication factor, %d are live now",
			kerr.CoordinatorNotAvailable, coordinator.OffsetsTopic, rf, live)
	}
	if fw, ok := b.meta.(brokerForwarder); ok && !b.isActiveQuorumController() {
		return b.forwardCreateOffsetsTopic(fw, partitions, rf)
	}
	t, err := b.createTopicRF(coordinator.OffsetsTopic, partitions, rf, offsetsTopicConfigs)
	if errors.Is(err, controller.ErrTopicExists) {
		if t = b.topics.get(coordinator.OffsetsTopic); t != nil {
			return t, nil
		}
	}
	return t, err
}

// brokerForwarder sends a request the broker makes on its own behalf to a
// controller elsewhere (an Envelope).
type brokerForwarder interface {
	ForwardAsBroker(ctx context.Context, req kmsg.Request) (kmsg.Response, error)
}

// forwardCreateOffsetsTopic has the controller create __consumer_offsets
// for a broker that is not the controller.
func (b *Broker) forwardCreateOffsetsTopic(fw brokerForwarder, partitions int32, rf int16) (*topic, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version, req.TimeoutMillis = 7, 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = coordinator.OffsetsTopic, partitions, rf
	for k, v := range offsetsTopicConfigs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := fw.ForwardAsBroker(context.Background(), req)
	if err != nil {
		return nil, err
	}
	r := resp.(*kmsg.CreateTopicsResponse)
	if len(r.Topics) == 1 && r.Topics[0].ErrorCode != 0 && r.Topics[0].ErrorCode != kerr.TopicAlreadyExists.Code {
		return nil, fmt.Errorf("creating %s through the controller: %w", coordinator.OffsetsTopic, kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}
	// The copy holds the topic now; make sure the replicas (and the
	// topic view) have it too before looking, whoever applies it first.
	b.applyImage()
	if t := b.topics.get(coordinator.OffsetsTopic); t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("%s was created but is not in this node's metadata yet: %w", coordinator.OffsetsTopic, kerr.CoordinatorNotAvailable)
}

// offsetsLog is the coordinator's Log over the __consumer_offsets topic.
type offsetsLog struct{ b *Broker }

// Leads reports whether this node leads partition p of the offsets topic.
func (l offsetsLog) Leads(p int32) bool {
	_, err := l.b.topics.get(coordinator.OffsetsTopic).leader(p)
	return err == nil
}

func (l offsetsLog) Open(create bool, partitions int32) (int32, error) {
	if t := l.b.topics.get(coordinator.OffsetsTopic); t != nil {
		return int32(len(t.parts)), nil
	}
	if !create {
		return 0, nil
	}
	t, err := l.b.createOffsetsTopic(partitions)
	if err != nil {
		return 0, err
	}
	return int32(len(t.parts)), nil
}

// Append writes the records as one batch through the partition's append,
// exactly as a produce with acks=all would (on one node, that is once the
// batch is in the log).
func (l offsetsLog) Append(partition int32, records []coordinator.Record) error {
	p, err := l.b.topics.get(coordinator.OffsetsTopic).leader(partition)
	if err != nil {
		return fmt.Errorf("%w: %s partition %d is not led here: %v", kerr.NotLeaderForPartition, coordinator.OffsetsTopic, partition, err)
	}
	kvs := make([]segment.KV, len(records))
	for i, r := range records {
		kvs[i] = segment.KV{Key: r.Key, Value: r.Value}
	}
	batch, err := segment.BuildBatch(kvs, l.b.now().UnixMilli())
	repl := l.b.topics.get(coordinator.OffsetsTopic).replication(partition)
	if err == nil && repl != nil {
		err = repl.CheckAppend(-1)
	}
	var res replica.AppendResult
	if err == nil {
		res, err = p.Append(batch)
		// Even a failed append may have moved HW (a write whose fsync
		// failed): fetches of __consumer_offsets must see it, as after a
		// produce.
		l.b.wakeFetches(coordinator.OffsetsTopic, partition)
	}
	if err == nil && repl != nil {
		// acks=all: answered once the followers in the ISR have it.
		repl.Appended(p.LogEndOffset())
		var sp kmsg.ProduceResponseTopicPartition
		l.b.waitForAcks([]pendingAck{{key: sessionKey{coordinator.OffsetsTopic, partition}, sp: &sp, repl: repl, required: res.LastOffset + 1}}, offsetsCommitTimeout)
		err = kerr.ErrorForCode(sp.ErrorCode)
	}
	if err != nil {
		// Through the broker's one error mapping, so the coordinator
		// sees the Kafka error a producer would have seen.
		return fmt.Errorf("%w: %s-%d: %v", kerr.ErrorForCode(errorCode(err)), coordinator.OffsetsTopic, partition, err)
	}
	return nil
}

// Replay reads a partition from its log start to its high watermark.
func (l offsetsLog) Replay(partition int32, fn func(coordinator.Record) error) error {
	t := l.b.topics.get(coordinator.OffsetsTopic)
	if t == nil || t.partition(partition) == nil {
		return fmt.Errorf("%s partition %d is not online", coordinator.OffsetsTopic, partition)
	}
	p := t.partition(partition)
	// A new leader replays its whole log: what it holds beyond the high
	// watermark is the partition's from now on (followers truncate to it).
	next, end := p.LogStartOffset(), p.HighWatermark()
	read := p.Read
	if t.replication(partition) != nil {
		end, read = p.LogEndOffset(), p.ReadForFollower
	}
	return coordinator.ReplayPartition(read, next, end, fn)
}

// topicImage returns the coordinator's view of the topics, rebuilt only when
// the registry changed.
func (b *Broker) topicImage() *group.TopicImage {
	v := b.replicas.Version()
	b.imageMu.Lock()
	defer b.imageMu.Unlock()
	if b.image != nil && b.image.Version == v {
		return b.image
	}
	im := &group.TopicImage{Version: v, Topics: map[string]group.TopicMeta{}}
	for _, t := range b.topics.all() {
		im.Topics[t.name] = group.TopicMeta{Name: t.name, ID: [16]byte(t.id), Partitions: int32(len(t.parts))}
	}
	b.image = im
	return im
}

// imageCache holds the last topic image; embedded in Broker.
type imageCache struct {
	imageMu sync.Mutex
	image   *group.TopicImage
}

// clientHost formats a peer address as Kafka reports client hosts.
func clientHost(addr string) string {
	if addr == "" {
		return ""
	}
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	return "/" + host
}
