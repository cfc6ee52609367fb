package controller

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sluice-io/sluice/segment"
)

// The metadata as other nodes follow it. The controller's Store serves its
// committed batches (BatchesFrom) and, to a node too far behind or new, a
// snapshot of the whole State (Snapshot); an Observer on every other node
// applies them in order to its own copy and publishes Images, as the
// controller's Store does. Nothing here decides anything: an Observer holds
// what the controller committed, record for record and offset for offset.

// MetadataTopic and MetadataTopicID name the metadata log as brokers fetch
// it: KRaft's __cluster_metadata and its fixed topic id (AAAAAAAAAAAAAAAAAAAAAQ).
const MetadataTopic = "__cluster_metadata"

// MetadataTopicID is the fixed id of MetadataTopic.
var MetadataTopicID = TopicID{15: 1}

// Batch is one committed batch of records: the offset of its first record
// and the records, applied together or not at all.
type Batch struct {
	Offset  int64
	Records []Record
}

// ErrSnapshotNeeded says the batches asked for are no longer in the log
// (folded into the snapshot) or were never committed here: the follower
// must start again from a Snapshot.
var ErrSnapshotNeeded = errors.New("controller: offset outside the metadata log; fetch a snapshot")

// Snapshot returns the whole current State, encoded, and the offset of the
// first record it does not hold.
func (s *Store) Snapshot() ([]byte, int64, error) {
	img := s.Image() // committed only, and never changed once published
	b, err := json.Marshal(snapshotFile{State: img.st, NodeID: -1, Version: snapshotVersion, Offset: img.Offset()})
	if err != nil {
		return nil, 0, fmt.Errorf("controller: encode snapshot: %w", err)
	}
	return b, img.Offset(), nil
}

// End is the offset the next committed record will get: the end of what
// is committed (changes still replicating are not counted).
func (s *Store) End() int64 { return s.Image().Offset() }

// AllocateProducerIDs reserves a block of n producer ids for another
// broker (AllocateProducerIds) and returns its first id. The block is
// committed before it is handed out, so no id is ever given twice, across
// restarts too; this node's own block (NextProducerID) is never touched.
func (s *Store) AllocateProducerIDs(n int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := max(s.pidLimit, s.state.NextProducerID)
	if _, err := s.commitLocked([]Record{ProducerIDsRecord{NextProducerID: start + n}}); err != nil {
		return 0, err
	}
	return start, nil
}

// BatchesFrom returns the committed batches from offset from on, whole,
// stopping once maxBytes of their encoding is reached (at least one batch
// when there is one). None when from is the end. ErrSnapshotNeeded when
// from is before the log's first batch or past its end, or falls inside a
// batch.
func (s *Store) BatchesFrom(from int64, maxBytes int) ([]Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// s.next may be ahead of what is committed (a pipelined log): the
	// log answers only committed batches, the rest once committed.
	if from == s.next {
		return nil, nil
	}
	if from > s.next || from < 0 {
		return nil, ErrSnapshotNeeded
	}
	return s.log.batchesFrom(from, maxBytes)
}

// Observer is a node's copy of metadata another node decides: it starts
// from a Snapshot and applies the controller's batches in order. It is
// safe for concurrent use; Image never blocks.
type Observer struct {
	mu         sync.Mutex
	state      *State
	next       int64
	controller int32
	image      atomic.Pointer[Image]
}

// NewObserver starts a copy from a snapshot (Store.Snapshot) of the
// metadata that node controller decides.
func NewObserver(snapshot []byte, controller int32) (*Observer, error) {
	o := &Observer{controller: controller}
	if err := o.Reset(snapshot); err != nil {
		return nil, err
	}
	return o, nil
}

// Reset replaces the copy with a snapshot: a follower that fell behind the
// controller's log, or whose controller started a new one.
func (o *Observer) Reset(snapshot []byte) error {
	snap := snapshotFile{State: &State{}}
	if err := json.Unmarshal(snapshot, &snap); err != nil {
		return fmt.Errorf("controller: decode metadata snapshot: %w", err)
	}
	if snap.ClusterID == "" {
		return errors.New("controller: metadata snapshot names no cluster_id")
	}
	if snap.Version > snapshotVersion {
		return fmt.Errorf("controller: metadata snapshot has format version %d; this build reads up to %d", snap.Version, snapshotVersion)
	}
	snap.reindex()
	o.mu.Lock()
	defer o.mu.Unlock()
	if cur := o.state; cur != nil && cur.ClusterID != snap.ClusterID {
		return fmt.Errorf("controller: metadata snapshot of cluster %s, this node follows cluster %s", snap.ClusterID, cur.ClusterID)
	}
	o.publishLocked(snap.State, snap.Offset)
	return nil
}

// Apply applies the next batch; its offset must be the observer's Next.
func (o *Observer) Apply(b Batch) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if b.Offset != o.next {
		return fmt.Errorf("controller: metadata batch at offset %d, this copy expects %d", b.Offset, o.next)
	}
	next := o.state.clone()
	if err := applyBatch(next, b.Offset, b.Records); err != nil {
		return err
	}
	o.publishLocked(next, b.Offset+int64(len(b.Records)))
	return nil
}

func (o *Observer) publishLocked(st *State, next int64) {
	o.state, o.next = st, next
	o.image.Store(newImage(st, next, o.controller))
}

// Next is the offset of the first record the copy does not hold.
func (o *Observer) Next() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.next
}

// Image is the copy as of the last batch applied.
func (o *Observer) Image() *Image { return o.image.Load() }

// ClusterID is the cluster the copy belongs to.
func (o *Observer) ClusterID() string { return o.Image().ClusterID() }

// EncodeBatches makes one Kafka record batch per metadata batch, as the
// metadata log travels in Fetch: its base offset is the batch's offset and
// its record values are the records' JSON (EncodeRecord), every record at
// timestamp ts.
func EncodeBatches(batches []Batch, ts int64) ([]byte, error) {
	var out []byte
	for _, mb := range batches {
		kvs := make([]segment.KV, len(mb.Records))
		for i, r := range mb.Records {
			v, err := EncodeRecord(r)
			if err != nil {
				return nil, err
			}
			kvs[i].Value = v
		}
		batch, err := segment.BuildBatch(kvs, ts)
		if err != nil {
			return nil, err
		}
		// The base offset is outside the batch's CRC, which covers the
		// attributes onwards.
		binary.BigEndian.PutUint64(batch[0:8], uint64(mb.Offset))
		out = append(out, batch...)
	}
	return out, nil
}

// DecodeBatches is EncodeBatches' inverse. A partial batch at the end (a
// size-limited read) is left out; a damaged one is an error.
func DecodeBatches(data []byte) ([]Batch, error) {
	var out []Batch
	for len(data) >= segment.BatchHeaderSize {
		h, err := segment.ParseBatchHeader(data)
		if err != nil {
			return nil, fmt.Errorf("controller: metadata batch: %w", err)
		}
		if int(h.Size()) > len(data) {
			break
		}
		mb := Batch{Offset: h.BaseOffset}
		err = segment.EachRecord(data[:h.Size()], func(r segment.Record) error {
			rec, err := DecodeRecord(r.Value)
			if err != nil {
				return err
			}
			mb.Records = append(mb.Records, rec)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("controller: metadata batch at offset %d: %w", h.BaseOffset, err)
		}
		out = append(out, mb)
		data = data[h.Size():]
	}
	return out, nil
}
