package broker

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/replicamgr"
	"github.com/sluice-io/sluice/segment"
)

// This file is the one place that opens log directories, and where the
// data-safety rules about them live (docs/architecture.md, Data safety):
// every dir is locked before anything in it is read (lockLogDirs,
// logdir_lock.go); what a dir holds is read before anything is written,
// and a dir of another cluster or node is refused (openLogDirs). The rules
// about partition directories in them (offline when unreadable, strays set
// aside, never deleted) are the replica manager's (replicamgr/logdirs.go).

// openLogDirs reads what each locked log dir holds, opens the cluster
// metadata from the one that has it (writing the identity of new dirs) and
// takes the clean-shutdown markers; unclean is whether the last run died
// with data in a dir. The metadata store writes through storeFS, the
// broker's FS without its storage-health watch: a metadata write that
// succeeds says nothing of the partition whose write failed, and must not
// clear its dir's failure (storage_errors.go).
//
// A source given (Deps.Metadata) replaces the local store: the dirs'
// identity is checked against its cluster id and no metadata file is
// looked for or created.
func openLogDirs(fsys, storeFS segment.FS, paths []string, nodeID int32, source MetadataSource, logger *slog.Logger) (_ MetadataSource, unclean bool, err error) {
	dirs := make([]*logDir, len(paths))
	for i, dir := range paths {
		if dirs[i], err = scanLogDir(fsys, dir); err != nil {
			return nil, false, err
		}
	}
	meta := source
	if meta == nil {
		if meta, err = openMetadata(fsys, storeFS, dirs, nodeID, logger); err != nil {
			return nil, false, err
		}
	}
	if err := adoptIdentity(fsys, dirs, meta.ClusterID(), nodeID, logger); err != nil {
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
			if _, _, ok := replicamgr.ParseDirName(n); ok {
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
	return meta, nil
}

// adoptIdentity checks every directory's identity against the cluster's
// and writes the identity of directories that have none yet.
func adoptIdentity(fsys segment.FS, dirs []*logDir, clusterID string, nodeID int32, logger *slog.Logger) error {
	if err := checkIdentities(dirs, clusterID, nodeID); err != nil {
		return err
	}
	for _, d := range dirs {
		if err := writeIdentity(fsys, d, clusterID, nodeID, logger); err != nil {
			return err
		}
	}
	return nil
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

// errNotExist reports a missing file through any FS.
func errNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
