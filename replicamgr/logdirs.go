package replicamgr

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/segment"
)

// This file is where a replica's directory is chosen and where the
// data-safety rules about partition directories live (docs/architecture.md,
// Data safety): one that cannot be read is left as it is and its partition
// goes offline, never deleted or recreated (partitionDir); one that is not
// this partition's data is renamed aside as a stray, never deleted
// (setAside). The log dirs themselves (locks, identities, the cluster
// metadata, the clean-shutdown markers) are opened by the broker.

// PartitionMetadataFile ties a partition directory to its topic's ID, so a
// directory left behind by a deleted topic is never mistaken for the data of
// a new topic of the same name.
const PartitionMetadataFile = "partition.metadata"

// StraySuffix names a directory set aside, as Kafka's
// <topic>-<partition>.<id>-stray: out of the way of a new partition of the
// same name, kept for an operator to inspect or delete.
const StraySuffix = "-stray"

// DirName is a partition's directory name in its log dir.
func DirName(topic string, p int32) string { return topic + "-" + strconv.Itoa(int(p)) }

// ParseDirName splits "<topic>-<partition>"; names of set-aside
// directories and anything else are not partition directories.
func ParseDirName(name string) (string, int32, bool) {
	if strings.HasSuffix(name, StraySuffix) {
		return "", 0, false
	}
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || i == len(name)-1 {
		return "", 0, false
	}
	for _, c := range name[i+1:] {
		if c < '0' || c > '9' {
			return "", 0, false
		}
	}
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || controller.ValidateTopicName(name[:i]) != nil {
		return "", 0, false
	}
	return name[:i], int32(p), true
}

// setAside renames a partition directory that is not this partition's data
// to a -stray name and says so at WARN. Nothing deletes one: a directory
// the metadata does not name may still hold the only copy of acknowledged
// records.
func (m *Manager) setAside(logDir, name, why string) error {
	var r [16]byte
	_, _ = rand.Read(r[:])
	to := name + "." + hex.EncodeToString(r[:]) + StraySuffix
	if err := m.fs.Rename(filepath.Join(logDir, name), filepath.Join(logDir, to)); err != nil {
		return fmt.Errorf("replicamgr: set aside %s: %w", filepath.Join(logDir, name), err)
	}
	if err := m.fs.SyncDir(logDir); err != nil {
		return fmt.Errorf("replicamgr: set aside %s: %w", filepath.Join(logDir, name), err)
	}
	m.logger.Warn("partition directory set aside as a stray; it is kept, not deleted: inspect it, then delete it or move its data back yourself",
		"dir", filepath.Join(logDir, name), "renamed_to", to, "reason", why)
	return nil
}

// partitionDir returns the log directory that holds (or will hold) a
// partition: the one where it exists with the right topic ID; else, at
// start-up, one where it exists without partition.metadata (the file was
// lost: the name and the directory's identity say it is ours, so it is
// adopted; for a partition being created now such a directory is a
// leftover and is set aside); else the log directory with the fewest
// entries. A directory whose file names another topic ID (a leftover of a
// deleted topic with the same name) is set aside. One whose file cannot be
// read is returned as offline: it might be ours, so nothing is decided and
// nothing touched.
func (m *Manager) partitionDir(mt *controller.Topic, p int32) (dir string, offline, err error) {
	name := DirName(mt.Name, p)
	want := mt.ID.String()
	var adopt, broken string
	var brokenErr error
	for _, dir := range m.cfg.LogDirs {
		pd := filepath.Join(dir, name)
		if _, err := m.fs.ReadDir(pd); errNotExist(err) {
			continue
		} else if err != nil {
			if broken == "" {
				broken, brokenErr = dir, fmt.Errorf("partition directory %s: %w", pd, err)
			}
			continue
		}
		id, err := ReadPartitionMetadata(m.fs, pd)
		switch {
		case err == nil && id == want:
			return dir, nil, nil
		case err == nil:
			why := fmt.Sprintf("its %s names topic id %s, topic %s is %s now", PartitionMetadataFile, id, mt.Name, want)
			if err := m.setAside(dir, name, why); err != nil {
				return "", nil, err
			}
		case errNotExist(err) && !m.loading:
			why := fmt.Sprintf("it has no %s and partition %d of topic %s is being created now", PartitionMetadataFile, p, mt.Name)
			if err := m.setAside(dir, name, why); err != nil {
				return "", nil, err
			}
		case errNotExist(err):
			if adopt == "" {
				adopt = dir
			}
		case broken == "":
			broken, brokenErr = dir, err
		}
	}
	switch {
	case broken != "":
		return broken, brokenErr, nil
	case adopt != "":
		pd := filepath.Join(adopt, name)
		m.logger.Warn("partition directory has no "+PartitionMetadataFile+"; keeping its data and writing the file for the topic the metadata names",
			"dir", pd, "topic_id", want)
		if err := WritePartitionMetadata(m.fs, pd, want); err != nil {
			return "", nil, fmt.Errorf("partition %s: %w", pd, err)
		}
		return adopt, nil, nil
	}
	best := m.dirCounts.pick(m.cfg.LogDirs, func(dir string) int {
		entries, _ := m.fs.ReadDir(dir)
		return len(entries)
	})
	pd := filepath.Join(best, name)
	if err := m.fs.MkdirAll(pd, 0o755); err != nil {
		return "", nil, err
	}
	if err := WritePartitionMetadata(m.fs, pd, want); err != nil {
		return "", nil, fmt.Errorf("partition %s: %w", pd, err)
	}
	return best, nil, nil
}

// errBadPartitionMetadata is a partition.metadata that reads but says
// nothing usable; like an unreadable one, it takes the partition offline.
var errBadPartitionMetadata = errors.New("malformed " + PartitionMetadataFile)

// ReadPartitionMetadata returns the topic id dir's partition.metadata
// names. A missing file's error satisfies errors.Is(err, fs.ErrNotExist).
func ReadPartitionMetadata(fsys segment.FS, dir string) (string, error) {
	path := filepath.Join(dir, PartitionMetadataFile)
	b, err := segment.ReadFile(fsys, path)
	if err != nil {
		return "", err // keeps fs.ErrNotExist visible: a missing file is adopted
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "topic_id: "); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("%s: %w: no topic_id line in %d bytes", path, errBadPartitionMetadata, len(b))
}

// WritePartitionMetadata writes dir's partition.metadata, atomically.
func WritePartitionMetadata(fsys segment.FS, dir, id string) error {
	return segment.WriteFileAtomic(fsys, filepath.Join(dir, PartitionMetadataFile), []byte("version: 0\ntopic_id: "+id+"\n"))
}

// setStraysAside renames the partition directories no replica uses: those
// of a topic deleted while the broker was down or whose deletion a crash
// cut short, of partitions not assigned to this node, and second copies of
// a partition in another log dir.
func (m *Manager) setStraysAside() {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, dir := range m.cfg.LogDirs {
		names, err := m.fs.ReadDir(dir)
		if err != nil {
			m.logger.Error("listing log dir for strays", "dir", dir, "err", err)
			continue
		}
		for _, name := range names {
			topic, p, ok := ParseDirName(name)
			if !ok {
				continue
			}
			t := m.byName[topic]
			why := "its topic is not in the cluster metadata"
			switch {
			case t != nil && int(p) < len(t.Partitions) && t.Partitions[p].Dir == dir:
				continue
			case t != nil && int(p) < len(t.Partitions) && t.Partitions[p].Role == NotHosted:
				why = "this node is not a replica of the partition"
			case t != nil && int(p) < len(t.Partitions):
				why = "the partition is served from " + t.Partitions[p].Dir
			case t != nil:
				why = "the topic has " + strconv.Itoa(len(t.Partitions)) + " partitions"
			}
			if err := m.setAside(dir, name, why); err != nil {
				m.logger.Error("setting a stray partition directory aside; it stays where it is", "dir", filepath.Join(dir, name), "err", err)
			}
		}
	}
}

// RemoveCreatedDirs removes the directories of mt's partitions from index
// `from` on after a create that failed to open them was rolled back, but
// only those that create made: they hold no record, and their
// partition.metadata names mt's topic id or was never written. Anything
// else (a directory with data, one of another topic id, one that cannot be
// read, one a replica is open on) is left alone.
func (m *Manager) RemoveCreatedDirs(mt *controller.Topic, from int32) {
	m.admin.Lock()
	defer m.admin.Unlock()
	open := m.TopicByID(mt.ID)
	for _, mp := range mt.Partitions[from:] {
		if open != nil && int(mp.Index) < len(open.Partitions) && open.Partitions[mp.Index].Replica != nil {
			continue
		}
		for _, dir := range m.cfg.LogDirs {
			pd := filepath.Join(dir, DirName(mt.Name, mp.Index))
			if !m.madeByCreate(pd, mt.ID) {
				continue
			}
			if err := m.fs.RemoveAll(pd); err != nil {
				m.logger.Error("removing the directory of a failed create", "dir", pd, "err", err)
			}
		}
	}
}

// madeByCreate reports whether pd holds no record bytes (every .log empty)
// and names the topic id, or nothing.
func (m *Manager) madeByCreate(pd string, id controller.TopicID) bool {
	names, err := m.fs.ReadDir(pd)
	if err != nil {
		return false
	}
	f, err := m.fs.OpenFile(filepath.Join(pd, PartitionMetadataFile), os.O_RDONLY, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// The create failed before writing it.
	case err != nil:
		return false
	default:
		meta, err := io.ReadAll(f)
		f.Close()
		if err != nil || !bytes.Contains(meta, []byte("topic_id: "+id.String()+"\n")) {
			return false
		}
	}
	for _, n := range names {
		if !strings.HasSuffix(n, ".log") {
			continue
		}
		f, err := m.fs.OpenFile(filepath.Join(pd, n), os.O_RDONLY, 0)
		if err != nil {
			return false
		}
		size, err := f.Size()
		f.Close()
		if err != nil || size > 0 {
			return false
		}
	}
	return true
}

// errNotExist reports a missing file through any FS.
func errNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
