package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
)

// FileOffsetStore keeps a standalone worker's source offsets in one local
// file (offset.storage.file.filename) in Kafka Connect's own format (a Java
// serialized HashMap of the offsets topic's keys and values), so a worker
// moves between Kafka Connect and Sluice with its offsets. Every Write
// replaces the file atomically: a temporary file is written and synced,
// renamed over the old one, and the directory synced, so a crash leaves
// either the old or the new offsets, never a torn file.
type FileOffsetStore struct {
	path string

	mu    sync.Mutex
	state *offsetState

	beforeRename func() error // test hook: a crash between write and rename
}

var _ OffsetStore = (*FileOffsetStore)(nil)

// OpenFileOffsetStore loads path (a missing or empty file is no offsets). A
// temporary file left by a crash is ignored and later overwritten.
func OpenFileOffsetStore(path string, logger *slog.Logger) (*FileOffsetStore, error) {
	logger = orDiscard(logger)
	s := &FileOffsetStore{path: path, state: newOffsetState(logger.With("store", "offsets", "file", path))}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading offsets file: %w", err)
	}
	if len(b) == 0 {
		return s, nil
	}
	values, err := readJavaOffsets(b)
	if err != nil {
		return nil, fmt.Errorf("offsets file %s: %w", path, err)
	}
	for k, v := range values {
		s.state.apply([]byte(k), v)
	}
	return s, nil
}

// Offsets answers from memory: the file only changes through Write.
func (s *FileOffsetStore) Offsets(_ context.Context, connector string) ([]ConnectorOffset, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.offsets(connector), nil
}

// Write rewrites the file with the batch applied; on error nothing changed.
func (s *FileOffsetStore) Write(_ context.Context, connector string, offsets []ConnectorOffset) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	enc, err := s.state.encodeOffsets(connector, offsets)
	if err != nil {
		return fmt.Errorf("writing offsets of connector %q: %w", connector, err)
	}
	next := maps.Clone(s.state.values)
	for _, e := range enc {
		if e.value == nil {
			delete(next, string(e.key))
		} else {
			next[string(e.key)] = e.value
		}
	}
	if err := s.replace(writeJavaOffsets(next)); err != nil {
		return fmt.Errorf("writing offsets file %s: %w", s.path, err)
	}
	for _, e := range enc {
		s.state.apply(e.key, e.value)
	}
	return nil
}

// replace swaps the file's content atomically and durably.
func (s *FileOffsetStore) replace(b []byte) error {
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if s.beforeRename != nil {
		if err := s.beforeRename(); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return err
	}
	// The rename is durable only once the directory entry is.
	d, err := os.Open(filepath.Dir(s.path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close does nothing: every Write is already on disk.
func (s *FileOffsetStore) Close() error { return nil }
