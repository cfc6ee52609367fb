package coordinator

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sluice-io/sluice/segment"
)

// Replaying a partition of __consumer_offsets from its log. The offsets
// topic is compacted (cleanup.policy=compact), so the log this reads may
// have gaps (offsets whose records the cleaner removed), batches emptied to
// a bare header (an idempotent producer's last batch keeps its offsets),
// and no tombstones for keys deleted longer than delete.retention.ms ago.
// None of these needs handling beyond walking batch by batch: the cleaner
// keeps the latest record of every key in offset order, replay lets the
// last record of a key win, and a key whose tombstone is gone has no older
// record left to bring back. What replay must not do is rely on offsets
// being dense, or keep slices into the read buffer, which the next read
// overwrites (records.go copies what it keeps).

// ReadFunc reads a partition's batches from offset on, as
// replica.Partition.Read and ReadForFollower do: at least one batch when
// minOne is set, across the gaps of a compacted log.
type ReadFunc func(offset int64, maxBytes int, minOne bool) (segment.ReadResult, error)

// replayChunk is how much one read takes: large enough that replay is one
// read per MiB, small enough to keep the buffer small.
var replayChunk = 1 << 20

// ReplayPartition calls fn for every record of the batches from offset
// from up to end, in offset order; it is Log.Replay for a broker's
// partition of the offsets topic (read is its Read, or ReadForFollower for
// a replicated one whose new leader replays up to its log end). The
// records' Key and Value are valid only during the call.
func ReplayPartition(read ReadFunc, from, end int64, fn func(Record) error) error {
	var buf []byte
	for next := from; next < end; {
		rr, err := read(next, replayChunk, true)
		if err != nil {
			return fmt.Errorf("reading offset %d: %w", next, err)
		}
		buf = slices.Grow(buf[:0], int(rr.Bytes))
		for _, fr := range rr.Ranges {
			n := len(buf)
			buf = buf[:n+int(fr.Length)]
			if _, err := fr.File.ReadAt(buf[n:], fr.Offset); err != nil {
				rr.Release()
				return fmt.Errorf("reading offset %d: %w", next, err)
			}
		}
		rr.Release()
		if len(buf) == 0 {
			// Nothing at or after next below the read's bound: the rest
			// up to end is a gap (or not readable yet).
			return nil
		}
		for pos := 0; pos < len(buf); {
			h, err := segment.ParseBatchHeader(buf[pos:])
			if err != nil || pos+h.Size() > len(buf) {
				return fmt.Errorf("offset %d: %w", next, errors.Join(err, segment.ErrCorruptBatch))
			}
			err = segment.EachRecord(buf[pos:pos+h.Size()], func(r segment.Record) error {
				if r.Offset < next {
					return nil // the read began inside this batch
				}
				return fn(Record{Key: r.Key, Value: r.Value})
			})
			if err != nil {
				return fmt.Errorf("offset %d: %w", h.BaseOffset, err)
			}
			// A batch's header keeps its offsets even when the cleaner
			// removed all its records: next goes past them either way.
			next = h.LastOffset() + 1
			pos += h.Size()
		}
	}
	return nil
}
