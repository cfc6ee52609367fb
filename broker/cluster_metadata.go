package broker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/netio"
)

// The controller's side of the metadata log: the other nodes of a cluster
// follow it with Fetch on __cluster_metadata (KRaft's topic and fixed topic
// id) from the offset after their last record, and start, or start again
// when they fall behind the log's start, from FetchSnapshot. Each committed
// batch of metadata records travels as one record batch whose base offset
// is the batch's offset and whose record values are the records' JSON
// (controller.EncodeBatches), so a batch is applied whole or not at all.

// maxMetadataWait bounds how long a metadata fetch waits for a change, so
// followers also see records committed without a wake-up (producer-id
// blocks) soon enough.
const maxMetadataWait = 500 * time.Millisecond

// metaSignal wakes metadata fetches waiting for the next commit.
type metaSignal struct {
	mu sync.Mutex
	ch chan struct{}
}

// changed returns a channel closed at the next fire.
func (s *metaSignal) changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *metaSignal) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// isMetadataFetch reports a fetch of the metadata log: those go to
// handleMetadataFetch, never to the partitions.
func isMetadataFetch(req *kmsg.FetchRequest) bool {
	for i := range req.Topics {
		if t := &req.Topics[i]; controller.TopicID(t.TopicID) == controller.MetadataTopicID || t.Topic == controller.MetadataTopic {
			return true
		}
	}
	return false
}

// handleMetadataFetch answers a follower of the metadata log: the batches
// from its fetch offset, waiting up to max_wait_ms (capped) for one when it
// is caught up; a SnapshotID when its offset is no longer (or not) in the
// log; NOT_CONTROLLER-style NOT_LEADER_OR_FOLLOWER on a node that does not
// hold the controller's log.
func (b *Broker) handleMetadataFetch(ctx context.Context, req *kmsg.FetchRequest) *netio.Response {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(req.Version)
	if len(req.Topics) != 1 || len(req.Topics[0].Partitions) != 1 || req.Topics[0].Partitions[0].Partition != 0 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return encode(resp)
	}
	rt, rp := req.Topics[0], req.Topics[0].Partitions[0]
	t := kmsg.NewFetchResponseTopic()
	t.Topic, t.TopicID = rt.Topic, rt.TopicID
	p := kmsg.NewFetchResponseTopicPartition()
	p.Partition = 0
	p.HighWatermark, p.LastStableOffset, p.LogStartOffset = -1, -1, -1
	store, ok := b.ctrlStore()
	if !ok && b.ctrl != nil {
		// Just elected, this voter opens its Store once the metadata
		// log commits its start: hold the fetch for that rather than
		// send the link round the other voters.
		store, ok = b.ctrl.awaitStore(ctx, min(time.Duration(req.MaxWaitMillis)*time.Millisecond, maxMetadataWait))
	}
	if !ok {
		p.ErrorCode = kerr.NotLeaderForPartition.Code
		if b.ctrl != nil {
			// Not the active controller: say which voter is, as far
			// as this one knows, so the link goes straight there.
			p.ErrorCode = kerr.NotController.Code
			if l := b.ctrl.leader(); !l.Active.IsZero() && l.Active.ID != b.localID() {
				p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = l.Active.ID, l.Epoch
			}
		}
		return b.encodeMetadataFetch(resp, &t, &p)
	}
	if b.ctrl != nil {
		// The active controller names itself and its epoch, so a
		// broker's link can refuse a deposed controller's answers.
		if _, epoch, ok := b.ctrl.activeStore(); ok {
			p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = b.localID(), epoch
		}
	}
	maxBytes := int(min(rp.PartitionMaxBytes, req.MaxBytes))
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	wait := min(time.Duration(req.MaxWaitMillis)*time.Millisecond, maxMetadataWait)
	var expired chan struct{}
	for {
		changed := b.metaWatch.changed() // before the read, so a commit after it wakes us
		batches, err := store.BatchesFrom(rp.FetchOffset, maxBytes)
		p.HighWatermark = store.End()
		p.LastStableOffset = p.HighWatermark
		switch {
		case errors.Is(err, controller.ErrSnapshotNeeded):
			p.SnapshotID.EndOffset, p.SnapshotID.Epoch = p.HighWatermark, 0
			return b.encodeMetadataFetch(resp, &t, &p)
		case err != nil:
			b.logger.Error("serving the metadata log", "fetch_offset", rp.FetchOffset, "err", err)
			p.ErrorCode = kerr.KafkaStorageError.Code
			return b.encodeMetadataFetch(resp, &t, &p)
		case len(batches) > 0:
			if p.RecordBatches, err = controller.EncodeBatches(batches, b.now().UnixMilli()); err != nil {
				b.logger.Error("encoding the metadata log", "err", err)
				p.ErrorCode = kerr.UnknownServerError.Code
			}
			return b.encodeMetadataFetch(resp, &t, &p)
		case wait <= 0:
			return b.encodeMetadataFetch(resp, &t, &p)
		}
		if expired == nil {
			expired = make(chan struct{})
			stop := b.clock.AfterFunc(wait, func() { close(expired) })
			defer stop()
		}
		select {
		case <-changed:
		case <-expired:
			wait = 0 // read once more, then answer
		case <-ctx.Done():
			return nil
		case <-b.stop:
			wait = 0
		}
	}
}

// encodeMetadataFetch puts the one partition's answer into the response
// and encodes it.
func (b *Broker) encodeMetadataFetch(resp *kmsg.FetchResponse, t *kmsg.FetchResponseTopic, p *kmsg.FetchResponseTopicPartition) *netio.Response {
	t.Partitions = []kmsg.FetchResponseTopicPartition{*p}
	resp.Topics = []kmsg.FetchResponseTopic{*t}
	b.metrics.requestError(kmsg.Fetch.Int16(), p.ErrorCode)
	return encode(resp)
}

// snapshotCache keeps the snapshot being sent in chunks, so that every
// chunk comes from the same one.
type snapshotCache struct {
	mu   sync.Mutex
	data []byte
	end  int64
}

// handleFetchSnapshot answers FetchSnapshot for the metadata log: position
// 0 of any snapshot id starts from the newest snapshot (its id is in the
// answer); later positions continue the snapshot with that id, or get
// SNAPSHOT_NOT_FOUND once a newer one replaced it.
func (b *Broker) handleFetchSnapshot(req *kmsg.FetchSnapshotRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FetchSnapshotResponse)
	store, isController := b.ctrlStore()
	for _, rt := range req.Topics {
		t := kmsg.NewFetchSnapshotResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewFetchSnapshotResponseTopicPartition()
			p.Partition = rp.Partition
			if p.ErrorCode = metadataPartitionError(rt.Topic, rp.Partition, isController); p.ErrorCode == 0 {
				b.snapshotChunk(store, req.MaxBytes, rp, &p)
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

func (b *Broker) snapshotChunk(store *controller.Store, maxBytes int32, rp kmsg.FetchSnapshotRequestTopicPartition, p *kmsg.FetchSnapshotResponseTopicPartition) {
	c := &b.snapshots
	c.mu.Lock()
	defer c.mu.Unlock()
	if rp.Position == 0 && (c.data == nil || rp.SnapshotID.EndOffset != c.end || store.End() != c.end) {
		data, end, err := store.Snapshot()
		if err != nil {
			b.logger.Error("taking a metadata snapshot", "err", err)
			p.ErrorCode = kerr.UnknownServerError.Code
			return
		}
		c.data, c.end = data, end
	}
	if c.data == nil || rp.SnapshotID.EndOffset != c.end && rp.Position != 0 || rp.Position < 0 || rp.Position > int64(len(c.data)) {
		p.ErrorCode = kerr.SnapshotNotFound.Code
		return
	}
	p.SnapshotID.EndOffset, p.SnapshotID.Epoch = c.end, 0
	p.Size, p.Position = int64(len(c.data)), rp.Position
	n := int64(len(c.data)) - rp.Position
	if maxBytes > 0 && n > int64(maxBytes) {
		n = int64(maxBytes)
	}
	p.Bytes = c.data[rp.Position : rp.Position+n]
}

func init() {
	register(api{key: kmsg.FetchSnapshot, min: 0, max: 1,
		handle: func(b *Broker, _ context.Context, _ *netio.Request, req kmsg.Request) kmsg.Response {
			return b.handleFetchSnapshot(req.(*kmsg.FetchSnapshotRequest))
		},
		errorCodes: func(resp kmsg.Response, count func(int16)) {
			r := resp.(*kmsg.FetchSnapshotResponse)
			count(r.ErrorCode)
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					count(p.ErrorCode)
				}
			}
		},
	})
}
