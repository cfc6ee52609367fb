package controller

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"

	"github.com/sluice-io/sluice/segment"
)

// metaLog is the file of record batches applied since the snapshot. Each
// batch is one line: the CRC-32C of the JSON in hex, a space, then the
// JSON {"offset": first record's offset, "records": [...]}. A batch is one
// write and one fsync, so a crash keeps all of it or leaves a torn last
// line, which was never acknowledged and which replay drops.
//
// This file is the single-node stand-in for the replicated
// __cluster_metadata partition of the controller-quorum issue: the records
// and their offsets are the same, the storage is not.
type metaLog struct {
	fs     segment.FS
	path   string
	logger *slog.Logger // says when replay drops a torn last batch
	// batches and size are what the file holds, to decide compaction.
	batches int
	size    int64
	// broken is set when an append failed: the file may end in part of a
	// batch, so nothing may be appended until a snapshot replaces it.
	broken bool
}

type logBatch struct {
	Offset  int64             `json:"offset"`
	Records []json.RawMessage `json:"records"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// append writes one batch of records starting at offset and fsyncs it.
func (l *metaLog) append(offset int64, rs []Record) error {
	batch := logBatch{Offset: offset, Records: make([]json.RawMessage, len(rs))}
	for i, r := range rs {
		b, err := EncodeRecord(r)
		if err != nil {
			return err
		}
		batch.Records[i] = b
	}
	body, err := json.Marshal(batch)
	if err != nil {
		return fmt.Errorf("controller: encode record batch: %w", err)
	}
	line := make([]byte, 0, len(body)+10)
	line = hex.AppendEncode(line, binary.BigEndian.AppendUint32(nil, crc32.Checksum(body, castagnoli)))
	line = append(line, ' ')
	line = append(append(line, body...), '\n')
	if err := l.write(line); err != nil {
		l.broken = true
		return fmt.Errorf("controller: append to %s: %w", l.path, err)
	}
	l.batches++
	l.size += int64(len(line))
	return nil
}

func (l *metaLog) write(line []byte) error {
	f, err := l.fs.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// reset empties the log once a snapshot holds everything in it.
func (l *metaLog) reset() error {
	if err := segment.WriteFileAtomic(l.fs, l.path, nil); err != nil {
		l.broken = true
		return fmt.Errorf("controller: reset %s: %w", l.path, err)
	}
	l.batches, l.size, l.broken = 0, 0, false
	return nil
}

// replay calls apply with every batch from offset from on, in order, and
// returns the offset after the last one. Batches before from are already
// in the snapshot (a crash between writing it and emptying the log). A
// missing file is an empty log (the first format had none). A damaged line
// is an error unless it is the last one: a torn write the crash cut off.
// clean reports a log that exists and has no torn end, which new batches
// may follow.
func (l *metaLog) replay(from int64, apply func(offset int64, rs []Record) error) (next int64, clean bool, err error) {
	data, err := segment.ReadFile(l.fs, l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return from, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("controller: read %s: %w", l.path, err)
	}
	clean = true
	next = from
	for n := 1; len(data) > 0; n++ {
		i := bytes.IndexByte(data, '\n')
		last := i < 0
		line := data
		if !last {
			line, data = data[:i], data[i+1:]
			last = len(data) == 0
		} else {
			data = nil
		}
		batch, err := decodeBatch(line, last && i < 0)
		if err != nil {
			if last {
				// Torn by a crash: its fsync never returned, so nobody
				// was told it was written. Say so all the same.
				clean = false
				if l.logger != nil {
					l.logger.Warn("dropping a torn last batch of the cluster metadata log", "file", l.path, "line", n, "reason", err)
				}
				break
			}
			return 0, false, fmt.Errorf("controller: %s is corrupt at line %d: %w; restore the metadata from a backup", l.path, n, err)
		}
		end := batch.Offset + int64(len(batch.Records))
		if end <= next {
			continue // already in the snapshot
		}
		if batch.Offset != next {
			return 0, false, fmt.Errorf("controller: %s is corrupt at line %d: batch at offset %d, expected %d", l.path, n, batch.Offset, next)
		}
		rs := make([]Record, len(batch.Records))
		for j, raw := range batch.Records {
			if rs[j], err = DecodeRecord(raw); err != nil {
				return 0, false, fmt.Errorf("controller: %s line %d: %w", l.path, n, err)
			}
		}
		if err := apply(batch.Offset, rs); err != nil {
			return 0, false, fmt.Errorf("controller: %s line %d: %w", l.path, n, err)
		}
		next = end
	}
	return next, clean, nil
}

// decodeBatch checks a line's CRC and parses it; unterminated reports a
// line with no newline after it, which is torn whatever it holds.
func decodeBatch(line []byte, unterminated bool) (logBatch, error) {
	var b logBatch
	if unterminated {
		return b, errors.New("unterminated line")
	}
	sum, body, ok := bytes.Cut(line, []byte{' '})
	want := crc32.Checksum(body, castagnoli)
	got, err := hex.DecodeString(string(sum))
	if !ok || err != nil || len(got) != 4 || binary.BigEndian.Uint32(got) != want {
		return b, errors.New("checksum mismatch")
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return b, err
	}
	return b, nil
}

// batchesFrom is recordLog.batchesFrom over the file: the batches from
// offset from on, whole, up to maxBytes of their lines.
func (l *metaLog) batchesFrom(from int64, maxBytes int) ([]Batch, error) {
	data, err := segment.ReadFile(l.fs, l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrSnapshotNeeded
	}
	if err != nil {
		return nil, fmt.Errorf("controller: read %s: %w", l.path, err)
	}
	var out []Batch
	size := 0
	for len(data) > 0 && (len(out) == 0 || size < maxBytes) {
		line, rest, found := bytes.Cut(data, []byte{'\n'})
		data = rest
		if !found {
			break // a torn end was never committed
		}
		lb, err := decodeBatch(line, false)
		if err != nil {
			return nil, fmt.Errorf("controller: %s: %w", l.path, err)
		}
		if lb.Offset < from {
			if lb.Offset+int64(len(lb.Records)) > from {
				return nil, ErrSnapshotNeeded // from is inside this batch
			}
			continue
		}
		if len(out) == 0 && lb.Offset != from {
			return nil, ErrSnapshotNeeded // from was folded into the snapshot
		}
		rs := make([]Record, len(lb.Records))
		for i, raw := range lb.Records {
			if rs[i], err = DecodeRecord(raw); err != nil {
				return nil, fmt.Errorf("controller: %s: %w", l.path, err)
			}
		}
		out = append(out, Batch{Offset: lb.Offset, Records: rs})
		size += len(line)
	}
	if len(out) == 0 {
		return nil, ErrSnapshotNeeded
	}
	return out, nil
}
