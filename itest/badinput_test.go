package itest

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

// abuse is one kind of misbehaving connection. It returns once it is done
// with the connection; the broker must drop or answer it without harm.
type abuse struct {
	name string
	run  func(t *testing.T, rc *rawConn, rng *rand.Rand)
}

func frameOfSize(size uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, size)
}

var abuses = []abuse{
	{"size -1", func(t *testing.T, rc *rawConn, _ *rand.Rand) {
		_, _ = rc.c.Write(frameOfSize(0xffffffff))
		rc.expectClosed("frame size -1")
	}},
	{"size 2GiB", func(t *testing.T, rc *rawConn, _ *rand.Rand) {
		_, _ = rc.c.Write(append(frameOfSize(0x7fffffff), make([]byte, 64)...))
		rc.expectClosed("frame size 2 GiB")
	}},
	{"random garbage", func(t *testing.T, rc *rawConn, rng *rand.Rand) {
		body := make([]byte, 200)
		for i := range body {
			body[i] = byte(rng.UintN(256))
		}
		// A key no API has, so the garbage cannot pass as a request.
		binary.BigEndian.PutUint16(body, uint16(0x4000+rng.UintN(0x3fff)))
		_, _ = rc.c.Write(append(frameOfSize(uint32(len(body))), body...))
		rc.expectClosed("garbage frame")
	}},
	{"half request", func(t *testing.T, rc *rawConn, _ *rand.Rand) {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(9)
		full := frameRequest(req, 1)
		_, _ = rc.c.Write(full[:len(full)/2])
		rc.c.Close()
	}},
	{"unknown api key", func(t *testing.T, rc *rawConn, _ *rand.Rand) {
		b := frameOfSize(0)
		b = binary.BigEndian.AppendUint16(b, 9999)
		b = binary.BigEndian.AppendUint16(b, 0)
		b = binary.BigEndian.AppendUint32(b, 7)
		b = binary.BigEndian.AppendUint16(b, 0xffff) // null client id
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		_, _ = rc.c.Write(b)
		rc.expectClosed("unknown api key 9999")
	}},
}

// TestBadInputKeepsBrokerAlive: malformed frames, bad batches and bad
// names are refused without crashing the broker, writing anything, or
// leaking file descriptors.
func TestBadInputKeepsBrokerAlive(t *testing.T) { engines.Run(t, testBadInputKeepsBrokerAlive) }

func testBadInputKeepsBrokerAlive(t *testing.T, engine string) {
	b := startBroker(t, engine, t.TempDir())
	const topic, small = "sane", "small"
	createTopic(t, b.Addr(), topic, 1, nil)
	mmb := "1000"
	createTopic(t, b.Addr(), small, 1, map[string]*string{"max.message.bytes": &mmb})
	rng := rand.New(rand.NewPCG(1, 2))

	for _, a := range abuses {
		t.Run(a.name, func(t *testing.T) { a.run(t, dialRaw(t, b.Addr()), rng) })
	}

	t.Run("bad CRC", func(t *testing.T) {
		before := endOffsets(t, b.Addr(), topic)[0]
		batch := oneRecord([]byte("never stored"))
		batch[17] ^= 0x01 // CRC field
		sp := produceRaw(t, dialRaw(t, b.Addr()), 3, topic, batch)
		if sp.ErrorCode != kerr.CorruptMessage.Code {
			t.Fatalf("bad CRC: error %v, want CORRUPT_MESSAGE", kerr.ErrorForCode(sp.ErrorCode))
		}
		if after := endOffsets(t, b.Addr(), topic)[0]; after != before {
			t.Fatalf("end offset moved from %d to %d after a refused batch", before, after)
		}
	})
	t.Run("too large", func(t *testing.T) {
		batch := oneRecord([]byte(strings.Repeat("x", 2000)))
		sp := produceRaw(t, dialRaw(t, b.Addr()), 3, small, batch)
		if sp.ErrorCode != kerr.MessageTooLarge.Code {
			t.Fatalf("2000-byte batch to max.message.bytes=1000: error %v, want MESSAGE_TOO_LARGE", kerr.ErrorForCode(sp.ErrorCode))
		}
		if end := endOffsets(t, b.Addr(), small)[0]; end != 0 {
			t.Fatalf("end offset %d after a refused batch", end)
		}
		ok := oneRecord([]byte("fits"))
		if sp := produceRaw(t, dialRaw(t, b.Addr()), 3, small, ok); sp.ErrorCode != 0 {
			t.Fatalf("small batch to the same topic: %v", kerr.ErrorForCode(sp.ErrorCode))
		}
	})
	t.Run("invalid topic name", func(t *testing.T) {
		// kadm returns the topic's error code both ways.
		resp, err := admin(t, b.Addr()).CreateTopic(testCtx(t, 15*time.Second), 1, 1, nil, "bad name!")
		if !errors.Is(err, kerr.InvalidTopicException) || !errors.Is(resp.Err, kerr.InvalidTopicException) {
			t.Fatalf("CreateTopics(\"bad name!\"): %v / %v, want INVALID_TOPIC_EXCEPTION", err, resp.Err)
		}
		topics, err := admin(t, b.Addr()).ListTopics(testCtx(t, 15*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if topics.Has("bad name!") || len(topics.Names()) != 2 {
			t.Fatalf("topics after the refused create: %v", topics.Names())
		}
	})

	t.Run("fd leak", func(t *testing.T) {
		fds := func() int {
			ents, err := os.ReadDir("/proc/" + itoa(b.Pid()) + "/fd")
			if err != nil {
				t.Fatalf("reading broker fds: %v", err)
			}
			return len(ents)
		}
		// Let connections of earlier subtests finish closing.
		time.Sleep(200 * time.Millisecond)
		base := fds()
		for i := range 200 {
			rc := dialRaw(t, b.Addr())
			abuses[i%len(abuses)].run(t, rc, rng)
			rc.c.Close()
		}
		const margin = 3
		var n int
		if !testkit.Poll(5*time.Second, func() bool { n = fds(); return n <= base+margin }) {
			t.Fatalf("broker holds %d fds after 200 abusive connections, baseline %d", n, base)
		}
		t.Logf("broker fds: baseline %d, after abuse %d", base, n)
	})

	if !b.Alive() {
		t.Fatal("broker process died")
	}
	cl := newClient(t, b.Addr())
	r := &kgo.Record{Topic: topic, Value: []byte("still works")}
	produceSync(t, cl, r)
	got := consumeAll(t, b.Addr(), topic)
	if len(got) != 1 || string(got[0].Value) != "still works" {
		t.Fatalf("after the abuse: consumed %d records", len(got))
	}
}

// oneRecord is a producer's batch of one record with value, timestamped now.
func oneRecord(value []byte) []byte {
	return testkit.Batch{
		PartitionLeaderEpoch: -1,
		FirstTimestamp:       time.Now().UnixMilli(),
		Records:              []testkit.Record{{Value: value}},
	}.Encode()
}
