package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/purgatory"
	"github.com/sluice-io/sluice/replicamgr"
)

// acks=all on a replicated partition: the batch is in the leader's log,
// and the answer waits in the produce purgatory until the high watermark
// covers it (Kafka's DelayedProduce). A partition with one replica has
// HW = LEO at the append, so it never waits.

// producePurgatory holds acks=all produces waiting for replication,
// watching their partitions.
type producePurgatory = purgatory.Purgatory[sessionKey]

// replication is partition i's leader-side replication state, nil when it
// has one replica or is not led here.
func (t *topic) replication(i int32) *replicamgr.Replication {
	if t == nil || i < 0 || int(i) >= len(t.rt.Partitions) {
		return nil
	}
	return t.rt.Partitions[i].Repl
}

// pendingAck is one partition of an acks=all produce that waits for the
// high watermark to reach required (its last offset + 1).
type pendingAck struct {
	key      sessionKey
	ti, pi   int // the answer's topic and partition index in the response
	sp       *kmsg.ProduceResponseTopicPartition
	repl     *replicamgr.Replication
	required int64
	done     bool
}

// delayedProduce is a produce parked in the purgatory.
type delayedProduce struct {
	acks []pendingAck
	done chan struct{}
}

// tryComplete checks every waiting partition (under the operation's lock)
// and completes once all are done, as DelayedProduce.tryComplete does.
func (d *delayedProduce) tryComplete() bool {
	all := true
	for i := range d.acks {
		a := &d.acks[i]
		if a.done {
			continue
		}
		ok, err := a.repl.CheckEnoughReplicasReachOffset(a.required)
		if !ok {
			all = false
			continue
		}
		a.done = true
		if err != nil {
			a.sp.ErrorCode = errorCode(err)
		}
	}
	return all
}

// waitForAcks parks the produce until every partition's high watermark
// reached its batch or timeout passes; partitions not replicated by then
// answer REQUEST_TIMED_OUT (the records stay in the log, as in Kafka).
func (b *Broker) waitForAcks(acks []pendingAck, timeout time.Duration) {
	d := &delayedProduce{acks: acks, done: make(chan struct{})}
	keys := make([]sessionKey, len(acks))
	for i := range acks {
		keys[i] = acks[i].key
	}
	op := purgatory.NewOp(d.tryComplete, func(bool) { close(d.done) })
	if !b.produceWaits.TryCompleteElseWatch(op, timeout, keys) {
		select {
		case <-d.done:
		case <-b.stop:
			op.ForceComplete()
			<-d.done
		}
	}
	for i := range d.acks {
		if a := &d.acks[i]; !a.done {
			a.sp.ErrorCode = kerr.RequestTimedOut.Code
		}
	}
}

// onHighWatermark is the replica manager telling that a partition's high
// watermark advanced: acks=all produces and fetches waiting on it look.
func (b *Broker) onHighWatermark(topic string, partition int32) {
	b.produceWaits.Check(sessionKey{topic, partition})
	b.wakeFetches(topic, partition)
}
