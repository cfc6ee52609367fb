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
// controller says the copy's offset is no longer in its log.
func (l *Link) follow() {
	defer close(l.done)
	failures := 0
	for l.ctx.Err() == nil {
		hw, err := l.fetchOnce(l.ctx, l.cfg.MaxWait)
		if err != nil {
			if l.ctx.Err() != nil {
				return
			}
			if failures%20 == 0 {
				l.logger.Warn("fetching the controller's metadata", "controller_id", l.cfg.ControllerID, "controller", l.cfg.ControllerAddr, "err", err)
			}
			failures++
			if !l.sleep(l.ctx, nil, backoff(failures)) {
				return
			}
			continue
		}
		if failures > 0 {
			l.logger.Info("following the controller's metadata again", "controller_id", l.cfg.ControllerID, "offset", l.obs.Next(), "high_watermark", hw)
			failures = 0
		}
	}
}

// fetchOnce runs one metadata fetch from the copy's end and applies what
// it brings; it returns the controller's end offset as the answer gave it.
func (l *Link) fetchOnce(ctx context.Context, wait time.Duration) (int64, error) {
	from := l.obs.Next()
	kresp, err := l.request(ctx, metadataFetch(from, wait, 8<<20))
	if err != nil {
		return 0, err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := codeErr(resp.ErrorCode); err != nil {
		return 0, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, errors.New("controllerlink: metadata fetch answered for no partition")
	}
	p := resp.Topics[0].Partitions[0]
	if err := codeErr(p.ErrorCode); err != nil {
		return 0, err
	}
	if p.SnapshotID.EndOffset >= 0 {
		snap, err := l.fetchSnapshot(ctx)
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
		return 0, err
	}
	for _, b := range batches {
		if b.Offset+int64(len(b.Records)) <= l.obs.Next() {
			continue // already applied (a duplicate answer)
		}
		if err := l.obs.Apply(b); err != nil {
			// The copy and the log disagree: start from a snapshot.
			if snap, serr := l.fetchSnapshot(ctx); serr == nil {
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

// metadataFetch asks for the metadata log from offset from, waiting up to
// wait for a change, as an observer (replica id -1: never in the
// metadata's ISR).
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
// broker answers with metadata that includes its own change.
func (l *Link) WaitCaughtUp(ctx context.Context) error {
	// Ask where the controller's log ends now, without waiting.
	target, err := l.endOffset(ctx)
	if err != nil {
		return err
	}
	if !l.started.Load() {
		// Nobody follows yet (the broker registers before it starts
		// following): fetch here.
		for l.obs.Next() < target {
			if _, err := l.fetchOnce(ctx, 0); err != nil {
				return err
			}
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

// endOffset asks the controller for its log's end: a metadata fetch from
// offset 0 that does not wait and reads at most one batch.
func (l *Link) endOffset(ctx context.Context) (int64, error) {
	kresp, err := l.request(ctx, metadataFetch(l.obs.Next(), 0, 1))
	if err != nil {
		return 0, err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("controllerlink: metadata end offset: %w", codeErr(resp.ErrorCode))
	}
	p := resp.Topics[0].Partitions[0]
	if err := codeErr(p.ErrorCode); err != nil {
		return 0, err
	}
	return p.HighWatermark, nil
}

// fetchSnapshot reads the controller's newest metadata snapshot, in
// chunks, all of one snapshot id.
func (l *Link) fetchSnapshot(ctx context.Context) ([]byte, error) {
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
		kresp, err := l.request(ctx, req)
		if err != nil {
			return nil, err
		}
		resp := kresp.(*kmsg.FetchSnapshotResponse)
		if err := codeErr(resp.ErrorCode); err != nil {
			return nil, err
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return nil, errors.New("controllerlink: snapshot answered for no partition")
		}
		p := resp.Topics[0].Partitions[0]
		if err := codeErr(p.ErrorCode); err != nil {
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
	return nil, errors.New("controllerlink: the controller's snapshot kept changing while it was read")
}
