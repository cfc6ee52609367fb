package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-io/sluice/segment"
)

// MaxBatchesPerProducer is how many recent batches are remembered per
// producer for duplicate detection. Kafka producers keep at most 5 requests
// in flight per partition when idempotent, so a retry is always one of the
// last 5 batches.
const MaxBatchesPerProducer = 5

// DefaultProducerIDExpirationMs is producer.id.expiration.ms's default (1 day).
const DefaultProducerIDExpirationMs int64 = 86400000

// noProducerID is ProducerID on batches of non-idempotent producers.
const noProducerID = -1

// BatchMeta describes one appended batch of an idempotent producer; a retried
// batch is answered from it.
type BatchMeta struct {
	FirstSeq, LastSeq       int32
	FirstOffset, LastOffset int64
	MaxTimestamp            int64
}

// ProducerEntry is the state of one producer id on one partition.
type ProducerEntry struct {
	ProducerID int64
	Epoch      int16
	// Batches are the most recent batches of Epoch, oldest first, at most
	// MaxBatchesPerProducer. Never empty for a stored entry.
	Batches []BatchMeta
	// LastTimestamp is the max timestamp of the last batch; expiry is
	// measured from it (as in Kafka, so a replayed log yields the same value).
	LastTimestamp int64
}

func (e *ProducerEntry) clone() *ProducerEntry {
	c := *e
	c.Batches = append([]BatchMeta(nil), e.Batches...)
	return &c
}

// ProducerState holds the idempotent-producer state of one partition and its
// snapshots. It is safe for concurrent use; the partition serializes Check and
// Update with its append lock so checks see the state they will update.
type ProducerState struct {
	fs     segment.FS
	dir    string
	logger *slog.Logger

	mu           sync.Mutex
	producers    map[int64]*ProducerEntry
	expirationMs int64
}

// NewProducerState returns an empty state for the partition directory dir.
// expirationMs <= 0 selects DefaultProducerIDExpirationMs.
func NewProducerState(fs segment.FS, dir string, expirationMs int64, logger *slog.Logger) *ProducerState {
	if logger == nil {
		logger = slog.Default()
	}
	if expirationMs <= 0 {
		expirationMs = DefaultProducerIDExpirationMs
	}
	return &ProducerState{fs: fs, dir: dir, logger: logger, producers: make(map[int64]*ProducerEntry), expirationMs: expirationMs}
}

// SetExpirationMs changes producer.id.expiration.ms (<= 0 selects the default).
func (s *ProducerState) SetExpirationMs(ms int64) {
	if ms <= 0 {
		ms = DefaultProducerIDExpirationMs
	}
	s.mu.Lock()
	s.expirationMs = ms
	s.mu.Unlock()
}

// Entry returns a copy of the state of producerID, or nil.
func (s *ProducerState) Entry(producerID int64) *ProducerEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.producers[producerID]; e != nil {
		return e.clone()
	}
	return nil
}

// Len returns the number of producers with state.
func (s *ProducerState) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.producers)
}

// Check validates one batch against the producer's state; see CheckAll.
func (s *ProducerState) Check(h segment.BatchHeader) (dup *BatchMeta, err error) {
	return s.CheckAll([]segment.BatchHeader{h})
}

// CheckAll validates the batches of one append, in order, as if each earlier
// one had already been appended, without changing any state. It returns:
//   - (meta, nil) if a batch is a retry of one of the producer's last
//     MaxBatchesPerProducer batches (same epoch, first and last sequence):
//     nothing must be written and the producer is answered with meta's
//     offsets;
//   - an error wrapping ErrInvalidProducerEpoch or ErrOutOfOrderSequence;
//   - (nil, nil) if the append may proceed.
//
// Rules, per batch with a producer id (ProducerID -1 and control batches are
// not checked):
//   - epoch older than the producer's → ErrInvalidProducerEpoch (a fenced
//     zombie);
//   - epoch newer → the producer restarted its sequences; first sequence
//     must be 0;
//   - same epoch → first sequence must be last sequence + 1, wrapping from
//     MaxInt32 to 0;
//   - unknown producer id → accepted with any epoch and sequence. Before
//     KIP-360 the broker answered UNKNOWN_PRODUCER_ID unless the sequence
//     was 0; KIP-360 made brokers keep producer state beyond the log's
//     retention (only producer.id.expiration.ms removes it) and accept a
//     producer they have no state for, because missing state means it was
//     expired or deleted with the log, and rejecting would make a healthy
//     producer fail fatally. The producer's own epoch fencing happens at
//     InitProducerId, not here.
//
// Duplicates are looked up in the stored state only: a batch repeated inside
// one request is out of order, not a retry.
func (s *ProducerState) CheckAll(headers []segment.BatchHeader) (dup *BatchMeta, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var staged map[int64]*ProducerEntry
	for i := range headers {
		h := &headers[i]
		if h.ProducerID == noProducerID || h.Control() {
			continue
		}
		stored := s.producers[h.ProducerID]
		if d := findDuplicate(stored, h); d != nil {
			m := *d
			return &m, nil
		}
		cur := stored
		if st, ok := staged[h.ProducerID]; ok {
			cur = st
		}
		if err := checkSequence(cur, h); err != nil {
			return nil, err
		}
		if staged == nil {
			staged = make(map[int64]*ProducerEntry)
		}
		next := &ProducerEntry{ProducerID: h.ProducerID}
		if cur != nil {
			next = cur.clone()
		}
		// Offsets are unknown before the append and irrelevant to the checks.
		applyBatch(next, h, -1, -1)
		staged[h.ProducerID] = next
	}
	return nil, nil
}

// findDuplicate returns the stored batch h retries, if any.
func findDuplicate(e *ProducerEntry, h *segment.BatchHeader) *BatchMeta {
	if e == nil || e.Epoch != h.ProducerEpoch {
		return nil
	}
	first, last := h.BaseSequence, h.LastSequence()
	for i := range e.Batches {
		if e.Batches[i].FirstSeq == first && e.Batches[i].LastSeq == last {
			return &e.Batches[i]
		}
	}
	return nil
}

// checkSequence applies the epoch and sequence rules documented on CheckAll.
func checkSequence(e *ProducerEntry, h *segment.BatchHeader) error {
	if e == nil {
		return nil
	}
	switch {
	case h.ProducerEpoch < e.Epoch:
		return fmt.Errorf("producer %d: epoch %d is older than current epoch %d: %w",
			h.ProducerID, h.ProducerEpoch, e.Epoch, ErrInvalidProducerEpoch)
	case h.ProducerEpoch > e.Epoch:
		if h.BaseSequence != 0 {
			return fmt.Errorf("producer %d: new epoch %d must start at sequence 0, got %d: %w",
				h.ProducerID, h.ProducerEpoch, h.BaseSequence, ErrOutOfOrderSequence)
		}
		return nil
	}
	if len(e.Batches) == 0 {
		if h.BaseSequence != 0 {
			return fmt.Errorf("producer %d epoch %d: no known sequence, expected 0, got %d: %w",
				h.ProducerID, h.ProducerEpoch, h.BaseSequence, ErrOutOfOrderSequence)
		}
		return nil
	}
	last := e.Batches[len(e.Batches)-1].LastSeq
	if h.BaseSequence != nextSequence(last) {
		return fmt.Errorf("producer %d epoch %d: expected sequence %d, got %d: %w",
			h.ProducerID, h.ProducerEpoch, nextSequence(last), h.BaseSequence, ErrOutOfOrderSequence)
	}
	return nil
}

// nextSequence is the sequence after seq; sequences wrap to 0 after MaxInt32.
func nextSequence(seq int32) int32 {
	if seq == math.MaxInt32 {
		return 0
	}
	return seq + 1
}

// applyBatch records h (appended at firstOffset..lastOffset) in e.
func applyBatch(e *ProducerEntry, h *segment.BatchHeader, firstOffset, lastOffset int64) {
	if e.Epoch != h.ProducerEpoch {
		// Sequences restart with a new epoch, so older batches can no
		// longer be retried and must not match a new batch's sequences.
		e.Epoch = h.ProducerEpoch
		e.Batches = e.Batches[:0]
	}
	e.Batches = append(e.Batches, BatchMeta{
		FirstSeq: h.BaseSequence, LastSeq: h.LastSequence(),
		FirstOffset: firstOffset, LastOffset: lastOffset,
		MaxTimestamp: h.MaxTimestamp,
	})
	if n := len(e.Batches); n > MaxBatchesPerProducer {
		e.Batches = append(e.Batches[:0], e.Batches[n-MaxBatchesPerProducer:]...)
	}
	e.LastTimestamp = h.MaxTimestamp
}

// Update records a batch appended at firstOffset..lastOffset. h.MaxTimestamp
// must be the timestamp stored in the log (the append time for
// LogAppendTime topics). Batches without producer id and control batches are
// ignored. Update does not check sequences: it is also used to replay the log,
// which is the truth even where it disagrees with the rules.
func (s *ProducerState) Update(h segment.BatchHeader, firstOffset, lastOffset int64) {
	if h.ProducerID == noProducerID || h.Control() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.producers[h.ProducerID]
	if e == nil {
		e = &ProducerEntry{ProducerID: h.ProducerID, Epoch: h.ProducerEpoch}
		s.producers[h.ProducerID] = e
	}
	applyBatch(e, &h, firstOffset, lastOffset)
}

// ExpireProducers forgets producers whose last batch is at least
// producer.id.expiration.ms older than now, and returns how many. The broker
// calls it periodically. Memory is the reason: every producer instance that
// ever wrote gets an id, and without expiry the map would only grow.
func (s *ProducerState) ExpireProducers(now time.Time) int {
	nowMs := now.UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, e := range s.producers {
		if nowMs-e.LastTimestamp >= s.expirationMs {
			delete(s.producers, id)
			n++
		}
	}
	return n
}

// Snapshot files.
//
// A snapshot at offset X holds the state after every batch below X, so
// loading it and replaying the log from X rebuilds the state at the log end.
// Layout (big endian):
//
//	magic "SLPS" | version uint16 (1) | crc32c uint32 over everything after it
//	offset int64 | producer count uint32
//	per producer: id int64 | epoch int16 | lastTimestamp int64 | batch count uint8
//	  per batch: firstSeq int32 | lastSeq int32 | firstOffset int64 | lastOffset int64 | maxTimestamp int64
const (
	snapshotSuffix     = ".snapshot"
	snapshotMagic      = "SLPS"
	snapshotVersion    = 1
	snapshotHeaderSize = 4 + 2 + 4 + 8 + 4
	snapshotEntrySize  = 8 + 2 + 8 + 1
	snapshotBatchSize  = 4 + 4 + 8 + 8 + 8
	snapshotsToKeep    = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SnapshotName is the file name of the snapshot taken at offset.
func SnapshotName(offset int64) string { return fmt.Sprintf("%020d%s", offset, snapshotSuffix) }

// encodeSnapshot serializes the current state as taken at offset. Producers
// are sorted so equal states give equal files.
func (s *ProducerState) encodeSnapshot(offset int64) []byte {
	s.mu.Lock()
	ids := make([]int64, 0, len(s.producers))
	size := snapshotHeaderSize
	for id, e := range s.producers {
		ids = append(ids, id)
		size += snapshotEntrySize + len(e.Batches)*snapshotBatchSize
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	b := make([]byte, 0, size)
	b = append(b, snapshotMagic...)
	b = binary.BigEndian.AppendUint16(b, snapshotVersion)
	b = binary.BigEndian.AppendUint32(b, 0) // CRC, filled in below
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		e := s.producers[id]
		b = binary.BigEndian.AppendUint64(b, uint64(e.ProducerID))
		b = binary.BigEndian.AppendUint16(b, uint16(e.Epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.LastTimestamp))
		b = append(b, uint8(len(e.Batches)))
		for _, m := range e.Batches {
			b = binary.BigEndian.AppendUint32(b, uint32(m.FirstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(m.LastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(m.FirstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.LastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.MaxTimestamp))
		}
	}
	s.mu.Unlock()
	binary.BigEndian.PutUint32(b[6:10], crc32.Checksum(b[10:], castagnoli))
	return b
}

// decodeSnapshot parses and verifies a snapshot file's content.
func decodeSnapshot(b []byte) (offset int64, producers map[int64]*ProducerEntry, err error) {
	if len(b) < snapshotHeaderSize || string(b[:4]) != snapshotMagic {
		return 0, nil, errors.New("bad magic or short header")
	}
	if v := binary.BigEndian.Uint16(b[4:6]); v != snapshotVersion {
		return 0, nil, fmt.Errorf("unsupported version %d", v)
	}
	if want, got := binary.BigEndian.Uint32(b[6:10]), crc32.Checksum(b[10:], castagnoli); want != got {
		return 0, nil, fmt.Errorf("crc mismatch: stored %08x, computed %08x", want, got)
	}
	offset = int64(binary.BigEndian.Uint64(b[10:18]))
	n := binary.BigEndian.Uint32(b[18:22])
	p := b[snapshotHeaderSize:]
	producers = make(map[int64]*ProducerEntry, min(int(n), len(p)/snapshotEntrySize))
	for i := uint32(0); i < n; i++ {
		if len(p) < snapshotEntrySize {
			return 0, nil, fmt.Errorf("truncated at producer %d", i)
		}
		e := &ProducerEntry{
			ProducerID:    int64(binary.BigEndian.Uint64(p[0:8])),
			Epoch:         int16(binary.BigEndian.Uint16(p[8:10])),
			LastTimestamp: int64(binary.BigEndian.Uint64(p[10:18])),
		}
		nb := int(p[18])
		p = p[snapshotEntrySize:]
		if nb == 0 || nb > MaxBatchesPerProducer || len(p) < nb*snapshotBatchSize {
			return 0, nil, fmt.Errorf("producer %d: bad batch count %d", e.ProducerID, nb)
		}
		e.Batches = make([]BatchMeta, nb)
		for j := range e.Batches {
			e.Batches[j] = BatchMeta{
				FirstSeq:     int32(binary.BigEndian.Uint32(p[0:4])),
				LastSeq:      int32(binary.BigEndian.Uint32(p[4:8])),
				FirstOffset:  int64(binary.BigEndian.Uint64(p[8:16])),
				LastOffset:   int64(binary.BigEndian.Uint64(p[16:24])),
				MaxTimestamp: int64(binary.BigEndian.Uint64(p[24:32])),
			}
			p = p[snapshotBatchSize:]
		}
		if _, dupID := producers[e.ProducerID]; dupID {
			return 0, nil, fmt.Errorf("producer %d listed twice", e.ProducerID)
		}
		producers[e.ProducerID] = e
	}
	if len(p) != 0 {
		return 0, nil, fmt.Errorf("%d trailing bytes", len(p))
	}
	return offset, producers, nil
}

// WriteSnapshot persists the current state as the snapshot at offset, which
// must be the log end offset the state corresponds to, then deletes all but
// the newest snapshots.
func (s *ProducerState) WriteSnapshot(offset int64) error {
	return s.writeSnapshotData(offset, s.encodeSnapshot(offset))
}

// writeSnapshotData lets the partition encode under its append lock (so the
// state matches offset) and do the slow, fsyncing write outside it.
func (s *ProducerState) writeSnapshotData(offset int64, data []byte) error {
	if err := segment.WriteFileAtomic(s.fs, filepath.Join(s.dir, SnapshotName(offset)), data); err != nil {
		return fmt.Errorf("write producer snapshot at %d: %w", offset, err)
	}
	return s.pruneSnapshots()
}

// snapshotOffsets lists the offsets of the snapshot files in the directory,
// newest first, and removes leftover temporary files of interrupted writes.
func (s *ProducerState) snapshotOffsets() ([]int64, error) {
	names, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s.dir, err)
	}
	var offs []int64
	for _, name := range names {
		if strings.HasSuffix(name, snapshotSuffix+".tmp") {
			_ = s.fs.Remove(filepath.Join(s.dir, name))
			continue
		}
		base, ok := strings.CutSuffix(name, snapshotSuffix)
		if !ok || len(base) != 20 {
			continue
		}
		off, err := strconv.ParseInt(base, 10, 64)
		if err != nil || off < 0 {
			continue
		}
		offs = append(offs, off)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] > offs[j] })
	return offs, nil
}

// pruneSnapshots keeps the newest snapshotsToKeep snapshots. One older
// snapshot is kept so a crash while the newest is being superseded, or a
// later truncation below it, still leaves a starting point short of a full
// log replay.
func (s *ProducerState) pruneSnapshots() error {
	offs, err := s.snapshotOffsets()
	if err != nil {
		return err
	}
	for i := snapshotsToKeep; i < len(offs); i++ {
		if err := s.removeSnapshot(offs[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *ProducerState) removeSnapshot(off int64) error {
	path := filepath.Join(s.dir, SnapshotName(off))
	if err := s.fs.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// DeleteSnapshotsAbove removes snapshots taken at offsets above offset; the
// log was truncated to offset and they describe records that are gone.
func (s *ProducerState) DeleteSnapshotsAbove(offset int64) error {
	offs, err := s.snapshotOffsets()
	if err != nil {
		return err
	}
	for _, off := range offs {
		if off > offset {
			if err := s.removeSnapshot(off); err != nil {
				return err
			}
		}
	}
	return nil
}

// Load replaces the state with the newest valid snapshot at or below
// logEndOffset and returns its offset, from which the caller replays the log;
// it returns 0 (replay everything) when there is none. Snapshots above
// logEndOffset (the log lost their records) and corrupt ones are deleted with
// a warning, and only the newest snapshotsToKeep remain.
func (s *ProducerState) Load(logEndOffset int64) (int64, error) {
	offs, err := s.snapshotOffsets()
	if err != nil {
		return 0, err
	}
	loaded := int64(-1)
	for _, off := range offs {
		if off > logEndOffset {
			s.logger.Warn("deleting producer snapshot beyond the log end", "dir", s.dir, "offset", off, "logEndOffset", logEndOffset)
			if err := s.removeSnapshot(off); err != nil {
				return 0, err
			}
			continue
		}
		if loaded >= 0 {
			break
		}
		producers, err := s.readSnapshot(off)
		if err != nil {
			s.logger.Warn("ignoring corrupt producer snapshot", "dir", s.dir, "offset", off, "err", err)
			if err := s.removeSnapshot(off); err != nil {
				return 0, err
			}
			continue
		}
		s.mu.Lock()
		s.producers = producers
		s.mu.Unlock()
		loaded = off
	}
	if err := s.pruneSnapshots(); err != nil {
		return 0, err
	}
	if loaded < 0 {
		s.mu.Lock()
		s.producers = make(map[int64]*ProducerEntry)
		s.mu.Unlock()
		return 0, nil
	}
	return loaded, nil
}

func (s *ProducerState) readSnapshot(off int64) (map[int64]*ProducerEntry, error) {
	path := filepath.Join(s.dir, SnapshotName(off))
	f, err := s.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	got, producers, err := decodeSnapshot(data)
	if err != nil {
		return nil, err
	}
	if got != off {
		return nil, fmt.Errorf("file name says offset %d, content says %d", off, got)
	}
	return producers, nil
}
