package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/sluice-io/sluice/segment"
)

// MetadataFile is the snapshot of State, kept in one of the log directories.
const MetadataFile = "cluster-metadata.json"

const metadataFile = MetadataFile

// producerIDBlock is how many producer ids one persisted allocation reserves,
// so that InitProducerId does not cost an fsync per call.
const producerIDBlock = 1000

// Store is the durable controller: every change is written to disk
// (segment.WriteFileAtomic: temporary file, fsync, rename, fsync the
// directory) before it is visible, so a crash either keeps the old metadata
// or the new one, never a mix.
type Store struct {
	fs        segment.FS
	dir       string
	logger    *slog.Logger
	clusterID string
	nodeID    int32

	mu    sync.RWMutex
	state *State
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

// Create starts a fresh cluster in dir of fsys, with a new cluster id.
// Every change is written through fsys (segment.WriteFileAtomic).
func Create(fsys segment.FS, dir string, nodeID int32, logger *slog.Logger) (*Store, error) {
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	s := &Store{fs: fsys, dir: dir, logger: logger, state: NewState(nodeID)}
	if err := s.persist(s.state); err != nil {
		return nil, err
	}
	logger.Info("created cluster metadata", "cluster_id", s.state.ClusterID, "dir", dir)
	s.ready()
	return s, nil
}

// Load reads the metadata in dir of fsys. A missing file is an error that matches
// fs.ErrNotExist; a file that cannot be read or decoded, or that names no
// cluster, is an error naming it: the caller must not take either for a
// new cluster, or every partition would lose its topic.
func Load(fsys segment.FS, dir string, nodeID int32, logger *slog.Logger) (*Store, error) {
	path := filepath.Join(dir, metadataFile)
	b, err := segment.ReadFile(fsys, path)
	if err != nil {
		return nil, fmt.Errorf("controller: read cluster metadata: %w", err)
	}
	st := &State{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("controller: %s is corrupt: %w", path, err)
	}
	if st.ClusterID == "" {
		return nil, fmt.Errorf("controller: %s is corrupt: it names no cluster_id", path)
	}
	if st.Topics == nil {
		st.Topics = map[string]*Topic{}
	}
	if st.NodeID != nodeID {
		return nil, fmt.Errorf("controller: metadata in %s belongs to node.id %d, this broker is node.id %d", dir, st.NodeID, nodeID)
	}
	s := &Store{fs: fsys, dir: dir, logger: logger, state: st}
	s.ready()
	return s, nil
}

func (s *Store) ready() {
	s.nextPID, s.pidLimit = s.state.NextProducerID, s.state.NextProducerID
	s.clusterID, s.nodeID = s.state.ClusterID, s.state.NodeID
}

// Dir is the log directory that holds the metadata file.
func (s *Store) Dir() string { return s.dir }

// Snapshot returns a copy of the metadata the caller may keep and read freely.
func (s *Store) Snapshot() *State {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state.clone()
}

// ClusterID returns the cluster's id.
func (s *Store) ClusterID() string { return s.clusterID }

// NodeID returns this node's id.
func (s *Store) NodeID() int32 { return s.nodeID }

// Topic returns a copy of one topic.
func (s *Store) Topic(name string) (*Topic, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.state.Topics[name]
	if !ok {
		return nil, false
	}
	return t.clone(), true
}

// Apply runs change against a copy of the state and, when it succeeds,
// persists the result and makes it current. The returned topic (if any) is
// what change returned, copied.
func (s *Store) Apply(change func(*State) (*Topic, error)) (*Topic, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.state.clone()
	t, err := change(next)
	if err != nil {
		return nil, err
	}
	next.NextProducerID = s.pidLimit
	if err := s.persist(next); err != nil {
		return nil, err
	}
	s.state = next
	if t == nil {
		return nil, nil
	}
	return t.clone(), nil
}

// NextProducerID hands out a fresh idempotent producer id.
func (s *Store) NextProducerID() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nextPID >= s.pidLimit {
		next := s.state.clone()
		next.NextProducerID = s.pidLimit + producerIDBlock
		if err := s.persist(next); err != nil {
			return 0, err
		}
		s.state = next
		s.pidLimit = next.NextProducerID
	}
	id := s.nextPID
	s.nextPID++
	return id, nil
}

func (s *Store) persist(st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("controller: encode metadata: %w", err)
	}
	if err := segment.WriteFileAtomic(s.fs, filepath.Join(s.dir, metadataFile), b); err != nil {
		return fmt.Errorf("controller: persist metadata: %w", err)
	}
	return nil
}
