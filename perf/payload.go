package perf

import (
	"math"
	"math/rand/v2"
	"strconv"
)

// payloadChunk is the stretch over which random and compressible bytes
// alternate. Spreading the compressible part through the record, instead
// of leaving one long run at the end, keeps the ratio close to the request
// for every codec: each chunk's zero run is long enough for even snappy's
// short matches to take most of it away.
const payloadChunk = 256

// Bounds of the payload pool. Batches are compressed one at a time, so a
// pool of distinct payloads larger than a batch means no record in a batch
// repeats another one the compressor has just seen.
const (
	minPoolBytes    = 8 << 20
	maxPoolBytes    = 64 << 20
	minPoolPayloads = 16
	maxPoolPayloads = 1 << 16
)

// newPayloads pre-generates the distinct values a run sends, so payload
// generation costs nothing while measuring. compressibility is the
// fraction of each payload that is zeros (and compresses away); the rest is
// random and does not compress. The generator is seeded so two runs with
// the same flags send the same bytes.
func newPayloads(size int, compressibility float64, batchBytes int) [][]byte {
	target := min(max(2*batchBytes, minPoolBytes), maxPoolBytes)
	n := min(max((target+size-1)/size, minPoolPayloads), maxPoolPayloads)
	rng := rand.NewChaCha8([32]byte{'s', 'l', 'u', 'i', 'c', 'e'})
	backing := make([]byte, n*size)
	pool := make([][]byte, n)
	for i := range pool {
		p := backing[i*size : (i+1)*size : (i+1)*size]
		for off := 0; off < len(p); off += payloadChunk {
			chunk := p[off:min(off+payloadChunk, len(p))]
			random := int(math.Round(float64(len(chunk)) * (1 - compressibility)))
			_, _ = rng.Read(chunk[:random]) // ChaCha8 never fails; the rest stays zero
		}
		pool[i] = p
	}
	return pool
}

// newKeys returns the n distinct keys of a --keys run, "k0" to "k<n-1>";
// nil when n is 0 (records without a key). Records take them in turn, so
// every key is overwritten equally often: on a compacted topic each pass
// of the cleaner keeps n records and drops the rest.
func newKeys(n int) [][]byte {
	if n == 0 {
		return nil
	}
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = strconv.AppendInt([]byte{'k'}, int64(i), 10)
	}
	return keys
}
