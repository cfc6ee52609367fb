package segment

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

// batchSpec describes a test batch.
type batchSpec struct {
	records  int
	valSize  int
	ts       int64 // first timestamp; record i gets ts+i
	codec    int16 // attributes codec bits; records are not really compressed
	producer int64
}

// makeBatch builds a valid magic-2 batch, base offset 0: record i has key
// "key-<i>", a value of valSize copies of one letter and one header.
func makeBatch(tb testing.TB, s batchSpec) []byte {
	tb.Helper()
	b := testkit.Batch{Attributes: s.codec, FirstTimestamp: s.ts}
	if s.producer != 0 {
		b.Producer = &testkit.Producer{ID: s.producer, Epoch: -1, FirstSequence: -1}
	}
	for i := 0; i < s.records; i++ {
		b.Records = append(b.Records, testkit.Record{
			TimestampDelta: int64(i),
			Key:            []byte(fmt.Sprintf("key-%d", i)),
			Value:          bytes.Repeat([]byte{byte('a' + i%26)}, s.valSize),
			Headers:        []kmsg.Header{{Key: "h", Value: []byte("v")}},
		})
	}
	return b.Encode()
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// clock is an injectable, thread-safe fake time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const testDir = "/data/t-0"

func testConfig() Config {
	return Config{SegmentBytes: 4096, IndexIntervalBytes: 256, RetentionBytes: -1, RetentionMs: -1}
}

func openLog(tb testing.TB, fsys FS, dir string, cfg Config, c *clock) *Log {
	tb.Helper()
	if c == nil {
		c = newClock()
	}
	l, err := Open(fsys, dir, cfg, c.now, discardLogger())
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return l
}

// appendSpec validates and appends one batch, returning the stored copy
// (with its assigned offsets) and the append info.
func appendSpec(tb testing.TB, l *Log, s batchSpec) ([]byte, AppendInfo) {
	tb.Helper()
	b := makeBatch(tb, s)
	hs, err := ValidateBatches(b, 0)
	if err != nil {
		tb.Fatalf("ValidateBatches: %v", err)
	}
	info, err := l.Append(b, hs, 7, -1)
	if err != nil {
		tb.Fatalf("Append: %v", err)
	}
	return b, info
}

// readBytes copies out the data of a ReadResult.
func readBytes(tb testing.TB, r ReadResult) []byte {
	tb.Helper()
	var out []byte
	for _, fr := range r.Ranges {
		b := make([]byte, fr.Length)
		if n, err := fr.File.ReadAt(b, fr.Offset); int64(n) != fr.Length {
			tb.Fatalf("ReadAt %d@%d: n=%d err=%v", fr.Length, fr.Offset, n, err)
		}
		out = append(out, b...)
	}
	if int64(len(out)) != r.Bytes {
		tb.Fatalf("ranges hold %d bytes, Bytes says %d", len(out), r.Bytes)
	}
	return out
}

// headersOf parses the batches in b (which must be valid).
func headersOf(tb testing.TB, b []byte) []BatchHeader {
	tb.Helper()
	if len(b) == 0 {
		return nil
	}
	hs, err := ValidateBatches(b, 0)
	if err != nil {
		tb.Fatalf("stored batches do not validate: %v", err)
	}
	return hs
}
