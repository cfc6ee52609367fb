package itest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

// TestIdempotentRetryAfterRestart: an idempotent producer's retry of a
// batch the broker already has is answered with the original offset, also
// after a clean restart and after kill -9, and never written twice;
// sequence gaps are refused.
func TestIdempotentRetryAfterRestart(t *testing.T) { engines.Run(t, testIdempotentRetryAfterRestart) }

func testIdempotentRetryAfterRestart(t *testing.T, engine string) {
	dir := t.TempDir()
	b := startBroker(t, engine, dir)
	const topic = "idempotent"
	createTopic(t, b.Addr(), topic, 1, nil)

	rc := dialRaw(t, b.Addr())
	ipReq := kmsg.NewPtrInitProducerIDRequest()
	ipReq.SetVersion(4)
	ipReq.TransactionTimeoutMillis = -1
	ipReq.ProducerID, ipReq.ProducerEpoch = -1, -1
	ip := rc.mustRoundTrip(ipReq).(*kmsg.InitProducerIDResponse)
	if err := kerr.ErrorForCode(ip.ErrorCode); err != nil || ip.ProducerID < 0 {
		t.Fatalf("InitProducerID: %v, id %d", err, ip.ProducerID)
	}
	pid, epoch := ip.ProducerID, ip.ProducerEpoch
	ts := int64(1_700_000_000_000)
	// batch is the producer's one-record batch with sequence seq.
	batch := func(seq int32, key, value string) []byte {
		return testkit.Batch{
			PartitionLeaderEpoch: -1,
			FirstTimestamp:       ts + int64(seq),
			Producer:             &testkit.Producer{ID: pid, Epoch: epoch, FirstSequence: seq},
			Records:              []testkit.Record{{Key: []byte(key), Value: []byte(value)}},
		}.Encode()
	}
	batch0 := batch(0, "k0", "first")

	expectOffset := func(rc *rawConn, what string, batch []byte, want int64) {
		t.Helper()
		sp := produceRaw(t, rc, 9, topic, append([]byte(nil), batch...))
		if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if sp.BaseOffset != want {
			t.Fatalf("%s: base offset %d, want %d", what, sp.BaseOffset, want)
		}
	}
	expectOffset(rc, "first produce", batch0, 0)
	expectOffset(rc, "retry", batch0, 0)

	b.Stop()
	b = startBroker(t, engine, dir)
	expectOffset(dialRaw(t, b.Addr()), "retry after clean restart", batch0, 0)

	b.Kill()
	b = startBroker(t, engine, dir)
	rc = dialRaw(t, b.Addr())
	expectOffset(rc, "retry after kill -9", batch0, 0)

	batch1 := batch(1, "k1", "second")
	expectOffset(rc, "sequence 1", batch1, 1)
	expectOffset(rc, "retry of sequence 1", batch1, 1)

	gap := batch(5, "k5", "gap")
	sp := produceRaw(t, rc, 9, topic, gap)
	if sp.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("sequence gap: error %v (base offset %d), want OUT_OF_ORDER_SEQUENCE_NUMBER", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset)
	}

	got := consumeAll(t, b.Addr(), topic)
	if len(got) != 2 {
		t.Fatalf("topic holds %d records, want exactly 2", len(got))
	}
	checkContiguous(t, got)
	if string(got[0].Value) != "first" || string(got[1].Value) != "second" {
		t.Fatalf("records %q, %q; want first, second", got[0].Value, got[1].Value)
	}
	if got[0].ProducerID != pid || got[1].ProducerID != pid {
		t.Errorf("records carry producer id %d/%d, want %d", got[0].ProducerID, got[1].ProducerID, pid)
	}
}
