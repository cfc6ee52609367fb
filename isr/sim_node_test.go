package isr

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// A simulated broker hosting one replica: its log, epoch cache and high
// watermark, and the volatile Leader or Follower state a crash loses. In a
// durable run a crash keeps every record, as if each append were fsynced; in
// a lossy run (Kafka's default: no fsync) it keeps the flushed prefix and a
// random part of the rest, and the broker restarts as an unclean shutdown.

// entry is one record: the epoch of the leader that wrote it and a unique id.
type entry struct {
	epoch int32
	id    int64
}

type produced struct {
	offset int64
	rec    entry
}

type node struct {
	id          int32
	alive       bool
	brokerEpoch int64
	log         []entry
	epochs      []EpochEntry
	hw          int64
	flushed     int64 // the log's prefix a lossy crash keeps

	meta     metadata // latest applied; version 0: none yet
	leader   *Leader
	follower *Follower
	waiting  []produced // acks=all produces waiting for the HW
	alterAt  int64      // when the pending AlterPartition was last sent
}

func (n *node) leo() int64 { return int64(len(n.log)) }

func (n *node) latestEpoch() int32 {
	if len(n.epochs) == 0 {
		return UndefinedEpoch
	}
	return n.epochs[len(n.epochs)-1].Epoch
}

func (n *node) local() LocalLog {
	return LocalLog{LogEndOffset: n.leo(), HighWatermark: n.hw, LatestEpoch: n.latestEpoch()}
}

func (n *node) lookup(e int32) (int32, int64) {
	r := EndOffsetFor(n.epochs, e, n.leo())
	return r.Epoch, r.EndOffset
}

// assignEpoch is LeaderEpochFileCache.assign: an entry for a new epoch drops
// any entry with an epoch or start offset at or above it.
func (n *node) assignEpoch(epoch int32, start int64) {
	if len(n.epochs) > 0 && n.epochs[len(n.epochs)-1].Epoch == epoch {
		return
	}
	for k := len(n.epochs); k > 0 && (n.epochs[k-1].Epoch >= epoch || n.epochs[k-1].StartOffset >= start); k-- {
		n.epochs = n.epochs[:k-1]
	}
	n.epochs = append(n.epochs, EpochEntry{Epoch: epoch, StartOffset: start})
}

// truncate is UnifiedLog.truncateTo: the log and epoch cache lose everything
// from offset on; the epoch cache is cut even when the log is not (an epoch
// this broker led without appending must not survive). It reports an error
// when it cuts below the replica's own high watermark: committed data.
func (n *node) truncate(offset int64) error {
	offset = min(offset, n.leo())
	var err error
	if offset < n.hw {
		err = fmt.Errorf("node %d truncated to %d below its high watermark %d", n.id, offset, n.hw)
		n.hw = offset
	}
	n.log = n.log[:offset]
	n.flushed = min(n.flushed, offset)
	n.epochs = slices.DeleteFunc(n.epochs, func(e EpochEntry) bool { return e.StartOffset >= offset })
	return err
}

func (n *node) appendRecords(recs []entry) {
	for _, r := range recs {
		if r.epoch != n.latestEpoch() {
			n.assignEpoch(r.epoch, n.leo())
		}
		n.log = append(n.log, r)
	}
}

// crash drops the volatile state; the log, epochs and HW survive up to
// keep records (the whole log when keep >= its end). Recovery cuts the
// epoch cache and HW to what is left, as Kafka's log loading does.
func (n *node) crash(keep int64) {
	if keep < n.leo() {
		n.log = n.log[:keep]
		n.epochs = slices.DeleteFunc(n.epochs, func(e EpochEntry) bool { return e.StartOffset >= keep })
		n.hw = min(n.hw, keep)
	}
	n.alive = false
	// n.meta stays: a broker keeps its metadata log and never goes back to
	// an older image after a restart.
	n.leader, n.follower, n.waiting = nil, nil, nil
}

func (n *node) stopLeading() {
	n.leader, n.waiting = nil, nil
}

// applyMeta is the broker applying a metadata image: makeLeader, a same-epoch
// ISR update, or makeFollower.
func (n *node) applyMeta(m metadata, cfg simConfig, nowMs int64) error {
	if m.version <= n.meta.version {
		return nil
	}
	n.meta = m
	p := m.part
	if p.Leader != n.id {
		n.stopLeading()
		if n.follower == nil {
			n.follower = NewFollower(p.Leader, p.LeaderEpoch, n.local())
		} else {
			n.follower.SetLeader(p.Leader, p.LeaderEpoch, n.local())
		}
		return nil
	}
	if n.leader != nil && n.leader.LeaderEpoch() == p.LeaderEpoch {
		n.leader.SetBrokers(m.brokers, nowMs)
		_, err := n.leader.ApplyPartition(p, nowMs)
		return err
	}
	n.follower = nil
	n.stopLeading()
	n.assignEpoch(p.LeaderEpoch, n.leo())
	l, err := NewLeader(LeaderConfig{
		ID: n.id, BrokerEpoch: n.brokerEpoch, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
		Replicas: p.Replicas, ISR: p.ISR, Brokers: m.brokers, MinISR: cfg.minISR, LagTimeMaxMs: cfg.lagMs,
		EpochStartOffset: n.leo(), HighWatermark: min(n.hw, n.leo()), LogEndOffset: n.leo(),
	}, nowMs)
	n.leader = l
	return err
}

// serveFetch is the leader's side of a follower fetch.
func (n *node) serveFetch(req fetchMsg, nowMs int64) fetchReply {
	rep := fetchReply{req: req.req, leaderEnd: n.leo()}
	if n.leader == nil {
		rep.resp.Err = kerr.NotLeaderForPartition
		return rep
	}
	div, err := n.leader.Fetch(FollowerFetch{
		ReplicaID: req.from, BrokerEpoch: req.brokerEpoch, CurrentLeaderEpoch: req.req.CurrentLeaderEpoch,
		FetchOffset: req.req.FetchOffset, LastFetchedEpoch: req.req.LastFetchedEpoch,
		LeaderLogEndOffset: n.leo(),
	}, n.lookup, nowMs)
	rep.resp = FetchResponse{Err: err, Diverging: div, HighWatermark: n.leader.HighWatermark()}
	if err == nil && div == nil {
		end := min(req.req.FetchOffset+8, n.leo()) // replica.fetch.max.bytes, in records
		rep.records = slices.Clone(n.log[req.req.FetchOffset:end])
	}
	return rep
}

// onFetchReply is the follower's side: append, truncate or reset.
func (n *node) onFetchReply(rep fetchReply) error {
	if n.follower == nil {
		return nil
	}
	a := n.follower.HandleResponse(rep.req, rep.resp, n.epochs, n.local())
	switch a.Kind {
	case ActAppend:
		if rep.req.FetchOffset != n.leo() {
			return fmt.Errorf("node %d: follower accepted records at %d onto LEO %d", n.id, rep.req.FetchOffset, n.leo())
		}
		n.appendRecords(rep.records)
		n.hw = n.follower.Appended(n.local(), rep.resp.HighWatermark)
	case ActTruncate:
		err := n.truncate(a.Truncation.Offset)
		n.follower.Truncated(n.local())
		return err
	case ActReset:
		off, full := OutOfRangeReset(n.leo(), 0, rep.leaderEnd)
		if full {
			return fmt.Errorf("node %d: reset to leader start %d (no retention in the sim)", n.id, off)
		}
		err := n.truncate(off)
		n.follower.Truncated(n.local())
		return err
	}
	return nil
}

// produce appends one record as leader; acks=all ones wait for the HW.
func (n *node) produce(acks int16, id int64, nowMs int64) error {
	if err := n.leader.CheckAppend(acks); err != nil {
		return err
	}
	rec := entry{epoch: n.leader.LeaderEpoch(), id: id}
	n.log = append(n.log, rec)
	if acks == -1 {
		n.waiting = append(n.waiting, produced{offset: n.leo() - 1, rec: rec})
	}
	n.leader.Append(n.leo(), nowMs)
	return nil
}

// completeWaiting answers the acks=all produces the HW now covers.
func (n *node) completeWaiting() (acked []produced, failed int) {
	if n.leader == nil {
		return nil, 0
	}
	n.hw = n.leader.HighWatermark()
	n.waiting = slices.DeleteFunc(n.waiting, func(p produced) bool {
		done, err := n.leader.CheckEnoughReplicasReachOffset(p.offset + 1)
		switch {
		case done && err == nil:
			acked = append(acked, p)
		case done:
			failed++
		}
		return done
	})
	return acked, failed
}
