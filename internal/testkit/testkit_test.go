package testkit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// What a broker checks of a batch must hold for every batch Encode builds:
// the length field, the CRC, the count, the offset and timestamp deltas.
func TestBatchEncodeIsWhatABrokerReads(t *testing.T) {
	raw := Batch{
		BaseOffset:     7,
		FirstTimestamp: 1000,
		Producer:       &Producer{ID: 42, Epoch: 3, FirstSequence: 9},
		Records: []Record{
			{Key: []byte("k0"), Value: []byte("v0")},
			{Value: []byte("v1"), TimestampDelta: 5, Headers: []kmsg.Header{{Key: "h", Value: []byte("x")}}},
			{TimestampDelta: 2},
		},
	}.Encode()
	if n := int(binary.BigEndian.Uint32(raw[8:])); n != len(raw)-12 {
		t.Fatalf("length field %d, batch is %d bytes", n, len(raw))
	}
	var b kmsg.RecordBatch
	if err := b.ReadFrom(raw); err != nil {
		t.Fatal(err)
	}
	if got := crc32.Checksum(raw[21:], castagnoli); uint32(b.CRC) != got {
		t.Fatalf("CRC %#x, bytes say %#x", uint32(b.CRC), got)
	}
	if b.FirstOffset != 7 || b.Magic != 2 || b.NumRecords != 3 || b.LastOffsetDelta != 2 ||
		b.MaxTimestamp != 1005 || b.ProducerID != 42 || b.ProducerEpoch != 3 || b.FirstSequence != 9 {
		t.Fatalf("header %+v", b)
	}
	recs := b.Records
	for i := range 3 {
		var r kmsg.Record
		if err := r.ReadFrom(recs); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if r.OffsetDelta != int32(i) {
			t.Fatalf("record %d has offset delta %d", i, r.OffsetDelta)
		}
		recs = recs[len(r.AppendTo(nil)):]
	}
	if len(recs) != 0 {
		t.Fatalf("%d bytes after the last record", len(recs))
	}

	plain := Batch{}.Encode()
	if err := b.ReadFrom(plain); err != nil || b.ProducerID != -1 || b.ProducerEpoch != -1 || b.FirstSequence != -1 {
		t.Fatalf("no producer: %+v, %v", b, err)
	}
}

func TestBatchRecordsSectionIsWrittenAsItIs(t *testing.T) {
	section := []byte("not records at all")
	raw := Batch{RecordsSection: section, NumRecords: 4, FirstTimestamp: 10, Attributes: 1}.Encode()
	var b kmsg.RecordBatch
	if err := b.ReadFrom(raw); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Records, section) || b.NumRecords != 4 || b.LastOffsetDelta != 3 || b.MaxTimestamp != 13 || b.Attributes != 1 {
		t.Fatalf("header %+v", b)
	}
}

func TestFixCRC(t *testing.T) {
	raw := Batch{Records: []Record{{Value: []byte("v")}}}.Encode()
	want := binary.BigEndian.Uint32(raw[17:])
	raw[22] ^= 1 // an attribute bit
	FixCRC(raw)
	if got := binary.BigEndian.Uint32(raw[17:]); got == want || got != crc32.Checksum(raw[21:], castagnoli) {
		t.Fatalf("CRC %#x after a change (was %#x)", got, want)
	}
}

func TestPoll(t *testing.T) {
	calls := 0
	if !Poll(time.Second, func() bool { calls++; return calls == 3 }) || calls != 3 {
		t.Fatalf("Poll stopped after %d calls", calls)
	}
	start := time.Now()
	if Poll(20*time.Millisecond, func() bool { return false }) {
		t.Fatal("Poll reported a condition that never held")
	}
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Fatalf("Poll gave up after %v", waited)
	}
}

func TestEventuallyNilReportsTheLastError(t *testing.T) {
	ft := &fatalT{TB: t}
	n := 0
	done := make(chan struct{})
	go func() { // Fatalf ends the goroutine, as in a test
		defer close(done)
		EventuallyNil(ft, 10*time.Millisecond, func() error { n++; return fmt.Errorf("still %d", n) })
	}()
	<-done
	if want := fmt.Sprintf("still %d", n); !strings.HasSuffix(ft.msg, want) {
		t.Fatalf("failure %q does not carry check's error", ft.msg)
	}
}

type fatalT struct {
	testing.TB
	msg string
}

func (f *fatalT) Helper() {}
func (f *fatalT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestEnginesRun(t *testing.T) {
	var ran []string
	t.Run("all", func(t *testing.T) {
		Engines{Unavailable: func(e string) error {
			if e == "uring" {
				return errors.New("no rings")
			}
			return nil
		}}.Run(t, func(t *testing.T, engine string) { ran = append(ran, engine) })
	})
	if len(ran) != 1 || ran[0] != "std" {
		t.Fatalf("ran %v, want std only (uring unavailable)", ran)
	}
	ran = nil
	t.Run("short", func(t *testing.T) {
		Engines{OneUnderShort: true}.Run(t, func(t *testing.T, engine string) { ran = append(ran, engine) })
	})
	want := 2
	if testing.Short() {
		want = 1
	}
	if len(ran) != want {
		t.Fatalf("ran %v, want %d engines", ran, want)
	}
}

// FreePorts' ports are distinct, bindable, and outside the kernel's
// ephemeral range, so no listener on :0 can be handed one of them.
func TestFreePortsBelowEphemeralRange(t *testing.T) {
	lo := ephemeralLow()
	ports := FreePorts(t, 8)
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d returned twice: %v", p, ports)
		}
		seen[p] = true
		if lo-10000 >= 1000 && (p < 10000 || p >= lo) {
			t.Fatalf("port %d is outside [10000, %d): %v", p, lo, ports)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		_ = l.Close()
	}
}
