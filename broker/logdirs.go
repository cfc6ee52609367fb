package broker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/segment"
)

// This file is the one place that opens log directories, and where the
// data-safety rules live (docs/architecture.md, Data safety): every dir is
// locked before anything in it is read (lockLogDirs, logdir_lock.go); what
// a dir holds is read before anything is written, and a dir of another
// cluster or node is refused (openLogDirs); a partition directory that
// cannot be read is left as it is and its partition goes offline, never
// deleted or recreated (partitionDir); one that is not this partition's
// data is renamed aside as a stray, never deleted (setAside).

// openLogDirs reads what each locked log dir holds, opens the cluster
// metadata from the one that has it (writing the identity of new dirs) and
// takes the clean-shutdown markers; unclean is whether the last run died
// with data in a dir. The metadata store writes through storeFS, the
// broker's FS without its storage-health watch: a metadata write that
// succeeds says nothing of the partition whose write failed, and must not
// clear its dir's failure (storage_errors.go).
func openLogDirs(fsys, storeFS segment.FS, paths []string, nodeID int32, logger *slog.Logger) (_ *controller.Store, unclean bool, err error) {
	dirs := make([]*logDir, len(paths))
	for i, dir := range paths {
		if dirs[i], err = scanLogDir(fsys, dir); err != nil {
			return nil, false, err
		}
	}
	meta, err := openMetadata(fsys, storeFS, dirs, nodeID, logger)
	if err != nil {
		return nil, false, err
	}
	return meta, takeCleanShutdownMarkers(fsys, dirs), nil
}

// logDir is what start-up finds in one log directory before it trusts it.
type logDir struct {
	path     string
	props    *metaProperties // nil: no meta.properties
	parts    []string        // partition directory names
	metadata bool            // holds the cluster metadata file
	marker   bool            // holds the clean shutdown marker
}

// scanLogDir reads, without changing anything, what dir holds.
func scanLogDir(fsys segment.FS, dir string) (*logDir, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("broker: read log dir %s: %w", dir, err)
	}
	ld := &logDir{path: dir}
	for _, n := range names {
		switch {
		case n == controller.MetadataFile:
			ld.metadata = true
		case n == cleanShutdownFile:
			ld.marker = true
		default:
			if _, _, ok := parsePartitionDirName(n); ok {
				ld.parts = append(ld.parts, n)
			}
		}
	}
	if ld.props, err = readMetaProperties(fsys, dir); err != nil {
		return nil, fmt.Errorf("%w; restore it from a backup (or write this cluster's version, cluster.id and node.id into it, as in the other log dirs), or remove %s from log.dirs", err, dir)
	}
	return ld, nil
}

// openMetadata finds the cluster metadata in whichever log directory holds
// it (so the order of log.dirs does not matter), checks every directory's
// identity against it and writes the identity of directories that have none
// yet. It never takes a missing or unreadable metadata file for a new
// cluster while partition data exists: that would make every partition a
// stray, __consumer_offsets included.
func openMetadata(fsys, storeFS segment.FS, dirs []*logDir, nodeID int32, logger *slog.Logger) (*controller.Store, error) {
	// Directories that disagree among themselves are refused before the
	// metadata is looked for: a second cluster's dir brings its own.
	for _, d := range dirs {
		if d.props != nil {
			if err := checkIdentities(dirs, d.props.clusterID, nodeID); err != nil {
				return nil, err
			}
			break
		}
	}
	var holders []string
	for _, d := range dirs {
		if d.metadata {
			holders = append(holders, d.path)
		}
	}
	var meta *controller.Store
	var err error
	switch len(holders) {
	case 0:
		if err := refuseNewCluster(dirs); err != nil {
			return nil, err
		}
		if meta, err = controller.Create(storeFS, dirs[0].path, nodeID, logger); err != nil {
			return nil, err
		}
	case 1:
		path := filepath.Join(holders[0], controller.MetadataFile)
		if meta, err = controller.Load(storeFS, holders[0], nodeID, logger); err != nil {
			return nil, fmt.Errorf("broker: %w; the broker will not start without its cluster metadata, which says what every partition directory is: restore %s from a backup", err, path)
		}
		if d := firstWithData(dirs); d != nil && len(meta.Image().TopicNames()) == 0 {
			return nil, fmt.Errorf("broker: cluster metadata %s names no topics, but %s holds partition directories (%s); "+
				"starting would set them all aside as strays. Restore %s from a backup, or, if that data is not wanted, move those directories out of the log dir",
				path, d.path, strings.Join(d.parts, ", "), path)
		}
	default:
		return nil, fmt.Errorf("broker: %s is in more than one log dir (%s); keep the one this cluster last wrote and move the others away",
			controller.MetadataFile, strings.Join(holders, ", "))
	}
	if err := checkIdentities(dirs, meta.ClusterID(), nodeID); err != nil {
		return nil, err
	}
	for _, d := range dirs {
		if err := writeIdentity(fsys, d, meta.ClusterID(), nodeID, logger); err != nil {
			return nil, err
		}
	}
	return meta, nil
}

// refuseNewCluster is the check before a fresh cluster id is made: only
// when no log directory holds partition data or another identity.
func refuseNewCluster(dirs []*logDir) error {
	var paths []string
	for _, d := range dirs {
		paths = append(paths, d.path)
	}
	way := fmt.Sprintf("restore %s from a backup into the log dir that held it, or, to start a new empty cluster, move the contents of the log dirs elsewhere", controller.MetadataFile)
	if d := firstWithData(dirs); d != nil {
		return fmt.Errorf("broker: cluster metadata file %s is in none of the log dirs (%s), but %s holds partition directories (%s); refusing to start as a new cluster, which would orphan them: %s",
			controller.MetadataFile, strings.Join(paths, ", "), d.path, strings.Join(d.parts, ", "), way)
	}
	for _, d := range dirs {
		if d.props != nil {
			return fmt.Errorf("broker: cluster metadata file %s is in none of the log dirs (%s), but %s belongs to cluster %s (its %s); refusing to start as a new cluster: %s",
				controller.MetadataFile, strings.Join(paths, ", "), d.path, d.props.clusterID, metaPropertiesFile, way)
		}
	}
	return nil
}

func firstWithData(dirs []*logDir) *logDir {
	for _, d := range dirs {
		if len(d.parts) > 0 {
			return d
		}
	}
	return nil
}

// checkIdentities refuses a directory of another cluster or node, and two
// directories with one directory.id (one was copied from the other).
func checkIdentities(dirs []*logDir, clusterID string, nodeID int32) error {
	ids := map[string]string{}
	for _, d := range dirs {
		if d.props == nil {
			continue
		}
		path := filepath.Join(d.path, metaPropertiesFile)
		if d.props.clusterID != clusterID {
			return fmt.Errorf("broker: Invalid cluster.id in: %s. Expected %s, but read %s. The directory belongs to another cluster; remove it from log.dirs", path, clusterID, d.props.clusterID)
		}
		if d.props.nodeID != nodeID {
			return fmt.Errorf("broker: Stored node id %d doesn't match this broker's node.id %d in %s. The directory belongs to another node; remove it from log.dirs or fix node.id", d.props.nodeID, nodeID, path)
		}
		if id := d.props.directoryID; id != "" {
			if other, dup := ids[id]; dup {
				return fmt.Errorf("broker: log dirs %s and %s have the same directory.id %s: one is a copy of the other; give the copy a new identity by removing its directory.id line", other, d.path, id)
			}
			ids[id] = d.path
		}
	}
	return nil
}

// writeIdentity gives a directory without meta.properties (new, or written
// by a Sluice before the file existed) its identity, and one without a
// directory.id its id, as Kafka writes one back.
func writeIdentity(fsys segment.FS, d *logDir, clusterID string, nodeID int32, logger *slog.Logger) error {
	switch {
	case d.props == nil:
		d.props = &metaProperties{clusterID: clusterID, nodeID: nodeID, directoryID: newDirectoryID()}
		if len(d.parts) > 0 {
			logger.Info("log dir had no meta.properties (written by an older Sluice); adopting it", "dir", d.path, "cluster_id", clusterID, "directory_id", d.props.directoryID)
		} else {
			logger.Info("formatted log dir", "dir", d.path, "cluster_id", clusterID, "directory_id", d.props.directoryID)
		}
	case d.props.directoryID == "":
		d.props.directoryID = newDirectoryID()
		logger.Info("log dir had no directory.id; writing one", "dir", d.path, "directory_id", d.props.directoryID)
	default:
		return nil
	}
	return writeMetaProperties(fsys, d.path, d.props)
}

// takeCleanShutdownMarkers removes the markers before anything else is
// written, so that a crash from here on is seen as unclean by the next
// start; it reports whether the last run died with data in a directory.
func takeCleanShutdownMarkers(fsys segment.FS, dirs []*logDir) (unclean bool) {
	for _, d := range dirs {
		if !d.marker {
			unclean = unclean || len(d.parts) > 0
			continue
		}
		if err := fsys.Remove(filepath.Join(d.path, cleanShutdownFile)); err == nil {
			_ = fsys.SyncDir(d.path)
		}
	}
	return unclean
}

// straySuffix names a directory set aside, as Kafka's
// <topic>-<partition>.<id>-stray: out of the way of a new partition of the
// same name, kept for an operator to inspect or delete.
const straySuffix = "-stray"

// parsePartitionDirName splits "<topic>-<partition>"; names of set-aside
// directories and anything else are not partition directories.
func parsePartitionDirName(name string) (string, int32, bool) {
	if strings.HasSuffix(name, straySuffix) {
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
// to a -stray name and says so at WARN. Nothing at start-up deletes one: a
// directory the metadata does not name may still hold the only copy of
// acknowledged records.
func setAside(fsys segment.FS, logDir, name, why string, logger *slog.Logger) error {
	var r [16]byte
	_, _ = rand.Read(r[:])
	to := name + "." + hex.EncodeToString(r[:]) + straySuffix
	if err := fsys.Rename(filepath.Join(logDir, name), filepath.Join(logDir, to)); err != nil {
		return fmt.Errorf("broker: set aside %s: %w", filepath.Join(logDir, name), err)
	}
	if err := fsys.SyncDir(logDir); err != nil {
		return fmt.Errorf("broker: set aside %s: %w", filepath.Join(logDir, name), err)
	}
	logger.Warn("partition directory set aside as a stray; it is kept, not deleted: inspect it, then delete it or move its data back yourself",
		"dir", filepath.Join(logDir, name), "renamed_to", to, "reason", why)
	return nil
}

// partitionMetadataFile ties a partition directory to its topic's ID, so a
// directory left behind by a deleted topic is never mistaken for the data of
// a new topic of the same name.
const partitionMetadataFile = "partition.metadata"

// partitionDir returns the log directory that holds (or will hold) a
// partition: the one where it exists with the right topic ID; else, at
// start-up, one where it exists without partition.metadata (the file was
// lost: the name and the directory's identity say it is ours, so it is
// adopted; for a partition being created now such a directory is a
// leftover and is set aside); else the log directory with the fewest
// partitions. A directory whose file names
// another topic ID (a leftover of a deleted topic with the same name) is
// set aside. One whose file cannot be read is returned as offline: it
// might be ours, so nothing is decided and nothing touched.
func (r *topicRegistry) partitionDir(mt *controller.Topic, p int32) (dir string, offline, err error) {
	name := partitionDirName(mt.Name, p)
	want := mt.ID.String()
	fsys, logger := r.b.fs, r.b.logger
	var adopt, broken string
	var brokenErr error
	for _, dir := range r.b.cfg.LogDirs {
		pd := filepath.Join(dir, name)
		if _, err := fsys.ReadDir(pd); errNotExist(err) {
			continue
		} else if err != nil {
			if broken == "" {
				broken, brokenErr = dir, fmt.Errorf("partition directory %s: %w", pd, err)
			}
			continue
		}
		id, err := readPartitionMetadata(fsys, pd)
		switch {
		case err == nil && id == want:
			return dir, nil, nil
		case err == nil:
			why := fmt.Sprintf("its %s names topic id %s, topic %s is %s now", partitionMetadataFile, id, mt.Name, want)
			if err := setAside(fsys, dir, name, why, logger); err != nil {
				return "", nil, err
			}
		case errNotExist(err) && !r.loading:
			why := fmt.Sprintf("it has no %s and partition %d of topic %s is being created now", partitionMetadataFile, p, mt.Name)
			if err := setAside(fsys, dir, name, why, logger); err != nil {
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
		logger.Warn("partition directory has no "+partitionMetadataFile+"; keeping its data and writing the file for the topic the metadata names",
			"dir", pd, "topic_id", want)
		if err := writePartitionMetadata(fsys, pd, want); err != nil {
			return "", nil, fmt.Errorf("partition %s: %w", pd, err)
		}
		return adopt, nil, nil
	}
	best, bestN := "", -1
	for _, dir := range r.b.cfg.LogDirs {
		entries, _ := fsys.ReadDir(dir)
		if best == "" || len(entries) < bestN {
			best, bestN = dir, len(entries)
		}
	}
	pd := filepath.Join(best, name)
	if err := fsys.MkdirAll(pd, 0o755); err != nil {
		return "", nil, err
	}
	if err := writePartitionMetadata(fsys, pd, want); err != nil {
		return "", nil, fmt.Errorf("partition %s: %w", pd, err)
	}
	return best, nil, nil
}

// errBadPartitionMetadata is a partition.metadata that reads but says
// nothing usable; like an unreadable one, it takes the partition offline.
var errBadPartitionMetadata = errors.New("malformed " + partitionMetadataFile)

func readPartitionMetadata(fsys segment.FS, dir string) (string, error) {
	path := filepath.Join(dir, partitionMetadataFile)
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

func writePartitionMetadata(fsys segment.FS, dir, id string) error {
	return writeFileAtomic(fsys, dir, partitionMetadataFile, []byte("version: 0\ntopic_id: "+id+"\n"))
}

// setStraysAside renames the partition directories no open topic uses:
// those of a topic deleted while the broker was down or whose deletion a
// crash cut short, and second copies of a partition in another log dir.
func (r *topicRegistry) setStraysAside() {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, dir := range r.b.cfg.LogDirs {
		names, err := r.b.fs.ReadDir(dir)
		if err != nil {
			r.b.logger.Error("listing log dir for strays", "dir", dir, "err", err)
			continue
		}
		for _, name := range names {
			topic, p, ok := parsePartitionDirName(name)
			if !ok {
				continue
			}
			t := r.m[topic]
			why := "its topic is not in the cluster metadata"
			switch {
			case t != nil && int(p) < len(t.dirs) && t.dirs[p] == dir:
				continue
			case t != nil && int(p) < len(t.dirs):
				why = "the partition is served from " + t.dirs[p]
			case t != nil:
				why = "the topic has " + strconv.Itoa(len(t.dirs)) + " partitions"
			}
			if err := setAside(r.b.fs, dir, name, why, r.b.logger); err != nil {
				r.b.logger.Error("setting a stray partition directory aside; it stays where it is", "dir", filepath.Join(dir, name), "err", err)
			}
		}
	}
}

// errNotExist reports a missing file through any FS.
func errNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
