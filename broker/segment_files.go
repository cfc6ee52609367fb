package broker

import (
	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/segment"
)

// newSegmentFileCache is the one bound on the segment files all partitions
// keep open (log.open.segment.files.max, else half of RLIMIT_NOFILE). With
// three descriptors per partition held for good, a broker that had created
// ~6,700 partitions under a 20,000-descriptor limit could not start again;
// with the cache, partitions cost descriptors only while they are used.
func newSegmentFileCache(cfg *config.Broker) *segment.FileCache {
	if cfg.OpenSegmentFilesMax > 0 {
		return segment.NewFileCache(int(min(cfg.OpenSegmentFilesMax, 1<<30)))
	}
	return segment.NewFileCache(segment.DefaultFileCacheLimit())
}

// segmentFileStats is for the metrics, which tests also build on a Broker
// without logs.
func (b *Broker) segmentFileStats() segment.FileCacheStats {
	if b.files == nil {
		return segment.FileCacheStats{}
	}
	return b.files.Stats()
}

// reportFileDescriptors logs, once the logs are loaded, what the broker
// holds and what it may open: how many partitions and segments, how many
// segment files are open (none for partitions recovery left alone), the
// cap, and the process's descriptors and limit. files_all_open is what
// keeping every segment open would take, for sizing the cap.
func (b *Broker) reportFileDescriptors() {
	var partitions, segments int64
	for _, t := range b.topics.all() {
		for _, p := range t.parts {
			if p != nil {
				partitions++
				segments += int64(p.NumSegments())
			}
		}
	}
	st := b.files.Stats()
	attrs := []any{"partitions", partitions, "segments", segments,
		"segment_files_open", st.Open, "segment_files_limit", st.Limit, "files_all_open", 3 * segments}
	limit, open, ok := fdUsage()
	if !ok {
		b.logger.Info("file descriptors", attrs...)
		return
	}
	attrs = append(attrs, "fds_open", open, "nofile_limit", limit)
	b.logger.Info("file descriptors", attrs...)
	// A cap set above what the process may open would let the cache take
	// the descriptors connections need, which is what the cap prevents.
	if reserve := fdReserve(limit); b.cfg.OpenSegmentFilesMax > 0 && st.Limit+reserve > limit {
		b.logger.Warn("log.open.segment.files.max leaves too few file descriptors for connections; lower it or raise LimitNOFILE",
			"segment_files_limit", st.Limit, "nofile_limit", limit, "keep_for_connections", reserve)
	}
}
