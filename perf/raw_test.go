package perf

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/sluice-io/sluice/internal/testkit"
)

// batch is a v2 record batch of size bytes in total (at least the 61 of
// the header) at base offset base with last offset delta lastDelta; its
// records section is opaque zeros, which walkBatches never reads.
func batch(base int64, lastDelta int32, size int) []byte {
	return testkit.Batch{BaseOffset: base, RecordsSection: make([]byte, size-61), NumRecords: lastDelta + 1}.Encode()
}

func TestWalkBatches(t *testing.T) {
	var wire []byte
	wire = append(wire, batch(100, 9, 200)...)       // offsets 100-109
	wire = append(wire, batch(110, 0, 80)...)        // 110
	wire = append(wire, batch(111, 4, 300)[:150]...) // cut by the fetch limit
	records, bytes, next, err := walkBatches(wire)
	if err != nil {
		t.Fatal(err)
	}
	if records != 11 || bytes != 280 || next != 111 {
		t.Fatalf("records %d bytes %d next %d, want 11, 280, 111", records, bytes, next)
	}

	if r, b, n, err := walkBatches(nil); err != nil || r != 0 || b != 0 || n != 0 {
		t.Fatalf("empty: %d %d %d %v", r, b, n, err)
	}
	if r, _, _, err := walkBatches(wire[:5]); err != nil || r != 0 {
		t.Fatalf("shorter than a header: %d %v", r, err)
	}
}

func TestWalkBatchesRejectsGarbage(t *testing.T) {
	old := batch(0, 0, 100)
	old[16] = 1
	short := batch(0, 0, 100)
	binary.BigEndian.PutUint32(short[8:], 10)
	negative := batch(0, -2, 100)
	for name, b := range map[string][]byte{"magic 1": old, "short length": short, "negative delta": negative} {
		if _, _, _, err := walkBatches(b); !errors.Is(err, errBadBatch) {
			t.Errorf("%s: err %v, want errBadBatch", name, err)
		}
	}
}
