package broker

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/replica"
)

// A CreateTopics or CreatePartitions is recorded in the metadata first and
// its partitions opened after. When opening fails (out of file descriptors,
// a full disk, any storage error) the change is undone here, so that the
// metadata never names partitions without a log: such a topic could be
// neither used nor deleted, and the next start would try, and fail, to open
// it again.

// closeUnpublished closes partitions that a failed open had opened but not
// yet published, so their descriptors are not leaked: a create fails most
// often precisely because descriptors ran out.
func closeUnpublished(parts []*replica.Partition, logger *slog.Logger) {
	for _, p := range parts {
		if p == nil {
			continue // offline, nothing open
		}
		if err := p.Close(); err != nil {
			logger.Error("closing a partition of a failed create", "err", err)
		}
	}
}

// undoCreate takes a topic whose partitions failed to open back out of the
// metadata and removes the directories this create made for it.
func (b *Broker) undoCreate(mt *controller.Topic, cause error) {
	_, err := b.meta.Commit(func(s *controller.State) ([]controller.Record, error) {
		return s.PlanUndoCreateTopic(mt.Name, mt.ID), nil
	})
	if err != nil {
		b.logger.Error("topic creation failed and could not be rolled back: the topic stays in the metadata without its partitions until the broker is restarted",
			"topic", mt.Name, "cause", cause, "err", err)
		return
	}
	b.removeCreatedDirs(mt, 0)
	b.logger.Error("topic creation failed and was rolled back", "topic", mt.Name, "partitions", len(mt.Partitions), "cause", cause)
}

// undoGrow shrinks a topic whose new partitions failed to open back to had
// partitions and removes the directories made for the new ones.
func (b *Broker) undoGrow(mt *controller.Topic, had int32, cause error) {
	_, err := b.meta.Commit(func(s *controller.State) ([]controller.Record, error) {
		return s.PlanUndoCreatePartitions(mt.Name, mt.ID, had, int32(len(mt.Partitions))), nil
	})
	if err != nil {
		b.logger.Error("adding partitions failed and could not be rolled back: the new partitions stay in the metadata without logs until the broker is restarted",
			"topic", mt.Name, "cause", cause, "err", err)
		return
	}
	b.removeCreatedDirs(mt, had)
	b.logger.Error("adding partitions failed and was rolled back", "topic", mt.Name, "partitions", had, "asked", len(mt.Partitions), "cause", cause)
}

// removeCreatedDirs removes the directories of mt's partitions from index
// `from` on, but only those this very create made: they hold no record, and
// their partition.metadata names mt's new topic id or was never written.
// Anything else (a directory with data, one of another topic id, one that
// cannot be read) is left alone.
func (b *Broker) removeCreatedDirs(mt *controller.Topic, from int32) {
	for _, mp := range mt.Partitions[from:] {
		for _, dir := range b.cfg.LogDirs {
			pd := filepath.Join(dir, partitionDirName(mt.Name, mp.Index))
			if !b.madeByCreate(pd, mt.ID) {
				continue
			}
			if err := b.fs.RemoveAll(pd); err != nil {
				b.logger.Error("removing the directory of a failed create", "dir", pd, "err", err)
			}
		}
	}
}

// madeByCreate reports whether pd holds no record bytes (every .log empty)
// and names the topic id, or nothing.
func (b *Broker) madeByCreate(pd string, id controller.TopicID) bool {
	names, err := b.fs.ReadDir(pd)
	if err != nil {
		return false
	}
	f, err := b.fs.OpenFile(filepath.Join(pd, partitionMetadataFile), os.O_RDONLY, 0)
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
		f, err := b.fs.OpenFile(filepath.Join(pd, n), os.O_RDONLY, 0)
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
