package controllerlink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
)

// follow fetches the controller's metadata log from the copy's end,
// applies each batch in order, and starts again from a snapshot when the
// controller says the copy's offset is no longer in its log. A failed
// fetch has moved the guess on (see quorum): the next goes to the next
// voter at once, with a backoff once a whole round failed.
func (l *Link) follow() {
	defer close(l.done)
	failures := 0
	for l.ctx.Err() == nil {
		hw, err := l.fetchOnce(l.ctx, l.cfg.MaxWait)
		if err != nil {
			if l.ctx.Err() != nil {
				return
			}
			failures++
			if warnAt(l.q.size(), failures) {
				l.logger.Warn("fetching the controller's metadata", "voters", l.q.String(), "failures", failures, "err", err)
			}
			if !l.pause(l.ctx, failures, err) {
				return
			}
			continue
		}
		if failures >= l.q.size() {
			id, epoch := l.q.active()
			l.logger.Info("following the controller's metadata again", "controller_id", id, "controller_epoch", epoch,
				"offset", l.obs.Next(), "high_watermark", hw)
		}
		failures = 0
	}
}

// fetchOnce runs one metadata fetch from the copy's end and applies what
// it brings; it returns the controller's end offset as the answer gave it.
func (l *Link) fetchOnce(ctx context.Context, wait time.Duration) (int64, error) {
	from := l.obs.Next()
	v, p, err := l.fetchMetadata(ctx, from, wait, 8<<20)
	if err != nil {
		return 0, err
	}
	if p.SnapshotID.EndOffset >= 0 {
		snap, err := l.fetchSnapshot(ctx, v)
		if err != nil {
			return 0, err
		}
		if err := l.obs.Reset(snap); err != nil {
			return 0, err
		}
		l.logger.Info("metadata copy restarted from the controller's snapshot", "offset", l.obs.Next(), "was", from)
		l.changed()
		return p.HighWatermark, nil
	}
	batches, err := controller.DecodeBatches(p.RecordBatches)
	if err != nil {
		l.q.miss(v)
		return 0, fmt.Errorf("controllerlink: metadata from controller %d: %w", l.q.voter(v).ID, err)
	}
	for _, b := range batches {
		if b.Offset+int64(len(b.Records)) <= l.obs.Next() {
			continue // already applied (a duplicate answer)
		}
		if err := l.obs.Apply(b); err != nil {
			// The copy and the log disagree: start from a snapshot.
			if snap, serr := l.fetchSnapshot(ctx, v); serr == nil {
				if rerr := l.obs.Reset(snap); rerr == nil {
					l.logger.Warn("metadata copy reset from a snapshot after a batch it could not apply", "err", err)
					l.changed()
					return p.HighWatermark, nil
				}
			}
			return 0, err
		}
	}
	if len(batches) > 0 {
		l.changed()
	}
	return p.HighWatermark, nil
}

// fetchMetadata sends one metadata fetch to the voter the link takes for
// the active controller and returns that voter and the answer's
// partition, once the answer is known to come from an active controller
// no older than one already seen. Any other outcome moves the guess on:
// the voter is gone, is not the controller (when it names the one that
// is, the guess goes there), or is a deposed one still answering.
func (l *Link) fetchMetadata(ctx context.Context, from int64, wait time.Duration, maxBytes int32) (int, kmsg.FetchResponseTopicPartition, error) {
	var none kmsg.FetchResponseTopicPartition
	v := l.q.current()
	id := l.q.voter(v).ID
	kresp, err := l.send(ctx, v, metadataFetch(from, wait, maxBytes), wait+l.cfg.RequestTimeout)
	if err != nil {
		return v, none, fmt.Errorf("controllerlink: metadata fetch from controller %d: %w", id, err)
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := codeErr(resp.ErrorCode); err != nil {
		return v, none, fmt.Errorf("controllerlink: metadata fetch from controller %d: %w", id, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		l.q.miss(v)
		return v, none, fmt.Errorf("controllerlink: controller %d answered the metadata fetch for no partition", id)
	}
	p := resp.Topics[0].Partitions[0]
	leader := p.CurrentLeader // -1, -1 before Fetch v12 or when not given
	if err := codeErr(p.ErrorCode); err != nil {
		if notController(err) {
			l.q.redirect(v, leader.LeaderID, leader.LeaderEpoch)
		}
		return v, none, fmt.Errorf("controllerlink: metadata fetch from controller %d: %w", id, err)
	}
	ok, changed := l.q.answered(v, leader.LeaderID, leader.LeaderEpoch)
	if !ok {
		return v, none, fmt.Errorf("%w: controller %d answered as leader %d at epoch %d, below epoch %d already seen",
			errStaleController, id, leader.LeaderID, leader.LeaderEpoch, l.q.highestEpoch())
	}
	if changed {
		aid, epoch := l.q.active()
		l.logger.Info("following a new active controller", "controller_id", aid, "controller_epoch", epoch, "voter", id, "offset", from)
	}
	return v, p, nil
}

// metadataFetch asks for the metadata log from offset from, waiting up to
// wait for a change, as an observer (replica id -1: never in the
// metadata's ISR). The client sends the highest version both sides know;
// from v12 on the answer names the active controller and its epoch
// (CurrentLeader), which fetchMetadata fences with.
func metadataFetch(from int64, wait time.Duration, maxBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.SessionEpoch = -1, -1
	req.MaxWaitMillis = int32(wait / time.Millisecond)
	req.MinBytes, req.MaxBytes = 1, maxBytes
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = controller.MetadataTopic, controller.MetadataTopicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, from, maxBytes
	rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// changed publishes progress to WaitCaughtUp and the broker.
func (l *Link) changed() {
	l.mu.Lock()
	l.applied = l.obs.Next()
	l.cond.Broadcast()
	l.mu.Unlock()
	if l.onChange != nil {
		l.onChange()
	}
}

// WaitCaughtUp returns once the copy holds everything the controller had
// committed when it was called: after a forwarded request, so that the
// broker answers with metadata that includes its own change. While no
// voter answers as the active controller (an election under way) it
// keeps asking, until ctx ends.
func (l *Link) WaitCaughtUp(ctx context.Context) error {
	// Ask where the controller's log ends now, without waiting.
	target, err := l.endOffset(ctx)
	if err != nil {
		return err
	}
	if !l.started.Load() {
		// Nobody follows yet (the broker registers before it starts
		// following): fetch here.
		for failures := 0; l.obs.Next() < target; {
			if _, err := l.fetchOnce(ctx, 0); err != nil {
				failures++
				if !movesOn(err) || !l.pause(ctx, failures, err) {
					return err
				}
				continue
			}
			failures = 0
		}
		return nil
	}
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.applied < target {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("controllerlink: metadata copy at %d, controller at %d: %w", l.applied, target, err)
		}
		if l.ctx.Err() != nil {
			return errors.New("controllerlink: closed")
		}
		l.cond.Wait()
	}
	return nil
}

// endOffset asks the active controller for its log's end: a metadata
// fetch from the copy's end that does not wait and reads at most one
// batch, through the voters until one answers as the active controller.
func (l *Link) endOffset(ctx context.Context) (int64, error) {
	for failures := 1; ; failures++ {
		_, p, err := l.fetchMetadata(ctx, l.obs.Next(), 0, 1)
		if err == nil {
			return p.HighWatermark, nil
		}
		if !movesOn(err) {
			return 0, fmt.Errorf("controllerlink: metadata end offset: %w", err)
		}
		if !l.pause(ctx, failures, err) {
			return 0, fmt.Errorf("controllerlink: metadata end offset: no active controller: %w (last error: %v)", ctx.Err(), err)
		}
	}
}

// fetchSnapshot reads voter v's newest metadata snapshot, in chunks, all
// of one snapshot id and from that one voter. A voter that says it is not
// the controller is missed.
func (l *Link) fetchSnapshot(ctx context.Context, v int) ([]byte, error) {
	voter := l.q.voter(v).ID
	var data []byte
	var id kmsg.FetchSnapshotRequestTopicPartitionSnapshotID
	id.EndOffset, id.Epoch = -1, -1
	for tries := 0; tries < 5; {
		req := kmsg.NewPtrFetchSnapshotRequest()
		req.ReplicaID, req.MaxBytes = -1, 4<<20
		rt := kmsg.NewFetchSnapshotRequestTopic()
		rt.Topic = controller.MetadataTopic
		rp := kmsg.NewFetchSnapshotRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.SnapshotID, rp.Position = 0, -1, id, int64(len(data))
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := l.send(ctx, v, req, l.cfg.RequestTimeout)
		if err != nil {
			return nil, fmt.Errorf("controllerlink: metadata snapshot from controller %d: %w", voter, err)
		}
		resp := kresp.(*kmsg.FetchSnapshotResponse)
		if err := codeErr(resp.ErrorCode); err != nil {
			return nil, fmt.Errorf("controllerlink: metadata snapshot from controller %d: %w", voter, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			l.q.miss(v)
			return nil, fmt.Errorf("controllerlink: controller %d answered the snapshot fetch for no partition", voter)
		}
		p := resp.Topics[0].Partitions[0]
		if err := codeErr(p.ErrorCode); err != nil {
			if notController(err) {
				l.q.miss(v)
				return nil, fmt.Errorf("controllerlink: metadata snapshot from controller %d: %w", voter, err)
			}
			// A newer snapshot replaced the one being read: start over.
			data, id.EndOffset, id.Epoch = nil, -1, -1
			tries++
			continue
		}
		if p.Position != int64(len(data)) {
			return nil, fmt.Errorf("controllerlink: snapshot chunk at %d, asked for %d", p.Position, len(data))
		}
		id.EndOffset, id.Epoch = p.SnapshotID.EndOffset, p.SnapshotID.Epoch
		data = append(data, p.Bytes...)
		if int64(len(data)) >= p.Size {
			return data, nil
		}
		if len(p.Bytes) == 0 {
			return nil, errors.New("controllerlink: empty snapshot chunk before its end")
		}
	}
	return nil, fmt.Errorf("controllerlink: controller %d's snapshot kept changing while it was read", voter)
}
