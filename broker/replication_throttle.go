package broker

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/quota"
)

// Replication throttles, as Kafka's: leader.replication.throttled.rate
// bounds the bytes this broker serves, as a leader, to followers of the
// replicas its topics list in leader.replication.throttled.replicas (with
// this broker's id, or *); follower.replication.throttled.rate bounds the
// bytes it fetches, as a follower, for the replicas listed in
// follower.replication.throttled.replicas. Reassignments set them (sluice
// partitions reassign --throttle, as kafka-reassign-partitions does) so
// that moving a partition does not starve producers and consumers. A
// throttled partition whose rate is used up is answered, or fetched,
// without records until the rate allows more; a batch is never split.
//
// Both rates are dynamic broker settings, as in Kafka: set for this broker
// or cluster-wide in the metadata (alterBrokerConfigs), they beat the
// properties file. Every throttle decision first brings the rates up to
// the metadata image it sees (syncDynamicConfigs), so a change reaches a
// running broker with the next fetch, whichever way the image arrived.

// replicationThrottles are the two directions' rates.
type replicationThrottles struct {
	leader, follower *quota.Rate
	applied          *appliedImage
}

// appliedImage is the metadata image whose dynamic settings the rates
// hold; mu orders the changes so an older image never wins.
type appliedImage struct {
	mu  sync.Mutex
	img atomic.Pointer[controller.Image]
}

func newReplicationThrottles(c *config.Broker) replicationThrottles {
	return replicationThrottles{leader: quota.New(c.LeaderReplicationThrottledRate), follower: quota.New(c.FollowerReplicationThrottledRate),
		applied: &appliedImage{}}
}

// The dynamic settings the broker applies.
const (
	leaderThrottledRate   = "leader.replication.throttled.rate"
	followerThrottledRate = "follower.replication.throttled.rate"
)

// dynamicConfigs are this broker's dynamic settings in img.
func (b *Broker) dynamicConfigs(img *controller.Image) config.Dynamic {
	return config.Dynamic{PerBroker: img.BrokerConfigs(strconv.Itoa(int(b.localID()))), ClusterDefault: img.BrokerConfigs("")}
}

// syncDynamicConfigs gives the throttles the rates of the current
// metadata image, once per image: cheap enough for every fetch.
func (b *Broker) syncDynamicConfigs() {
	a := b.throttles.applied
	if a.img.Load() == b.metaImage() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	img := b.metaImage() // the newest, read under mu: images only move forward
	if a.img.Load() == img {
		return
	}
	d := b.dynamicConfigs(img)
	for _, r := range []struct {
		name   string
		rate   *quota.Rate
		static int64
	}{
		{leaderThrottledRate, b.throttles.leader, b.cfg.LeaderReplicationThrottledRate},
		{followerThrottledRate, b.throttles.follower, b.cfg.FollowerReplicationThrottledRate},
	} {
		if limit := d.Int(r.name, r.static); limit != r.rate.Limit() {
			r.rate.SetLimit(limit)
			b.logger.Info("replication throttle changed", "setting", r.name, "bytes_per_second", limit)
		}
	}
	a.img.Store(img)
}

// throttledReplica reports whether list (a topic's throttled-replicas
// setting) names partition's replica on broker.
func throttledReplica(list string, partition, broker int32) bool {
	if list == "" {
		return false
	}
	r, err := config.ParseThrottledReplicas(list)
	return err == nil && r.Has(partition, broker)
}

// leaderThrottled reports whether follower fetches of t's partition are
// throttled on this leader.
func (b *Broker) leaderThrottled(t *topic, partition int32) bool {
	b.syncDynamicConfigs()
	return b.throttles.leader.On() && throttledReplica(t.cfg.LeaderReplicationThrottledReplicas, partition, b.localID())
}

// followerThrottled reports whether this follower's fetches of a
// partition are throttled (fetcher.Config.Throttled).
func (b *Broker) followerThrottled(topic string, partition int32) bool {
	b.syncDynamicConfigs()
	if !b.throttles.follower.On() {
		return false
	}
	t := b.topics.get(topic)
	return t != nil && throttledReplica(t.cfg.FollowerReplicationThrottledReplicas, partition, b.localID())
}
