package replica

import (
	"io"
	"log/slog"
	"testing"

	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/segment"
)

// testLogger discards output so test logs stay readable; set -v style
// debugging by swapping in slog.Default().
func testLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// batchOpts describes a record batch built by makeBatch.
type batchOpts struct {
	pid      int64 // -1: not idempotent
	epoch    int16
	seq      int32
	n        int   // records
	ts       int64 // first timestamp; record i has ts+i
	attrs    int16
	valueLen int
}

// makeBatch encodes an uncompressed magic-2 record batch the way a producer
// would (base offset 0, partition leader epoch -1), with o.n records (at
// least one) of o.valueLen zero bytes and no key.
func makeBatch(t testing.TB, o batchOpts) []byte {
	t.Helper()
	b := testkit.Batch{PartitionLeaderEpoch: -1, Attributes: o.attrs, FirstTimestamp: o.ts}
	if o.pid >= 0 {
		b.Producer = &testkit.Producer{ID: o.pid, Epoch: o.epoch, FirstSequence: o.seq}
	}
	for i := range max(o.n, 1) {
		b.Records = append(b.Records, testkit.Record{TimestampDelta: int64(i), Value: make([]byte, o.valueLen)})
	}
	return b.Encode()
}

// leaderBatches encodes batches as a leader's log holds them: from base,
// each starting where the one before ended, stamped with epoch.
func leaderBatches(t testing.TB, base int64, epoch int32, opts ...batchOpts) []byte {
	t.Helper()
	var out []byte
	for _, o := range opts {
		b := makeBatch(t, o)
		segment.SetBaseOffset(b, base)
		segment.SetPartitionLeaderEpoch(b, epoch)
		out = append(out, b...)
		base += int64(max(o.n, 1))
	}
	return out
}
