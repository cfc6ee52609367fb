package controller

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/sluice-io/sluice/segment"
)

// recordLog is where a Store keeps its committed record batches: the seam
// between what the controller decides (State, plans, Images) and how the
// batches are stored. fileLog, the default, is the single node's snapshot
// and JSON-lines log in a log directory; replicatedLog (replicated_log.go)
// is the metadata log the controller voters replicate (metarepl). Records
// travel as EncodeRecord's bytes, so a log may carry them opaquely.
//
// The Store calls it under its lock, one call at a time, and owns the
// offsets: a batch at offset is always the one after everything before.
type recordLog interface {
	// append makes rs, the batch whose first record gets offset, durable
	// (committed) before it returns; after is the State holding every
	// record up to the batch's end, for a log that folds itself into
	// snapshots. An error means the batch must not be published: it may
	// or may not be kept.
	append(offset int64, rs []Record, after *State) error
	// batchesFrom returns the committed batches from offset from on,
	// whole, up to maxBytes of their encoding (at least one when there
	// is one), or ErrSnapshotNeeded when from is not the start of a batch
	// the log still holds. The Store answers from == its end itself; a
	// replicated log may answer none for a moment after an append.
	batchesFrom(from int64, maxBytes int) ([]Batch, error)
	// close is a clean shutdown with st, which holds every record before
	// next; a failure loses nothing committed.
	close(st *State, next int64) error
}

// fileLog is the single node's record log: MetadataFile, the snapshot, and
// MetadataLogFile, the batches after it (metaLog), in one log directory. It
// folds the log into a new snapshot every compactAfterBatches batches or
// compactAfterBytes bytes, after a failed append, and at close.
type fileLog struct {
	fs     segment.FS
	dir    string
	nodeID int32
	logger *slog.Logger
	log    metaLog
}

func newFileLog(fsys segment.FS, dir string, nodeID int32, logger *slog.Logger) *fileLog {
	return &fileLog{fs: fsys, dir: dir, nodeID: nodeID, logger: logger,
		log: metaLog{fs: fsys, path: filepath.Join(dir, MetadataLogFile), logger: logger}}
}

func (f *fileLog) append(offset int64, rs []Record, after *State) error {
	end := offset + int64(len(rs))
	if f.log.broken {
		// A failed append may have left part of a batch at the log's
		// end: never append after it; a new snapshot replaces both.
		return f.compact(after, end)
	}
	if err := f.log.append(offset, rs); err != nil {
		return err
	}
	if f.log.batches >= compactAfterBatches || f.log.size >= compactAfterBytes {
		if err := f.compact(after, end); err != nil {
			// The batch is durable in the log; the next change or
			// start compacts again.
			f.logger.Warn("compacting the cluster metadata log", "err", err)
		}
	}
	return nil
}

func (f *fileLog) batchesFrom(from int64, maxBytes int) ([]Batch, error) {
	return f.log.batchesFrom(from, maxBytes)
}

// close folds the log into the snapshot, so that after a clean shutdown
// the snapshot alone holds the whole metadata.
func (f *fileLog) close(st *State, next int64) error {
	if f.log.batches == 0 && !f.log.broken {
		return nil
	}
	return f.compact(st, next)
}

// compact writes st, which holds every record before offset, as the
// snapshot, then empties the log. A crash between the two leaves batches
// the snapshot already holds; replay skips them by offset.
func (f *fileLog) compact(st *State, offset int64) error {
	b, err := json.MarshalIndent(snapshotFile{State: st, NodeID: f.nodeID, Version: snapshotVersion, Offset: offset}, "", "  ")
	if err != nil {
		return fmt.Errorf("controller: encode metadata: %w", err)
	}
	if err := segment.WriteFileAtomic(f.fs, filepath.Join(f.dir, metadataFile), b); err != nil {
		return fmt.Errorf("controller: persist metadata: %w", err)
	}
	return f.log.reset()
}
