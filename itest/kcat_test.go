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
func TestKcat(t *testing.T) { forEachEngine(t, testKcat) }

func testKcat(t *testing.T, engine string) {
	kcat := kcatBin(t)
	dir := t.TempDir()
	b := startBroker(t, engine, dir)

	var in, want strings.Builder
	for i := range 100 {
		fmt.Fprintf(&in, "key-%d:value %d\n", i, i)
		fmt.Fprintf(&want, "key-%d=value %d\n", i, i)
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
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("key-%d", i)), Value: []byte(fmt.Sprintf("value %d", i))})
		}
		produceSync(t, cl, recs...)
		if c := batchCodecs(t, dir, topic); c[3] == 0 || len(c) != 1 {
			t.Fatalf("batch codecs on disk %v, want only lz4 (3)", c)
		}
		out := runKcat(t, kcat, "", "-C", "-b", b.Addr(), "-t", topic, "-o", "beginning", "-e", "-f", `%k=%s\n`)
		if out != want.String() {
			t.Fatalf("kcat consumed:\n%s\nwant:\n%s", out, want.String())
		}
	})

	// librdkafka silently sends uncompressed batches when it thinks the
	// broker cannot take a codec: lz4 needs FindCoordinator advertised,
	// zstd Produce v7 and Fetch v10, and up to librdkafka 2.11.0 gzip,
	// snappy and lz4 need a Produce range that reaches v0. The codec on disk
	// proves the broker passed every check.
	for _, c := range []struct {
		name string
		attr int
	}{{"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}} {
		t.Run("kcat to franz-go, "+c.name, func(t *testing.T) {
			topic := "kcat-to-franz-" + c.name
			createTopic(t, b.Addr(), topic, 1, nil)
			runKcat(t, kcat, in.String(), "-P", "-b", b.Addr(), "-t", topic, "-K:", "-z", c.name)
			if got := batchCodecs(t, dir, topic); got[c.attr] == 0 || len(got) != 1 {
				t.Errorf("batch codecs on disk %v, want only %s (%d)", got, c.name, c.attr)
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
