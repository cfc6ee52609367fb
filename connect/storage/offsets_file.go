package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// FileOffsetStore keeps a standalone worker's source offsets in one local
// file (offset.storage.file.filename). Every Write replaces the file
// atomically: a temporary file is written and synced, renamed over the old
// one, and the directory synced, so a crash leaves either the old or the
// new offsets, never a torn file.
//
// The file is JSON, {"version":1,"offsets":[{"key":K,"value":V}]}, where K
// and V are the key and value the offsets topic would hold. Kafka Connect's
// own file (Java serialization) is recognised and refused.
type FileOffsetStore struct {
	path string

	mu    sync.Mutex
	state *offsetState

	beforeRename func() error // test hook: a crash between write and rename
}

var _ OffsetStore = (*FileOffsetStore)(nil)

const offsetFileVersion = 1

type offsetFile struct {
	Version int               `json:"version"`
	Offsets []offsetFileEntry `json:"offsets"`
}

type offsetFileEntry struct {
	Key   json.RawMessage `json:"key"`
	Value json.RawMessage `json:"value"`
}

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
	if len(bytes.TrimSpace(b)) == 0 {
		return s, nil
	}
	if bytes.HasPrefix(b, []byte{0xac, 0xed}) {
		return nil, fmt.Errorf("offsets file %s was written by Kafka Connect (Java serialization), which sluice cannot read: move it away to start from no offsets", path)
	}
	var f offsetFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("offsets file %s: %w", path, err)
	}
	if f.Version != offsetFileVersion {
		return nil, fmt.Errorf("offsets file %s has version %d, want %d", path, f.Version, offsetFileVersion)
	}
	for _, e := range f.Offsets {
		var v []byte
		if len(e.Value) > 0 && string(e.Value) != "null" {
			v = e.Value
		}
		s.state.apply(e.Key, v)
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
	keys := make([]string, 0, len(next))
	for k := range next {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	f := offsetFile{Version: offsetFileVersion, Offsets: make([]offsetFileEntry, len(keys))}
	for i, k := range keys {
		f.Offsets[i] = offsetFileEntry{Key: json.RawMessage(k), Value: next[k]}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encoding offsets file: %w", err)
	}
	if err := s.replace(append(b, '\n')); err != nil {
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
