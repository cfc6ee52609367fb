package broker

import (
	"github.com/sluice-io/sluice/config"
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

// replicationThrottles are the two directions' rates.
type replicationThrottles struct {
	leader, follower *quota.Rate
}

func newReplicationThrottles(c *config.Broker) replicationThrottles {
	return replicationThrottles{leader: quota.New(c.LeaderReplicationThrottledRate), follower: quota.New(c.FollowerReplicationThrottledRate)}
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
	return b.throttles.leader.On() && throttledReplica(t.cfg.LeaderReplicationThrottledReplicas, partition, b.localID())
}

// followerThrottled reports whether this follower's fetches of a
// partition are throttled (fetcher.Config.Throttled).
func (b *Broker) followerThrottled(topic string, partition int32) bool {
	if !b.throttles.follower.On() {
		return false
	}
	t := b.topics.get(topic)
	return t != nil && throttledReplica(t.cfg.FollowerReplicationThrottledReplicas, partition, b.localID())
}
