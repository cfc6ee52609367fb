package metarepl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/metalog"
)

// The log file's header. Version 2 (written): magic | start int64 |
// crc32c(magic | start) uint32, 20 bytes, then version 2 frames from
// offset start. Version 1 (read, then rewritten as version 2 on open): the
// magic alone, then version 1 frames from offset 0.
var (
	logMagicV1 = []byte("SLMLOG\x00\x01")
	logMagicV2 = []byte("SLMLOG\x00\x02")
)

const headerLenV2 = 8 + 8 + 4

func appendHeader(dst []byte, start int64) []byte {
	h := len(dst)
	dst = append(dst, logMagicV2...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(start))
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[h:], castagnoli))
}

// parseHeader returns the log start offset, the header's length and the
// frame version of a log file's content.
func parseHeader(data []byte) (start, hdrLen int64, version int, err error) {
	switch {
	case bytes.HasPrefix(data, logMagicV1):
		return 0, int64(len(logMagicV1)), frameV1, nil
	case !bytes.HasPrefix(data, logMagicV2):
		return 0, 0, 0, errors.New("no log header")
	case len(data) < headerLenV2:
		return 0, 0, 0, errors.New("log header cut short")
	}
	if crc32.Checksum(data[:headerLenV2-4], castagnoli) != binary.BigEndian.Uint32(data[headerLenV2-4:]) {
		return 0, 0, 0, errors.New("log header checksum")
	}
	start = int64(binary.BigEndian.Uint64(data[len(logMagicV2):]))
	if start < 0 {
		return 0, 0, 0, fmt.Errorf("log start offset %d", start)
	}
	return start, headerLenV2, frameV2, nil
}

// TrimTo drops every batch below offset, durably: the log then starts at
// offset. offset must start a checkpoint batch (Batch.Checkpoint) that
// ends at or below the high watermark, so the log keeps a committed batch
// that restates everything dropped; anything else is refused and nothing
// changes. offset at the start already is a no-op.
//
// The log is rewritten: a new file (header with the start offset, then the
// frames from offset) is written and fsynced, renamed over the log and the
// directory fsynced, so a crash at any point leaves the old log or the new
// one. The epoch cache is cut at the start as Kafka's truncateFromStart
// does: entries below it go, the one covering it moves to it (in memory
// only; on open the cache is derived from the batches, which gives the
// same). It holds the log's lock throughout: Append, Read and Truncate
// wait for the copy and two fsyncs. A failed write of the new file leaves
// the log as it was; a failed rename or directory fsync breaks it.
func (l *Log) TrimTo(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return l.broken
	}
	if offset == l.start {
		return nil
	}
	if offset < l.start {
		return fmt.Errorf("metarepl: trim to %d, below the log start %d", offset, l.start)
	}
	i := l.find(offset)
	switch {
	case i < 0:
		return fmt.Errorf("metarepl: trim to %d: not a batch start in [%d, %d)", offset, l.start, l.endLocked())
	case !l.index[i].checkpoint:
		return fmt.Errorf("metarepl: trim to %d: not a checkpoint batch", offset)
	case l.index[i].end > l.hw:
		return fmt.Errorf("metarepl: trim to %d: the checkpoint batch ends at %d, past the high watermark %d",
			offset, l.index[i].end, l.hw)
	}
	if err := l.rewriteLocked(offset, i); err != nil {
		return err
	}
	l.entries = truncateFromStart(l.entries, offset)
	return nil
}

// TruncateFullyAndStartAt empties the log and makes it start (and end) at
// offset, durably: what a follower does when the leader's log starts past
// its end, or when the leader cannot tell where its last epoch ended (see
// EndOffsetFor); it then fetches from offset, where the leader's first
// batch is a checkpoint. offset must be at or above the high watermark
// and the log start: records dropped below offset are committed ones the
// leader's checkpoint restates or ones not known committed, never ones at
// or after it. The high watermark becomes at least offset.
//
// The epoch cache file is emptied first (a crash then leaves the old log,
// whose cache is derived from its batches), then the log is rewritten as
// TrimTo does, with no frames. A failure breaks the log.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return l.broken
	}
	switch {
	case offset < l.hw:
		return fmt.Errorf("metarepl: start the log at %d, below the high watermark %d: %w", offset, l.hw,
			metalog.ErrCommittedTruncation)
	case offset < l.start:
		return fmt.Errorf("metarepl: start the log at %d, below its start %d", offset, l.start)
	}
	if err := writeEpochs(l.fs, filepath.Join(l.dir, epochsFile), nil); err != nil {
		return l.breakLocked(err)
	}
	l.entries = nil
	if err := l.rewriteLocked(offset, len(l.index)); err != nil {
		return l.breakLocked(err)
	}
	l.hw = max(l.hw, offset)
	return nil
}

// rewriteLocked replaces the log file with one that starts at start and
// holds the batches index[from:], as version 2 frames: written to
// newLogFile and fsynced, renamed over logFile, the directory fsynced.
// Until the rename the old file is untouched, so an error before it leaves
// the log as it was; an error from the rename on breaks the log (the name
// may point at either file).
func (l *Log) rewriteLocked(start int64, from int) error {
	path, tmp := filepath.Join(l.dir, logFile), filepath.Join(l.dir, newLogFile)
	buf := appendHeader(nil, start)
	index := make([]span, 0, len(l.index)-from)
	if from < len(l.index) {
		first := l.index[from].pos
		data := make([]byte, l.size-first)
		if _, err := l.f.ReadAt(data, first); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("metarepl: read %s: %w", path, err)
		}
		for _, s := range l.index[from:] {
			frame := data[:s.size]
			data = data[s.size:]
			pos := int64(len(buf))
			if l.version == frameV2 {
				buf = append(buf, frame...)
			} else {
				b, _, err := decodeFrame(frame, l.version)
				if err != nil {
					return fmt.Errorf("%w: %s at offset %d: %w", ErrCorrupt, path, s.offset, err)
				}
				if buf, err = appendFrame(buf, b); err != nil {
					return err
				}
			}
			s.pos, s.size = pos, int64(len(buf))-pos
			index = append(index, s)
		}
	}
	f, err := l.fs.OpenFile(tmp, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("metarepl: create %s: %w", tmp, err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("metarepl: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("metarepl: fsync %s: %w", tmp, err)
	}
	if err := l.fs.Rename(tmp, path); err != nil {
		f.Close()
		return l.breakLocked(fmt.Errorf("metarepl: rename %s: %w", tmp, err))
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		f.Close()
		return l.breakLocked(fmt.Errorf("metarepl: fsync dir %s: %w", l.dir, err))
	}
	l.f.Close()
	l.f = f
	l.start, l.hdrLen, l.version = start, headerLenV2, frameV2
	l.index, l.size = index, int64(len(buf))
	l.ckpts = slices.DeleteFunc(l.ckpts, func(o int64) bool { return o < start })
	return nil
}

// truncateFromStart cuts the epoch cache at a new log start as Kafka's
// LeaderEpochFileCache.truncateFromStart: entries below start go, and the
// newest of them, which covers start, moves to start.
func truncateFromStart(entries []isr.EpochEntry, start int64) []isr.EpochEntry {
	var out []isr.EpochEntry
	var floor *isr.EpochEntry
	for i, e := range entries {
		if e.StartOffset < start {
			floor = &entries[i]
			continue
		}
		out = append(out, e)
	}
	if floor != nil && (len(out) == 0 || out[0].StartOffset > start) {
		out = slices.Insert(out, 0, isr.EpochEntry{Epoch: floor.Epoch, StartOffset: start})
	}
	return out
}

// trimPoint is where the Replica trims the log to: the newest checkpoint
// batch that ends at or below the high watermark and upTo, if more than
// minBytes of frames lie below it (false otherwise).
func (l *Log) trimPoint(minBytes, upTo int64) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return 0, false
	}
	for k := len(l.ckpts) - 1; k >= 0; k-- {
		i := l.find(l.ckpts[k])
		if i < 0 || l.index[i].end > min(l.hw, upTo) {
			continue
		}
		s := l.index[i]
		return s.offset, s.offset > l.start && s.pos-l.hdrLen > minBytes
	}
	return 0, false
}

// startEpoch is startEpochLocked under the lock: what a leader answers as
// FetchResponse.LogStartEpoch.
func (l *Log) startEpoch() int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.startEpochLocked()
}
