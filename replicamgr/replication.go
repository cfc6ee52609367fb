package replicamgr

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/replica"
)

// The leader side of replication: a partition with more than one replica
// that this node leads has a Replication, which runs the isr package's
// Leader (follower positions, high watermark, ISR changes) under a lock
// and does what it asks: moves the replica's high watermark, tells the
// broker so waiting produces and fetches can finish, and sends its
// AlterPartition proposals to the controller through Deps.AlterPartition.

// Replication is the leader-side replication state of one partition.
type Replication struct {
	m       *Manager
	topic   string
	topicID controller.TopicID
	index   int32
	r       *replica.Partition

	mu      sync.Mutex
	leader  *isr.Leader
	sending bool // a proposal is out; answers come back through handleAlter
	// next is the proposal the leader handed out while another was out
	// (newer metadata replaced the one in flight, and a fetch led to
	// another): sent when the one out returns, if still the leader's.
	next   *isr.Proposal
	closed bool // leadership ended: drop answers and outputs
}

// nowMs is the manager's clock in milliseconds, as the isr package takes it.
func (m *Manager) nowMs() int64 { return m.now().UnixMilli() }

// replicated reports whether a partition's replicas need the isr machinery:
// a single replica keeps the single-node rule (HW = LEO at each append).
func replicated(mp controller.Partition) bool { return len(mp.Replicas) > 1 }

// isrBrokers is what the leader needs of the image's brokers.
func isrBrokers(img *controller.Image) []isr.Broker {
	var out []isr.Broker
	for _, b := range img.Brokers() {
		out = append(out, isr.Broker{ID: b.ID, Epoch: b.Epoch, Fenced: b.Fenced, ShuttingDown: b.InControlledShutdown})
	}
	return out
}

func brokerEpoch(img *controller.Image, id int32) int64 {
	if b, ok := img.Broker(id); ok {
		return b.Epoch
	}
	return -1
}

// newReplication starts leading mp in its leader epoch; r has already
// cached the epoch's start (BecomeLeader).
func (m *Manager) newReplication(img *controller.Image, mt *controller.Topic, mp controller.Partition, minISR int, r *replica.Partition) (*Replication, error) {
	l, err := isr.NewLeader(isr.LeaderConfig{
		ID:               m.nodeID,
		BrokerEpoch:      brokerEpoch(img, m.nodeID),
		LeaderEpoch:      mp.LeaderEpoch,
		PartitionEpoch:   mp.PartitionEpoch,
		Replicas:         mp.Replicas,
		ISR:              mp.ISR,
		Brokers:          isrBrokers(img),
		MinISR:           max(minISR, 1),
		LagTimeMaxMs:     m.cfg.ReplicaLagTimeMaxMs,
		EpochStartOffset: r.LeaderEpochStartOffset(),
		HighWatermark:    r.HighWatermark(),
		LogEndOffset:     r.LogEndOffset(),
	}, m.nowMs())
	if err != nil {
		return nil, err
	}
	rp := &Replication{m: m, topic: mt.Name, topicID: mt.ID, index: mp.Index, r: r, leader: l}
	rp.mu.Lock()
	rp.drainLocked()
	rp.mu.Unlock()
	return rp, nil
}

// update applies a newer image's state of the partition in the same leader
// epoch (an ISR change the controller committed, brokers fenced or back).
func (rp *Replication) update(img *controller.Image, mp controller.Partition) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	now := rp.m.nowMs()
	rp.leader.SetBrokers(isrBrokers(img), now)
	_, err := rp.leader.ApplyPartition(isr.PartitionState{Leader: mp.Leader, LeaderEpoch: mp.LeaderEpoch,
		PartitionEpoch: mp.PartitionEpoch, Replicas: mp.Replicas, ISR: mp.ISR}, now)
	if err != nil {
		rp.m.logger.Warn("applying a partition change to its leader", "topic", rp.topic, "partition", rp.index, "err", err)
	}
	rp.drainLocked()
}

// close ends this leadership: later answers and ticks do nothing.
func (rp *Replication) close() {
	rp.mu.Lock()
	rp.closed = true
	rp.mu.Unlock()
}

// FollowerFetch records a follower's fetch before the read (Kafka's
// updateFollowerFetchState) and returns the DivergingEpoch to answer with
// instead of records, or the fetch's error.
func (rp *Replication) FollowerFetch(f isr.FollowerFetch) (*isr.EpochEndOffset, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	d, err := rp.leader.Fetch(f, rp.r.OffsetForLeaderEpoch, rp.m.nowMs())
	rp.drainLocked()
	return d, err
}

// Appended tells the leader its log grew to leo (after a produce).
func (rp *Replication) Appended(leo int64) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.leader.Append(leo, rp.m.nowMs())
	rp.drainLocked()
}

// CheckAppend is the acks check before an append: NOT_ENOUGH_REPLICAS
// when acks=all and the ISR is below min.insync.replicas.
func (rp *Replication) CheckAppend(acks int16) error {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.leader.CheckAppend(acks)
}

// CheckEnoughReplicasReachOffset is the acks=all completion check: done
// once the high watermark reached requiredOffset, with
// NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below
// min.insync.replicas meanwhile.
func (rp *Replication) CheckEnoughReplicasReachOffset(requiredOffset int64) (bool, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.closed {
		return true, fmt.Errorf("%s partition %d: leadership moved while the produce waited: %w", rp.topic, rp.index, kerr.NotLeaderForPartition)
	}
	return rp.leader.CheckEnoughReplicasReachOffset(requiredOffset)
}

// Stats reports the leader's replication facts for metrics.
func (rp *Replication) Stats() isr.Stats {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.leader.Stats()
}

// tick runs the ISR expiry check.
func (rp *Replication) tick() {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.closed {
		return
	}
	rp.leader.Tick(rp.m.nowMs())
	rp.drainLocked()
}

// drainLocked acts on the leader's outputs: the high watermark into the
// replica (and the broker told), a proposal sent.
func (rp *Replication) drainLocked() {
	if rp.closed {
		return
	}
	rd := rp.leader.Ready()
	if rd.HighWatermarkAdvanced {
		if _, err := rp.r.SetHighWatermark(rd.HighWatermark); err != nil {
			rp.m.logger.Error("setting the high watermark", "topic", rp.topic, "partition", rp.index, "hw", rd.HighWatermark, "err", err)
		} else {
			// Told from another goroutine: what waits on the HW
			// (a produce's check, a fetch's read) takes rp.mu, and
			// this may run inside a fetch's purgatory check.
			rp.m.hw.notify(TopicPartition{rp.topic, rp.index})
		}
	}
	if rd.Proposal != nil {
		rp.next = rd.Proposal
	}
	// The leader hands out each proposal once: one made while another
	// is out waits in next, or it would never be sent and the leader,
	// which proposes nothing new while one is pending, would stay stuck
	// with it (a follower never rejoining the ISR).
	if rp.next == nil || rp.sending || rp.m.alter == nil {
		return
	}
	p := *rp.next
	rp.next = nil
	if cur, ok := rp.leader.Pending(); ok && cur.ID == p.ID {
		rp.sending = true
		go rp.send(p)
	}
}

// alterTimeout bounds one AlterPartition round trip; alterRetryBackoff
// spaces the attempts after a failed one.
const (
	alterTimeout      = 30 * time.Second
	alterRetryBackoff = 250 * time.Millisecond
)

// send delivers a proposal to the controller and feeds the answer back.
func (rp *Replication) send(p isr.Proposal) {
	ctx, cancel := context.WithTimeout(context.Background(), alterTimeout)
	res := rp.m.alter(ctx, rp.topicID, rp.index, p)
	cancel()
	if res.Err != nil {
		// A refused or undelivered proposal may be sent again at once
		// (the leader says Retry): not faster than this, or a
		// controller that is down gets a tight loop of attempts.
		time.Sleep(alterRetryBackoff)
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.sending = false
	if rp.closed {
		return
	}
	out := rp.leader.HandleAlterPartition(p.ID, res, rp.m.nowMs())
	if res.Err != nil {
		rp.m.logger.Info("AlterPartition not committed", "topic", rp.topic, "partition", rp.index, "isr", p.ISR, "outcome", out, "err", res.Err)
	}
	rp.drainLocked()
}

// tickReplications runs every leader's ISR check (Kafka's isr-expiration
// task, every replica.lag.time.max.ms/2).
func (m *Manager) tickReplications() {
	for _, t := range m.Topics() {
		for i := range t.Partitions {
			if rp := t.Partitions[i].Repl; rp != nil {
				rp.tick()
			}
		}
	}
}

// hwNotifier tells the broker, from its own goroutine, which partitions'
// high watermarks advanced; several advances of one partition before it
// runs are told once.
type hwNotifier struct {
	fn        func(topic string, partition int32)
	mu        sync.Mutex
	pending   map[TopicPartition]struct{}
	wake      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newHWNotifier(fn func(string, int32)) *hwNotifier {
	n := &hwNotifier{fn: fn, pending: map[TopicPartition]struct{}{}, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go n.run()
	return n
}

func (n *hwNotifier) notify(tp TopicPartition) {
	if n.fn == nil {
		return
	}
	n.mu.Lock()
	n.pending[tp] = struct{}{}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *hwNotifier) run() {
	defer close(n.done)
	for {
		select {
		case <-n.stop:
			return
		case <-n.wake:
		}
		n.mu.Lock()
		batch := n.pending
		n.pending = map[TopicPartition]struct{}{}
		n.mu.Unlock()
		for tp := range batch {
			n.fn(tp.Topic, tp.Partition)
		}
	}
}

// close stops the goroutine; closing twice is harmless (Close may run
// more than once).
func (n *hwNotifier) close() {
	n.closeOnce.Do(func() { close(n.stop) })
	<-n.done
}

// checkpointHighWatermarks writes the high watermark of every replicated
// replica (replica.high.watermark.checkpoint.interval.ms), so a restarted
// follower starts from it rather than from its log end.
func (m *Manager) checkpointHighWatermarks() {
	m.eachReplica(func(t *Topic, p *replica.Partition) {
		if err := p.CheckpointHighWatermark(); err != nil && !errors.Is(err, replica.ErrClosed) {
			m.logger.Warn("high watermark checkpoint", "topic", t.Name, "partition", p.Index(), "err", err)
		}
	})
}
