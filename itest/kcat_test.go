package itest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kcatBin returns kcat's path, skipping the test where it is missing
// (failing it in CI, which must install it).
func kcatBin(t *testing.T) string {
	path, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must install kcat")
		}
		t.Skip("kcat not on PATH")
	}
	return path
}

func runKcat(t *testing.T, bin string, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %v: %v\nstderr:\n%s", args, err, errb.String())
	}
	return out.String()
}

// batchCodecs returns the compression codec (attributes & 7) of every batch
// in the partition's newest log file.
func batchCodecs(t *testing.T, dataDir, topic string) map[int]int {
	data, err := os.ReadFile(newestLogFile(t, dataDir, topic, 0))
	if err != nil {
		t.Fatal(err)
	}
	codecs := map[int]int{}
	for _, bb := range batchBounds(t, data) {
		codecs[int(binary.BigEndian.Uint16(data[bb[0]+21:])&7)]++
	}
	return codecs
}

// TestKcat: the stock librdkafka tool produces and consumes against Sluice,
// and interoperates with franz-go in both directions, compressed.
func TestKcat(t *testing.T) { engines.Run(t, testKcat) }

func testKcat(t *testing.T, engine string) {
	kcat := kcatBin(t)
	dir := t.TempDir()
	b := startBroker(t, engine, dir)

	// Values repeat a run of bytes, so that every codec shrinks even a batch
	// of one record: librdkafka sends a batch uncompressed when compressing
	// it saves nothing, and how many records a batch holds depends on how
	// fast kcat reads its input, which the test does not control.
	pad := strings.Repeat("abcd", 32)
	var in, want strings.Builder
	for i := range 100 {
		fmt.Fprintf(&in, "key-%d:value %d %s\n", i, i, pad)
		fmt.Fprintf(&want, "key-%d=value %d %s\n", i, i, pad)
	}

	t.Run("kcat to kcat", func(t *testing.T) {
		const topic = "kcat-plain"
		createTopic(t, b.Addr(), topic, 1, nil)
		runKcat(t, kcat, in.String(), "-P", "-b", b.Addr(), "-t", topic, "-K:")
		out := runKcat(t, kcat, "", "-C", "-b", b.Addr(), "-t", topic, "-o", "beginning", "-e", "-f", `%k=%s\n`)
		if out != want.String() {
			t.Fatalf("kcat consumed:\n%s\nwant:\n%s", out, want.String())
		}
	})

	t.Run("franz-go to kcat, lz4", func(t *testing.T) {
		const topic = "franz-to-kcat"
		createTopic(t, b.Addr(), topic, 1, nil)
		cl := newClient(t, b.Addr(), kgo.ProducerBatchCompression(kgo.Lz4Compression()))
		var recs []*kgo.Record
		for i := range 100 {
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("key-%d", i)), Value: []byte(fmt.Sprintf("value %d %s", i, pad))})
		}
		produceSync(t, cl, recs...)
		if err := checkCodecs(batchCodecs(t, dir, topic), 3); err != nil {
			t.Fatalf("lz4: %v", err)
		}
		out := runKcat(t, kcat, "", "-C", "-b", b.Addr(), "-t", topic, "-o", "beginning", "-e", "-f", `%k=%s\n`)
		if out != want.String() {
			t.Fatalf("kcat consumed:\n%s\nwant:\n%s", out, want.String())
		}
	})

	// librdkafka silently sends uncompressed batches when it thinks the
	// broker cannot take a codec: lz4 needs FindCoordinator advertised,
	// zstd Produce v7 and Fetch v10, and up to librdkafka 2.11.0 gzip,
	// snappy and lz4 need a Produce range that reaches v0. A batch in the
	// chosen codec on disk proves the broker passed every check. A batch
	// without compression is legitimate too (librdkafka keeps a batch
	// uncompressed when compressing it would not make it smaller), so the
	// test holds only what is promised: the records round-trip, at least one
	// batch carries the codec, and no batch carries another codec.
	for _, c := range []struct {
		name string
		attr int
	}{{"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}} {
		t.Run("kcat to franz-go, "+c.name, func(t *testing.T) {
			topic := "kcat-to-franz-" + c.name
			createTopic(t, b.Addr(), topic, 1, nil)
			runKcat(t, kcat, in.String(), "-P", "-b", b.Addr(), "-t", topic, "-K:", "-z", c.name)
			if err := checkCodecs(batchCodecs(t, dir, topic), c.attr); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			got := consumeAll(t, b.Addr(), topic)
			var sb strings.Builder
			for _, r := range got {
				fmt.Fprintf(&sb, "%s=%s\n", r.Key, r.Value)
			}
			if sb.String() != want.String() {
				t.Fatalf("franz-go consumed:\n%s\nwant:\n%s", sb.String(), want.String())
			}
			checkContiguous(t, got)
		})
	}
}

// checkCodecs accepts the batch codec counts of a partition produced with
// codec want when at least one batch uses it and every other batch is
// uncompressed (0).
func checkCodecs(counts map[int]int, want int) error {
	if counts[want] == 0 {
		return fmt.Errorf("batch codecs on disk %v: no batch in codec %d", counts, want)
	}
	for codec := range counts {
		if codec != want && codec != 0 {
			return fmt.Errorf("batch codecs on disk %v: codec %d was not asked for (want %d, or none)", counts, codec, want)
		}
	}
	return nil
}

// The codec check passes what librdkafka may legitimately do and fails what
// it must not.
func TestCheckCodecs(t *testing.T) {
	for _, tc := range []struct {
		counts map[int]int
		ok     bool
	}{
		{map[int]int{2: 3}, true},
		{map[int]int{0: 1, 2: 1}, true}, // a small first batch sent plain
		{map[int]int{0: 4}, false},      // the codec was never used
		{map[int]int{1: 1, 2: 1}, false},
		{map[int]int{}, false},
	} {
		if err := checkCodecs(tc.counts, 2); (err == nil) != tc.ok {
			t.Errorf("checkCodecs(%v, 2) = %v, want ok=%v", tc.counts, err, tc.ok)
		}
	}
}
