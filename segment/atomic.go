package segment

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces the file at path with data so that a crash
// leaves either the old content or the new, never a mix, a torn file or
// none: it writes path+".tmp", fsyncs it, renames it over path and fsyncs
// the directory, without which the rename itself may be lost. It is the one
// way Sluice writes the small files it must find again after a crash
// (checkpoints, leader epochs, producer snapshots, partition.metadata,
// meta.properties, the cluster metadata, the clean-shutdown marker).
//
// A leftover path+".tmp" is what an interrupted write leaves; readers
// ignore it and the next write replaces it. A failed fsync, of the file or
// of the directory, is not retried here: a later one may "succeed" over
// pages the kernel dropped (see ErrLogPoisoned), so the caller must treat
// the file as unknown. Errors name the step and the file.
func WriteFileAtomic(fsys FS, path string, data []byte) error {
	if err := replaceFile(fsys, path, data); err != nil {
		return err
	}
	return syncDir(fsys, filepath.Dir(path))
}

// replaceFile is WriteFileAtomic but for the directory's fsync, for a
// caller that replaces several files of one directory and fsyncs it once.
// A failed fsync is marked poisonous (syncFailed), for a Log to settle.
func replaceFile(fsys FS, path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return syncFailed(fmt.Errorf("fsync %s: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// syncDir fsyncs dir, marking a failure poisonous: the renames, creations
// and removals it stood for may be lost.
func syncDir(fsys FS, dir string) error {
	if err := fsys.SyncDir(dir); err != nil {
		return syncFailed(fmt.Errorf("fsync dir %s: %w", dir, err))
	}
	return nil
}

// ReadFile reads a whole small file (what WriteFileAtomic wrote) through
// fsys.
func ReadFile(fsys FS, path string) ([]byte, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
