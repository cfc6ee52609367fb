package metarepl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"

	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/segment"
)

// The leader-epochs file beside the log, written whole with
// segment.WriteFileAtomic (so a crash leaves the old or the new one):
//
//	"SLME" | version 1 | count uint32 | count × (epoch int32 | start int64) | crc32c uint32
//
// big-endian; the checksum covers everything before it. A missing file is
// an empty cache.
var epochsMagic = []byte("SLME\x01")

func sealed(body []byte) []byte {
	return binary.BigEndian.AppendUint32(body, crc32.Checksum(body, castagnoli))
}

// unseal checks magic and checksum and returns the body after the magic.
func unseal(data, magic []byte, path string) ([]byte, error) {
	if len(data) < len(magic)+4 || !bytes.HasPrefix(data, magic) {
		return nil, fmt.Errorf("%w: %s: bad header", ErrCorrupt, path)
	}
	n := len(data) - 4
	if crc32.Checksum(data[:n], castagnoli) != binary.BigEndian.Uint32(data[n:]) {
		return nil, fmt.Errorf("%w: %s: bad checksum", ErrCorrupt, path)
	}
	return data[len(magic):n], nil
}

func writeEpochs(fsys segment.FS, path string, entries []isr.EpochEntry) error {
	b := append([]byte(nil), epochsMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(entries)))
	for _, e := range entries {
		b = binary.BigEndian.AppendUint32(b, uint32(e.Epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.StartOffset))
	}
	if err := segment.WriteFileAtomic(fsys, path, sealed(b)); err != nil {
		return fmt.Errorf("metarepl: write epoch cache: %w", err)
	}
	return nil
}

func readEpochs(fsys segment.FS, path string) ([]isr.EpochEntry, error) {
	data, err := segment.ReadFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("metarepl: read %s: %w", path, err)
	}
	body, err := unseal(data, epochsMagic, path)
	if err != nil {
		return nil, err
	}
	if len(body) < 4 {
		return nil, fmt.Errorf("%w: %s: short", ErrCorrupt, path)
	}
	n := binary.BigEndian.Uint32(body)
	body = body[4:]
	if uint64(len(body)) != uint64(n)*12 {
		return nil, fmt.Errorf("%w: %s: %d entries in %d bytes", ErrCorrupt, path, n, len(body))
	}
	out := make([]isr.EpochEntry, n)
	for i := range out {
		out[i] = isr.EpochEntry{Epoch: int32(binary.BigEndian.Uint32(body)), StartOffset: int64(binary.BigEndian.Uint64(body[4:]))}
		body = body[12:]
	}
	return out, nil
}

// hwFile holds the high watermark in two slots, written in turn in place
// with one fsync (no rename, no directory fsync: it changes on every
// commit):
//
//	slot = "SLMH" | version 1 | seq u64 | hw i64 | crc32c u32   (25 bytes)
//
// Each write rewrites both slots from the start of the file: the newer
// (seq+1) in slot seq+1 mod 2, the other unchanged. A torn write damages
// at most the slot being written, whose checksum then fails, and the other
// still holds the previous value; a reader takes the valid slot with the
// highest seq. The file is created whole with WriteFileAtomic.
const hwSlot = 25

var hwMagic = []byte("SLMH\x01")

// hwState is the high-watermark file as last written.
type hwState struct {
	seq  uint64
	file [2 * hwSlot]byte
}

func hwSlotBytes(seq uint64, hw int64) []byte {
	b := append([]byte(nil), hwMagic...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, uint64(hw))
	return sealed(b)
}

// write persists hw: fsynced before it returns.
func (st *hwState) write(fsys segment.FS, path string, hw int64) error {
	next := *st
	next.seq++
	copy(next.file[(next.seq%2)*hwSlot:], hwSlotBytes(next.seq, hw))
	if st.seq == 0 {
		if err := segment.WriteFileAtomic(fsys, path, next.file[:]); err != nil {
			return fmt.Errorf("metarepl: write high watermark: %w", err)
		}
		*st = next
		return nil
	}
	f, err := fsys.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("metarepl: open %s: %w", path, err)
	}
	if _, err := f.Write(next.file[:]); err != nil {
		f.Close()
		return fmt.Errorf("metarepl: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("metarepl: fsync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("metarepl: close %s: %w", path, err)
	}
	*st = next
	return nil
}

// readHW reads the high-watermark file: 0 when absent, ErrCorrupt when no
// slot is valid.
func readHW(fsys segment.FS, path string) (hwState, int64, error) {
	var st hwState
	data, err := segment.ReadFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, 0, nil
	}
	if err != nil {
		return st, 0, fmt.Errorf("metarepl: read %s: %w", path, err)
	}
	var hw int64
	found := false
	for i := 0; i+hwSlot <= len(data) && i < 2*hwSlot; i += hwSlot {
		body, err := unseal(data[i:i+hwSlot], hwMagic, path)
		if err != nil {
			continue
		}
		seq := binary.BigEndian.Uint64(body)
		if !found || seq > st.seq {
			st.seq, hw, found = seq, int64(binary.BigEndian.Uint64(body[8:])), true
		}
	}
	if !found {
		return st, 0, fmt.Errorf("%w: %s: no valid slot", ErrCorrupt, path)
	}
	// Rewrite the invalid slot, if any, with the next write: keep the valid
	// one's bytes where they are.
	copy(st.file[:], data)
	return st, hw, nil
}
