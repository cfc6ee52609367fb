package broker

import (
	"net"
	"strconv"
	"time"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/fetcher"
	"github.com/sluice-io/sluice/replica"
)

// This node's follower replicas copy their leaders through the replica
// fetcher (package fetcher), which the replica manager points at each
// partition's leader as the metadata says; this file gives it the
// leaders' inter-broker addresses and this broker's epoch.

// newFetcher builds the replica fetcher from the replica.fetch.* settings.
func (b *Broker) newFetcher() *fetcher.Manager {
	c := b.cfg
	return fetcher.New(fetcher.Config{
		NodeID:           c.NodeID,
		BrokerEpoch:      b.brokerEpoch,
		MaxWait:          time.Duration(c.ReplicaFetchWaitMaxMs) * time.Millisecond,
		MinBytes:         c.ReplicaFetchMinBytes,
		MaxBytes:         c.ReplicaFetchMaxBytes,
		ResponseMaxBytes: c.ReplicaFetchResponseMaxBytes,
		Backoff:          time.Duration(c.ReplicaFetchBackoffMs) * time.Millisecond,
		NumFetchers:      int(c.NumReplicaFetchers),
		Clock:            b.clock,
		Logger:           b.logger.With("component", "replica-fetcher"),
		// Consumers reading this follower (KIP-392) wake as its high
		// watermark advances.
		OnHighWatermark: b.wakeFetches,
		Throttle:        b.throttles.follower,
		Throttled:       b.followerThrottled,
	})
}

// brokerEpoch is this broker's registration epoch, as its fetches carry it.
func (b *Broker) brokerEpoch() int64 {
	if br, ok := b.metaImage().Broker(b.localID()); ok {
		return br.Epoch
	}
	return -1
}

// followers is the replica manager's view of the fetcher.
type followers struct{ b *Broker }

func (f followers) Follow(topic string, id controller.TopicID, partition int32, r *replica.Partition, leader, leaderEpoch int32) {
	addr, ok := f.b.interBrokerAddr(leader)
	p := fetcher.Partition{Topic: topic, TopicID: id, Index: partition}
	if !ok {
		f.b.logger.Warn("cannot follow a partition: its leader has no endpoint on the inter-broker listener",
			"topic", topic, "partition", partition, "leader", leader, "listener", f.b.interBrokerListenerName())
		f.b.fetcher.Unfollow(p)
		return
	}
	f.b.fetcher.Follow(p, r, fetcher.Leader{ID: leader, Addr: addr}, leaderEpoch)
}

func (f followers) Unfollow(topic string, partition int32) {
	f.b.fetcher.Unfollow(fetcher.Partition{Topic: topic, Index: partition})
}

// interBrokerListenerName is the listener brokers reach each other on.
func (b *Broker) interBrokerListenerName() string {
	if l, ok := b.cfg.InterBrokerListener(); ok {
		return l.Name
	}
	return b.cfg.AdvertisedListeners[0].Name
}

// interBrokerAddr is broker id's host:port on the inter-broker listener.
func (b *Broker) interBrokerAddr(id int32) (string, bool) {
	br, ok := b.metaImage().Broker(id)
	if !ok {
		return "", false
	}
	e, ok := br.Endpoint(b.interBrokerListenerName())
	if !ok {
		return "", false
	}
	return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port))), true
}
