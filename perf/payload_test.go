package perf

import (
	"bytes"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// lz4Ratio compresses the pool's first batch worth of payloads as one
// stream, the way a producer compresses a batch.
func lz4Ratio(t *testing.T, pool [][]byte, batch int) float64 {
	t.Helper()
	var raw, out bytes.Buffer
	for _, p := range pool {
		if raw.Len()+len(p) > batch {
			break
		}
		raw.Write(p)
	}
	w := lz4.NewWriter(&out)
	if _, err := w.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return float64(out.Len()) / float64(raw.Len())
}

func TestPayloadCompressibility(t *testing.T) {
	for _, size := range []int{100, 1024, 10000} {
		if r := lz4Ratio(t, newPayloads(size, 0, 1<<20), 1<<20); r < 0.99 {
			t.Errorf("size %d, compressibility 0: lz4 ratio %.3f, want >= 0.99", size, r)
		}
		if r := lz4Ratio(t, newPayloads(size, 0.5, 1<<20), 1<<20); r < 0.425 || r > 0.575 {
			t.Errorf("size %d, compressibility 0.5: lz4 ratio %.3f, want 0.5 +- 15%%", size, r)
		}
	}
}

func TestPayloadsAreDistinct(t *testing.T) {
	const size, batch = 1024, 1 << 20
	pool := newPayloads(size, 0.5, batch)
	if len(pool)*size < 2*batch {
		t.Fatalf("pool of %d payloads is smaller than two batches", len(pool))
	}
	seen := map[string]bool{}
	for i, p := range pool {
		if len(p) != size {
			t.Fatalf("payload %d has %d bytes", i, len(p))
		}
		if seen[string(p)] {
			t.Fatalf("payload %d repeats an earlier one", i)
		}
		seen[string(p)] = true
	}
}

func TestPayloadPoolBounds(t *testing.T) {
	if n := len(newPayloads(1<<20, 0, 1<<20)); n != minPoolPayloads {
		t.Errorf("1 MiB records: %d payloads, want the minimum %d", n, minPoolPayloads)
	}
	if n := len(newPayloads(10, 0, 1<<20)); n != maxPoolPayloads {
		t.Errorf("10-byte records: %d payloads, want the maximum %d", n, maxPoolPayloads)
	}
}

func TestNewKeys(t *testing.T) {
	if newKeys(0) != nil {
		t.Fatal("--keys 0 must leave records without a key")
	}
	keys := newKeys(1000)
	seen := map[string]bool{}
	for _, k := range keys {
		seen[string(k)] = true
	}
	if len(keys) != 1000 || len(seen) != 1000 || string(keys[0]) != "k0" || string(keys[999]) != "k999" {
		t.Fatalf("keys: %d, %d distinct, first %q, last %q", len(keys), len(seen), keys[0], keys[len(keys)-1])
	}
}
