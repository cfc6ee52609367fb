package replicamgr

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/replica"
)

// Giving the replicas of an image their roles. When a broker of three
// dies, each of the two left takes over the leadership of about 3,300 of
// 10,000 partitions in one image, and each BecomeLeader writes the
// replica's leader-epoch checkpoint durably (a file and a directory
// fsync), as Kafka does when it assigns an epoch (KAFKA-16541): one after
// another, the takeover took seconds. So the role changes of one image
// run in three steps (giveRoles):
//
//  1. On the calling goroutine, partition by partition (stopRole): a
//     partition whose role, epoch and replica are unchanged only takes
//     the image's news (ISR, brokers, the leader to fetch from). For the
//     others, the leadership the replica had ends (its Replication is
//     closed: a produce waiting on it gets NOT_LEADER_OR_FOLLOWER, no
//     proposal is sent any more) and the fetcher stops copying into it,
//     before its role changes: a replica is never appended to by a
//     fetcher once it leads, nor truncated by one of an older epoch.
//  2. The replicas' own role changes (BecomeLeader with its checkpoint
//     write, BecomeFollower) run on ioWorkers goroutines (changeRole).
//     They touch the replica alone, nothing of the manager's: not its
//     maps, not the fetcher, not the Replications.
//  3. On the calling goroutine again, in topic and partition order
//     (startRole): leaders start their Replication and followers are
//     handed to the fetcher, which starts copying only into a replica
//     already following in the epoch. A replica whose role change failed
//     is closed and its partition taken offline (KAFKA_STORAGE_ERROR,
//     until the broker restarts), alone: the other partitions of its
//     topic take their roles.
//
// Topics are published (finishTopic) only after step 3, in the order of
// the image, so Changes lists them as before.

// roleChange is one partition whose replica changes role, epoch or
// replica in this image.
type roleChange struct {
	mt     *controller.Topic
	mp     controller.Partition
	minISR int
	np     *Partition // in the Topic being built, not published yet
	// err is why the replica could not take its role; it is closed
	// then.
	err error
}

// giveRoles gives every partition of plans the role the image gives it,
// in the three steps above. admin is held.
func (m *Manager) giveRoles(plans []*topicPlan) {
	var changes []roleChange
	for _, p := range plans {
		for i := range p.t.Partitions {
			np, mp := &p.t.Partitions[i], p.mt.Partitions[i]
			if m.stopRole(m.image, p.mt, mp, p.prev(i), np) {
				changes = append(changes, roleChange{mt: p.mt, mp: mp, minISR: p.cfg.MinInsyncReplicas, np: np})
			}
		}
	}
	forEachOn(len(changes), m.roleWorkers, func(i int) { m.changeRole(&changes[i]) })
	for i := range changes {
		m.startRole(m.image, &changes[i])
	}
}

// stopRole applies the image to a partition whose role, epoch and replica
// are unchanged and reports false; otherwise it ends the leadership and
// the following that prev had and reports whether np's replica has a role
// to take (it is hosted and open).
func (m *Manager) stopRole(img *controller.Image, mt *controller.Topic, mp controller.Partition, prev, np *Partition) bool {
	if prev != nil && prev.Role == np.Role && prev.LeaderEpoch == np.LeaderEpoch && prev.Replica == np.Replica {
		np.Repl = prev.Repl
		if np.Repl != nil {
			np.Repl.update(img, mp)
		}
		// An offline follower has no replica to copy into.
		if np.Role == Follower && np.Replica != nil && m.followers != nil && prev.followedLeader != mp.Leader {
			m.follow(mt, mp, np)
		}
		np.followedLeader = mp.Leader
		return false
	}
	if prev != nil {
		if prev.Repl != nil {
			prev.Repl.close()
		}
		if prev.Role == Follower && m.followers != nil {
			m.followers.Unfollow(mt.Name, mp.Index)
		}
	}
	return np.Replica != nil && np.Role != NotHosted
}

// changeRole makes c's replica leader or follower in the image's leader
// epoch; a replica that cannot be is closed. It runs on the ioWorkers
// pool, so it touches the replica alone.
func (m *Manager) changeRole(c *roleChange) {
	r := c.np.Replica
	if c.np.Role == Leader {
		c.err = r.BecomeLeader(c.mp.LeaderEpoch)
		if c.err == nil {
			r.SetAutoHighWatermark(!replicated(c.mp))
		}
	} else {
		c.err = r.BecomeFollower(c.mp.LeaderEpoch)
	}
	if c.err != nil {
		if err := r.Close(); err != nil {
			m.logger.Error("closing a partition that could not take its role", "topic", c.mt.Name, "partition", c.mp.Index, "err", err)
		}
	}
}

// startRole starts what the replica's new role needs once changeRole
// made it: a leader's Replication, a follower's fetching. A replica that
// failed to take its role leaves its partition offline.
func (m *Manager) startRole(img *controller.Image, c *roleChange) {
	np := c.np
	if c.err == nil && np.Role == Leader && replicated(c.mp) {
		if np.Repl, c.err = m.newReplication(img, c.mt, c.mp, c.minISR, np.Replica); c.err != nil {
			m.closeAll([]*replica.Partition{np.Replica}, "closing a partition that could not take its role")
		}
	}
	if c.err != nil {
		m.logger.Error("partition offline: its replica could not take its role and is closed; clients get KAFKA_STORAGE_ERROR until the broker is restarted",
			"topic", c.mt.Name, "partition", c.mp.Index, "role", np.Role, "leaderEpoch", c.mp.LeaderEpoch, "err", c.err)
		np.Offline = fmt.Errorf("%w: %s partition %d is offline: taking its role: %w", kerr.KafkaStorageError, c.mt.Name, c.mp.Index, c.err)
		np.Replica, np.Repl = nil, nil
		return
	}
	if np.Role == Follower {
		np.followedLeader = c.mp.Leader
		if m.followers != nil {
			m.follow(c.mt, c.mp, np)
		}
	}
}

// follow points the fetcher at the partition's leader, or stops it while
// the partition has none.
func (m *Manager) follow(mt *controller.Topic, mp controller.Partition, np *Partition) {
	if mp.Leader == controller.NoLeader {
		m.followers.Unfollow(mt.Name, mp.Index)
		return
	}
	m.followers.Follow(mt.Name, mt.ID, mp.Index, np.Replica, mp.Leader, mp.LeaderEpoch)
}
