package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/sluice-io/sluice/segment"
)

// MetadataFile is the snapshot of State, kept in one of the log directories.
// Its JSON is a superset of the first format (a whole State rewritten on
// every change), which Load still reads.
const MetadataFile = "cluster-metadata.json"

// MetadataLogFile holds the record batches applied since the snapshot, in
// the same directory (metalog.go).
const MetadataLogFile = "cluster-metadata.log"

const metadataFile = MetadataFile

// producerIDBlock is how many producer ids one persisted allocation reserves,
// so that InitProducerId does not cost an fsync per call.
const producerIDBlock = 1000

// snapshotVersion is the format of MetadataFile written now: a State plus
// the owner's node id and the log offset it holds records up to. Version 0
// (no "version" field) is the first format, with no log and no brokers.
const snapshotVersion = 1

// snapshotFile is MetadataFile's content.
type snapshotFile struct {
	*State
	// NodeID is the node that owns this copy of the metadata; it is not
	// part of State, which describes the whole cluster.
	NodeID  int32 `json:"node_id"`
	Version int   `json:"version,omitempty"`
	// Offset is the offset of the first record not in the snapshot.
	Offset int64 `json:"offset,omitempty"`
}

// Store is the durable controller of one node. A change is a batch of
// records that a planner makes from the current State; Commit applies the
// batch to a copy of the State, appends it durably to the metadata log
// (its recordLog), and only then publishes the new State as an Image, so a
// crash keeps either the whole batch or none of it.
type Store struct {
	dir    string
	logger *slog.Logger
	nodeID int32

	mu sync.Mutex // serializes plans and the start of their appends
	// state is the latest applied, committed or (on a pipelined log)
	// still being committed; never changed once set. next is the offset
	// the next record appended gets.
	state *State
	next  int64
	log   recordLog
	// last is the latest append started on a pipelined log.
	last *pendingCommit
	// ckpt, on a replicated Store, decides when a checkpoint follows a
	// batch (checkpoint.go); nil elsewhere.
	ckpt *checkpointer
	// image is the committed metadata: its State holds every record
	// before its Offset, all committed. pubMu orders its updates.
	pubMu sync.Mutex
	image atomic.Pointer[Image]
	// Producer ids are handed out from a block persisted ahead of use; ids
	// of an unused block are skipped after a restart, never reused.
	nextPID, pidLimit int64
}

// Open loads the metadata in dir of fsys, or starts a fresh cluster there
// when dir has none. The broker does not use it: whether a missing file may
// mean a new cluster depends on what else the log directories hold, so it
// calls Load or Create itself.
func Open(fsys segment.FS, dir string, nodeID int32, logger *slog.Logger) (*Store, error) {
	s, err := Load(fsys, dir, nodeID, logger)
	if errors.Is(err, fs.ErrNotExist) {
		return Create(fsys, dir, nodeID, logger)
	}
	return s, err
}

// Create starts a fresh cluster in dir of fsys, with a new cluster id and
// no brokers: the broker registers itself with its first Commit.
func Create(fsys segment.FS, dir string, nodeID int32, logger *slog.Logger) (*Store, error) {
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	fl := newFileLog(fsys, dir, nodeID, logger)
	s := newStore(dir, nodeID, logger, fl, NewState(NewClusterID()), 0)
	// The snapshot, then an empty log: a log left from an older cluster
	// in this directory must not be replayed onto the new one.
	if err := fl.compact(s.state, 0); err != nil {
		return nil, err
	}
	logger.Info("created cluster metadata", "cluster_id", s.state.ClusterID, "dir", dir)
	return s, nil
}

// Load reads the metadata in dir of fsys: the snapshot, then the batches
// of the log after it. A missing snapshot is an error that matches
// fs.ErrNotExist; a snapshot or log that cannot be read or decoded, or that
// names no cluster, is an error naming it: the caller must not take either
// for a new cluster, or every partition would lose its topic. A batch torn
// by a crash at the end of the log was never acknowledged and is dropped.
func Load(fsys segment.FS, dir string, nodeID int32, logger *slog.Logger) (*Store, error) {
	path := filepath.Join(dir, metadataFile)
	b, err := segment.ReadFile(fsys, path)
	if err != nil {
		return nil, fmt.Errorf("controller: read cluster metadata: %w", err)
	}
	snap := snapshotFile{State: &State{}}
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, fmt.Errorf("controller: %s is corrupt: %w", path, err)
	}
	st := snap.State
	if st.ClusterID == "" {
		return nil, fmt.Errorf("controller: %s is corrupt: it names no cluster_id", path)
	}
	if snap.NodeID != nodeID {
		return nil, fmt.Errorf("controller: metadata in %s belongs to node.id %d, this broker is node.id %d", dir, snap.NodeID, nodeID)
	}
	if snap.Version > snapshotVersion {
		return nil, fmt.Errorf("controller: %s has format version %d; this build reads up to %d", path, snap.Version, snapshotVersion)
	}
	st.reindex()
	fl := newFileLog(fsys, dir, nodeID, logger)
	s := newStore(dir, nodeID, logger, fl, st, snap.Offset)
	replayed, clean, err := fl.log.replay(snap.Offset, func(offset int64, rs []Record) error {
		return applyBatch(st, offset, rs)
	})
	if err != nil {
		return nil, err
	}
	s.publish(st, replayed)
	s.nextPID, s.pidLimit = st.NextProducerID, st.NextProducerID
	if !clean || replayed > snap.Offset || snap.Version < snapshotVersion {
		// Start from a fresh snapshot in today's format and an empty
		// log, which also drops a torn batch at its end. Metadata that
		// needs none of that is not written: a start that the caller
		// then refuses must leave the log dir as it found it.
		if err := fl.compact(st, replayed); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func newStore(dir string, nodeID int32, logger *slog.Logger, log recordLog, st *State, offset int64) *Store {
	s := &Store{dir: dir, logger: logger, nodeID: nodeID, log: log}
	s.publish(st, offset)
	return s
}

// publish makes st, which holds every record before offset, current.
func (s *Store) publish(st *State, offset int64) {
	s.state = st
	s.next = offset
	s.image.Store(newImage(st, offset, s.nodeID))
}

// applyBatch applies one batch of records starting at offset to st. A
// broker's epoch is the offset of its registration (the KRaft rule).
func applyBatch(st *State, offset int64, rs []Record) error {
	for i, r := range rs {
		if rb, ok := r.(RegisterBrokerRecord); ok {
			rb.BrokerEpoch = offset + int64(i)
			r = rb
		}
		if err := st.Apply(r); err != nil {
			return fmt.Errorf("controller: record %d: %w", offset+int64(i), err)
		}
	}
	return nil
}

// Dir is the log directory that holds the metadata ("" when a replicated
// log holds it).
func (s *Store) Dir() string { return s.dir }

// Image is the metadata as of the last committed change. Take it once per
// request and read everything from it.
func (s *Store) Image() *Image { return s.image.Load() }

// ClusterID returns the cluster's id.
func (s *Store) ClusterID() string { return s.Image().ClusterID() }

// A Plan reads the current State (it must not change it) and returns the
// records that carry out a change, or why the change is refused.
type Plan func(*State) ([]Record, error)

// Commit plans a change against the current State and makes it durable and
// visible: it applies the records to a copy, appends them to the metadata
// log (fsynced in a log directory, or committed by the controller voters
// on a replicated Store), then publishes the new Image, which it returns.
// A plan that returns no records changes nothing; it returns once every
// change already planned is committed, since its answer may rest on them.
// Plans are serialized, so each sees exactly the State its records will
// apply to: on a replicated Store that State may hold changes still being
// committed (as a KRaft controller plans on its uncommitted state), and
// the commits replicate together while only the planning is serialized.
func (s *Store) Commit(plan Plan) (*Image, error) {
	s.mu.Lock()
	rs, err := plan(s.state)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	pl, pipelined := s.log.(pipelinedLog)
	if !pipelined || len(rs) == 0 {
		last := s.last
		var img *Image
		if len(rs) > 0 {
			img, err = s.commitLocked(rs)
		}
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if last != nil {
			if err := last.result(); err != nil {
				return nil, err
			}
		}
		if img != nil {
			return img, nil
		}
		return s.Image(), nil
	}
	next := s.state.clone()
	offset := s.next
	if err := applyBatch(next, offset, rs); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	wait, size, err := pl.start(offset, rs)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	end := offset + int64(len(rs))
	c := &pendingCommit{wait: wait}
	s.state, s.next, s.last = next, end, c
	if s.ckpt != nil {
		s.ckpt.appended(size)
		if s.ckpt.due() {
			s.checkpointLocked(pl)
		}
	}
	s.mu.Unlock()
	if err := c.result(); err != nil {
		return nil, err
	}
	s.publishCommitted(next, end)
	return s.Image(), nil
}

// commitLocked appends rs and waits for its commit with s.mu held.
func (s *Store) commitLocked(rs []Record) (*Image, error) {
	if len(rs) == 0 {
		return s.Image(), nil
	}
	next := s.state.clone()
	offset := s.next
	if err := applyBatch(next, offset, rs); err != nil {
		return nil, err
	}
	end := offset + int64(len(rs))
	if err := s.log.append(offset, rs, next); err != nil {
		return nil, err
	}
	s.state, s.next = next, end
	s.publishCommitted(next, end)
	return s.Image(), nil
}

// pipelinedLog is a recordLog whose appends can be started in order under
// the Store's lock and waited for outside it (replicatedLog): start queues
// the batch, wait returns once it is committed or known not to be. A
// failed wait fails every later append too, so a State holding batches
// that never committed is never committed on.
type pipelinedLog interface {
	// start also returns the batch's encoded size.
	start(offset int64, rs []Record) (wait func() error, size int64, err error)
	// startCheckpoint is start for a checkpoint batch: one
	// CheckpointRecord restating the State at offset, after which the
	// log may drop every batch below offset once it is committed.
	startCheckpoint(offset int64, r CheckpointRecord) (wait func() error, err error)
}

// pendingCommit is a started append whose result several callers may
// wait for: its own Commit, and plans with no records behind it.
type pendingCommit struct {
	once sync.Once
	wait func() error
	err  error
}

func (c *pendingCommit) result() error {
	c.once.Do(func() { c.err = c.wait() })
	return c.err
}

// publishCommitted publishes st, which holds every record before end, if
// it is newer than the Image published: commits finish in offset order,
// but their callers may get to publish in any order.
func (s *Store) publishCommitted(st *State, end int64) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if cur := s.image.Load(); cur != nil && cur.Offset() >= end {
		return
	}
	s.image.Store(newImage(st, end, s.nodeID))
}

// Close folds the log into the snapshot, so that after a clean shutdown
// the snapshot alone holds the whole metadata. The Store must not be used
// after it; a failure loses nothing (the log still holds every batch).
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	img := s.Image()
	return s.log.close(img.st, img.Offset())
}

// NextProducerID hands out a fresh idempotent producer id.
func (s *Store) NextProducerID() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nextPID >= s.pidLimit {
		// Blocks handed to other brokers (AllocateProducerIDs) moved
		// the state's next id past this node's own block.
		base := max(s.pidLimit, s.state.NextProducerID)
		limit := base + producerIDBlock
		if _, err := s.commitLocked([]Record{ProducerIDsRecord{NextProducerID: limit}}); err != nil {
			return 0, err
		}
		s.nextPID, s.pidLimit = base, limit
	}
	id := s.nextPID
	s.nextPID++
	return id, nil
}

// Compaction bounds: the log is folded into a new snapshot after this many
// batches or bytes, and at every start.
const (
	compactAfterBatches = 1000
	compactAfterBytes   = 8 << 20
)
