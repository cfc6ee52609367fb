package metarepl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"

	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/segment"
)

// The two small files beside the log, each written whole with
// segment.WriteFileAtomic (so a crash leaves the old or the new one):
//
//	leader-epochs:  "SLME" | version 1 | count uint32 | count × (epoch int32 | start int64) | crc32c uint32
//	high-watermark: "SLMH" | version 1 | hw int64 | crc32c uint32
//
// big-endian; the checksum covers everything before it. A missing file is
// an empty cache or a high watermark of 0.
var (
	epochsMagic = []byte("SLME\x01")
	hwMagic     = []byte("SLMH\x01")
)

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

func writeHW(fsys segment.FS, path string, hw int64) error {
	b := binary.BigEndian.AppendUint64(append([]byte(nil), hwMagic...), uint64(hw))
	if err := segment.WriteFileAtomic(fsys, path, sealed(b)); err != nil {
		return fmt.Errorf("metarepl: write high watermark: %w", err)
	}
	return nil
}

func readHW(fsys segment.FS, path string) (int64, error) {
	data, err := segment.ReadFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("metarepl: read %s: %w", path, err)
	}
	body, err := unseal(data, hwMagic, path)
	if err != nil {
		return 0, err
	}
	if len(body) != 8 {
		return 0, fmt.Errorf("%w: %s: %d bytes", ErrCorrupt, path, len(body))
	}
	return int64(binary.BigEndian.Uint64(body)), nil
}
