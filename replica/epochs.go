package replica

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/sluice-io/sluice/segment"
)

// EpochCheckpointFile is the name of the leader-epoch checkpoint in a
// partition directory. The name and text layout match Kafka's so operators
// recognise it.
const EpochCheckpointFile = "leader-epoch-checkpoint"

// epochCheckpointVersion is the only checkpoint layout we read and write.
const epochCheckpointVersion = 0

// UndefinedEpoch and UndefinedEpochOffset are the "unknown" answers of
// OffsetForLeaderEpoch (Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET).
const (
	UndefinedEpoch       int32 = -1
	UndefinedEpochOffset int64 = -1
)

// errCorruptCheckpoint marks a checkpoint that exists but cannot be parsed; the
// partition rebuilds the cache from the log's batch headers in that case.
var errCorruptCheckpoint = errors.New("corrupt leader-epoch checkpoint")

// EpochEntry says that leader epoch Epoch wrote its first record at StartOffset.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// EpochCache is the history of leader epochs of one partition replica: for
// every epoch in which a leader appended records, the offset of its first
// record. Followers use it (through OffsetForLeaderEpoch) to find where their
// log diverges from the leader's, which is why it must survive restarts and be
// kept consistent with the log when either end of the log moves.
//
// Invariants (checked by tests, relied on by EndOffsetFor):
//   - epochs strictly increase from entry to entry;
//   - start offsets strictly increase from entry to entry (an epoch that
//     never appended has no entry: a later epoch starting at the same offset
//     replaces it);
//   - every start offset is < the log end offset after TruncateFromEnd(LEO),
//     and the first start offset is >= the log start offset after
//     TruncateFromStart(logStart) (the entry covering the log start is kept,
//     moved up to it).
//
// Every change is persisted before the method returns, so an entry is on disk
// before the first batch of its epoch is appended. The one exception is the
// truncation at open (truncateFromEndUnsynced), which leaves entries at or
// past the log end in the file until the next change or persist, which the
// appends call before writing a batch.
//
// EpochCache is safe for concurrent use.
type EpochCache struct {
	fs     segment.FS
	dir    string
	logger *slog.Logger

	mu      sync.RWMutex
	entries []EpochEntry
	// disk is what the checkpoint file says (an absent file says no
	// entry), when known: a change back to it is not written again, as
	// when Open drops an entry at the log end of an empty log and
	// BecomeLeader enters the same one again. It differs from entries
	// only after truncateFromEndUnsynced, until persist. Under mu.
	disk      []EpochEntry
	diskKnown bool
}

// LoadEpochCache reads the checkpoint in dir. A missing file yields an empty
// cache. A file that exists but cannot be parsed yields the (empty) cache and
// an error wrapping errCorruptCheckpoint so the caller can rebuild it.
func LoadEpochCache(fs segment.FS, dir string, logger *slog.Logger) (*EpochCache, error) {
	if logger == nil {
		logger = slog.Default()
	}
	c := &EpochCache{fs: fs, dir: dir, logger: logger}
	path := filepath.Join(dir, EpochCheckpointFile)
	f, err := fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			c.diskKnown = true
			return c, nil
		}
		return c, fmt.Errorf("open %s: %w", path, err)
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return c, fmt.Errorf("read %s: %w", path, err)
	}
	entries, err := parseEpochCheckpoint(data)
	if err != nil {
		return c, fmt.Errorf("%s: %w: %v", path, errCorruptCheckpoint, err)
	}
	c.entries = entries
	c.disk, c.diskKnown = entries, true
	return c, nil
}

// parseEpochCheckpoint parses the text layout and checks the invariants, so a
// hand-edited or damaged file cannot make EndOffsetFor answer nonsense.
func parseEpochCheckpoint(data []byte) ([]EpochEntry, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	next := func(what string) (string, error) {
		if !sc.Scan() {
			return "", fmt.Errorf("missing %s", what)
		}
		return strings.TrimSpace(sc.Text()), nil
	}
	line, err := next("version")
	if err != nil {
		return nil, err
	}
	if v, err := strconv.Atoi(line); err != nil || v != epochCheckpointVersion {
		return nil, fmt.Errorf("unsupported version %q", line)
	}
	line, err = next("entry count")
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(line)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("bad entry count %q", line)
	}
	entries := make([]EpochEntry, 0, n)
	for i := 0; i < n; i++ {
		line, err := next(fmt.Sprintf("entry %d", i))
		if err != nil {
			return nil, err
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("entry %d: bad line %q", i, line)
		}
		epoch, err1 := strconv.ParseInt(fields[0], 10, 32)
		start, err2 := strconv.ParseInt(fields[1], 10, 64)
		if err1 != nil || err2 != nil || epoch < 0 || start < 0 {
			return nil, fmt.Errorf("entry %d: bad line %q", i, line)
		}
		e := EpochEntry{Epoch: int32(epoch), StartOffset: start}
		if i > 0 {
			prev := entries[i-1]
			if e.Epoch <= prev.Epoch || e.StartOffset <= prev.StartOffset {
				return nil, fmt.Errorf("entry %d (%d %d) does not follow (%d %d)",
					i, e.Epoch, e.StartOffset, prev.Epoch, prev.StartOffset)
			}
		}
		entries = append(entries, e)
	}
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			return nil, fmt.Errorf("trailing data after %d entries", n)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return entries, nil
}

// Entries returns a copy of the history, oldest first.
func (c *EpochCache) Entries() []EpochEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]EpochEntry(nil), c.entries...)
}

// LatestEpoch returns the newest epoch, or UndefinedEpoch when empty.
func (c *EpochCache) LatestEpoch() int32 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.entries) == 0 {
		return UndefinedEpoch
	}
	return c.entries[len(c.entries)-1].Epoch
}

// LatestEpochBefore returns the newest epoch with an entry starting below
// endOffset: the epoch of the last record of a log ending there (entries
// at the end itself are epochs that have not appended yet), or
// UndefinedEpoch if there is none.
func (c *EpochCache) LatestEpochBefore(endOffset int64) int32 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i := sort.Search(len(c.entries), func(i int) bool { return c.entries[i].StartOffset >= endOffset })
	if i == 0 {
		return UndefinedEpoch
	}
	return c.entries[i-1].Epoch
}

// Assign records that epoch starts at startOffset. A leader calls it before
// appending its first batch of a new epoch; a follower (later) calls it for
// every epoch it sees in replicated batches. Re-assigning the latest epoch at
// the same or a higher offset is a no-op, so callers may call it liberally.
//
// To keep both sequences strictly increasing, every trailing entry whose epoch
// is >= epoch or whose start offset is >= startOffset is dropped first: such
// entries describe history that the new leader's log has overwritten (or an
// epoch that never got to append).
func (c *EpochCache) Assign(epoch int32, startOffset int64) error {
	if epoch < 0 || startOffset < 0 {
		return fmt.Errorf("assign leader epoch %d at offset %d: negative value", epoch, startOffset)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.entries); n > 0 {
		last := c.entries[n-1]
		if last.Epoch == epoch && startOffset >= last.StartOffset {
			return nil
		}
	}
	next, removed := assignEntry(c.entries, EpochEntry{Epoch: epoch, StartOffset: startOffset})
	if len(removed) > 1 || (len(removed) == 1 && removed[0].StartOffset != startOffset) {
		// Removing the entry of an epoch that never appended (same start
		// offset) is routine; anything else means history was rewritten.
		c.logger.Warn("leader epoch cache: new entry replaces later history",
			"dir", c.dir, "epoch", epoch, "startOffset", startOffset, "removed", removed)
	}
	return c.replace(next)
}

// assignEntry returns a new slice holding entries without the trailing
// entries that conflict with e (epoch >= e.Epoch or start >= e.StartOffset),
// followed by e, and the removed entries.
func assignEntry(entries []EpochEntry, e EpochEntry) (next, removed []EpochEntry) {
	keep := len(entries)
	for keep > 0 && (entries[keep-1].Epoch >= e.Epoch || entries[keep-1].StartOffset >= e.StartOffset) {
		keep--
	}
	next = make([]EpochEntry, keep, keep+1)
	copy(next, entries[:keep])
	return append(next, e), entries[keep:]
}

// EndOffsetFor answers OffsetForLeaderEpoch (KIP-101, KIP-279) for a replica
// whose log ends at logEndOffset:
//   - requested == UndefinedEpoch, or requested newer than every entry (or an
//     empty cache): (UndefinedEpoch, UndefinedEpochOffset);
//   - requested == latest epoch: (latest, logEndOffset);
//   - otherwise, with E the largest known epoch <= requested and N the next
//     higher entry: (E, N.StartOffset) — the follower must truncate to N's
//     start because epoch E's records end there;
//   - requested older than every entry: (requested, first.StartOffset), as
//     Kafka does, because nothing of the requested epoch survives before the
//     first known epoch's start.
func (c *EpochCache) EndOffsetFor(requested int32, logEndOffset int64) (int32, int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := len(c.entries)
	if requested == UndefinedEpoch || n == 0 {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	if requested == c.entries[n-1].Epoch {
		return requested, logEndOffset
	}
	// higher is the first entry with an epoch above requested.
	higher := sort.Search(n, func(i int) bool { return c.entries[i].Epoch > requested })
	if higher == n {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	if higher == 0 {
		return requested, c.entries[0].StartOffset
	}
	return c.entries[higher-1].Epoch, c.entries[higher].StartOffset
}

// TruncateFromEnd drops the entries of epochs that start at or after
// endOffset; the partition calls it whenever the log is truncated to
// endOffset (recovery, follower truncation).
func (c *EpochCache) TruncateFromEnd(endOffset int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := len(c.entries)
	for keep > 0 && c.entries[keep-1].StartOffset >= endOffset {
		keep--
	}
	if keep == len(c.entries) {
		return nil
	}
	return c.replace(append([]EpochEntry(nil), c.entries[:keep]...))
}

// truncateFromEndUnsynced is TruncateFromEnd without the write: Open
// calls it, and the dropped entries stay in the file until the next
// change, or persist, writes it. Entries at or past the log end in the
// file are harmless until a batch is written there: Open drops them
// again, and the appends persist first.
func (c *EpochCache) truncateFromEndUnsynced(endOffset int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keep := len(c.entries)
	for keep > 0 && c.entries[keep-1].StartOffset >= endOffset {
		keep--
	}
	c.entries = append([]EpochEntry(nil), c.entries[:keep]...)
}

// persist writes the entries if the file may say otherwise. Appends call
// it before writing batches, so the file never holds an entry at or past
// an offset a written batch of another epoch holds.
func (c *EpochCache) persist() error {
	c.mu.RLock()
	same := c.diskKnown && slices.Equal(c.entries, c.disk)
	c.mu.RUnlock()
	if same {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replace(c.entries)
}

// TruncateFromStart forgets history below the new log start offset: entries
// starting at or below startOffset collapse into one, the newest of them,
// moved to startOffset (its epoch still owns the records from there on).
func (c *EpochCache) TruncateFromStart(startOffset int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// covered = number of entries starting at or below startOffset.
	covered := sort.Search(len(c.entries), func(i int) bool { return c.entries[i].StartOffset > startOffset })
	if covered == 0 || (covered == 1 && c.entries[0].StartOffset == startOffset) {
		return nil
	}
	next := make([]EpochEntry, 0, len(c.entries)-covered+1)
	next = append(next, EpochEntry{Epoch: c.entries[covered-1].Epoch, StartOffset: startOffset})
	next = append(next, c.entries[covered:]...)
	return c.replace(next)
}

// Reset replaces the whole history (used when rebuilding it from the log).
func (c *EpochCache) Reset(entries []EpochEntry) error {
	for i := 1; i < len(entries); i++ {
		if entries[i].Epoch <= entries[i-1].Epoch || entries[i].StartOffset <= entries[i-1].StartOffset {
			return fmt.Errorf("reset leader epoch cache: entry %d %v does not follow %v", i, entries[i], entries[i-1])
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replace(append([]EpochEntry(nil), entries...))
}

// replace persists entries and then installs them; on a write error the
// in-memory state is left unchanged so memory never runs ahead of disk.
// Callers hold c.mu.
func (c *EpochCache) replace(entries []EpochEntry) error {
	if c.diskKnown && slices.Equal(entries, c.disk) {
		// The file already says this, and is as durable as when it
		// was written.
		c.entries = entries
		return nil
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%d\n%d\n", epochCheckpointVersion, len(entries))
	for _, e := range entries {
		fmt.Fprintf(&buf, "%d %d\n", e.Epoch, e.StartOffset)
	}
	if err := segment.WriteFileAtomic(c.fs, filepath.Join(c.dir, EpochCheckpointFile), buf.Bytes()); err != nil {
		c.diskKnown = false // the old file, the new one, or torn: unknown
		return fmt.Errorf("persist leader epoch cache: %w", err)
	}
	c.entries = entries
	c.disk, c.diskKnown = entries, true
	return nil
}
