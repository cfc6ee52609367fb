package itest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testkit"
)

// TestCompactedTopicWithKcat: a compacted topic as users drive it with
// stock clients against the real binary. `sluice topic create --config
// cleanup.policy=compact` makes it and `sluice topic describe` shows the
// override; kcat and franz-go write keyed records, several versions per
// key, and a tombstone each; kcat reading from the beginning then sees every
// surviving key once with its latest value at the offset it was written
// at, the tombstoned keys gone, and the log end where it was. A restart
// serves the same cleaned log.
func TestCompactedTopicWithKcat(t *testing.T) { engines.Run(t, testCompactedTopicWithKcat) }

func testCompactedTopicWithKcat(t *testing.T, engine string) {
	kcat := kcatBin(t)
	dir := t.TempDir()
	sets := []string{"log.cleaner.backoff.ms=100"}
	b := startBroker(t, engine, dir, sets...)
	const topic = "kv"

	runCLI(t, b.Addr(), 0, "topic", "create", topic, "--partitions", "1",
		"--config", "cleanup.policy=compact",
		"--config", "segment.bytes=1024",
		"--config", "min.cleanable.dirty.ratio=0.01",
		"--config", "delete.retention.ms=0")
	checkDescribedCompact(t, b.Addr(), topic)

	// written is what each offset was written with, "key=value" or
	// "key=NULL" for a tombstone; want is the latest value per key.
	written := map[int64]string{}
	want := map[string]string{}
	var next int64

	// kcat: four keys, ten versions each, then a tombstone for d (-Z sends
	// the empty value as null). Idempotence keeps the records in input
	// order, so their offsets are known.
	var in strings.Builder
	for v := range 10 {
		for _, k := range []string{"a", "b", "c", "d"} {
			val := fmt.Sprintf("%s-kcat-%d", k, v)
			fmt.Fprintf(&in, "%s:%s\n", k, val)
			written[next] = k + "=" + val
			want[k] = val
			next++
		}
	}
	in.WriteString("d:\n")
	written[next] = "d=NULL"
	delete(want, "d")
	next++
	runKcat(t, kcat, in.String(), "-P", "-b", b.Addr(), "-t", topic, "-p", "0", "-K:", "-Z",
		"-X", "enable.idempotence=true")
	if end := endOffsets(t, b.Addr(), topic)[0]; end != next {
		t.Fatalf("end offset %d after kcat produced, want %d", end, next)
	}

	// franz-go: one record per batch, so the segments (1 KiB) roll often.
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic(topic))
	produce := func(k string, v *string) {
		t.Helper()
		r := &kgo.Record{Key: []byte(k)}
		line := k + "=NULL"
		if v != nil {
			r.Value = []byte(*v)
			line = k + "=" + *v
			want[k] = *v
		} else {
			delete(want, k)
		}
		res, err := cl.ProduceSync(testCtx(t, 15*time.Second), r).First()
		if err != nil {
			t.Fatalf("produce %s: %v", line, err)
		}
		if res.Offset != next {
			t.Fatalf("%s written at offset %d, want %d", line, res.Offset, next)
		}
		written[next] = line
		next++
	}
	str := func(s string) *string { return &s }
	for v := range 5 {
		produce("c", str(fmt.Sprintf("c-franz-%d", v)))
		produce("f", str(fmt.Sprintf("f-franz-%d", v)))
	}
	produce("f", nil)
	// Fill past the tombstones' segments so they are no longer active and
	// can be cleaned.
	fillE := func(from, to int) {
		for v := from; v < to; v++ {
			produce("e", str(fmt.Sprintf("e-%d", v)))
		}
	}
	fillE(0, 20)

	// The first pass leaves a, b and c once each; a tombstone stays until a
	// later pass, once its segment is clean (delete.retention.ms is 0), so
	// new dirt brings a second pass.
	waitCompacted(t, kcat, b.Addr(), topic, written, next, "a, b and c once", func(count map[string]int) bool {
		return count["a"] == 1 && count["b"] == 1 && count["c"] == 1
	})
	fillE(20, 40)
	lines := waitCompacted(t, kcat, b.Addr(), topic, written, next, "a, b and c once, d and f (deleted) not at all", func(count map[string]int) bool {
		return count["a"] == 1 && count["b"] == 1 && count["c"] == 1 && count["d"] == 0 && count["f"] == 0
	})
	checkLatest(t, lines, want)
	if end := endOffsets(t, b.Addr(), topic)[0]; end != next {
		t.Fatalf("end offset %d after compaction, want %d", end, next)
	}

	// Cleaned segments survive a restart: the same keys, values and
	// offsets. The cleaner may have dropped more old versions of e since,
	// never anything else.
	b.Stop()
	b = startBroker(t, engine, dir, sets...)
	after := readKcat(t, kcat, b.Addr(), topic)
	count := checkOffsets(t, after, written, next)
	if count["a"] != 1 || count["b"] != 1 || count["c"] != 1 || count["d"] != 0 || count["f"] != 0 {
		t.Fatalf("after restart, records per key %v, want a, b and c once, d and f not at all:\n%s", count, strings.Join(after, "\n"))
	}
	checkLatest(t, after, want)
	if end := endOffsets(t, b.Addr(), topic)[0]; end != next {
		t.Fatalf("end offset %d after restart, want %d", end, next)
	}
}

// checkDescribedCompact asserts `sluice topic describe` shows the
// cleanup.policy=compact override, in --json and in the table.
func checkDescribedCompact(t *testing.T, addr, topic string) {
	t.Helper()
	out, _ := runCLI(t, addr, 0, "topic", "describe", topic, "--json")
	var d struct {
		Topics []struct {
			Configs []struct {
				Name   string  `json:"name"`
				Value  *string `json:"value"`
				Source string  `json:"source"`
			} `json:"configs"`
		} `json:"topics"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || len(d.Topics) != 1 {
		t.Fatalf("describe --json: %v in:\n%s", err, out)
	}
	found := false
	for _, c := range d.Topics[0].Configs {
		if c.Name == "cleanup.policy" {
			found = c.Value != nil && *c.Value == "compact" && c.Source == "DYNAMIC_TOPIC_CONFIG"
		}
	}
	if !found {
		t.Fatalf("describe --json lacks cleanup.policy=compact as a topic override:\n%s", out)
	}
	table, _ := runCLI(t, addr, 0, "topic", "describe", topic)
	hit := false
	for _, line := range strings.Split(table, "\n") {
		if strings.Contains(line, "cleanup.policy") && strings.Contains(line, "compact") {
			hit = true
		}
	}
	if !hit {
		t.Fatalf("describe table lacks cleanup.policy compact:\n%s", table)
	}
}

// readKcat consumes partition 0 of topic from the beginning to its end
// with kcat, one "key=value@offset" line per record (NULL for a null
// value).
func readKcat(t *testing.T, kcat, addr, topic string) []string {
	t.Helper()
	out := runKcat(t, kcat, "", "-C", "-b", addr, "-t", topic, "-p", "0", "-o", "beginning", "-e", "-Z", "-f", `%k=%s@%o\n`)
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

// checkOffsets asserts every line read is the record written at its
// offset, offsets ascend, and the last record written (offset end-1) is
// still there; it returns how many records each key has.
func checkOffsets(t *testing.T, lines []string, written map[int64]string, end int64) map[string]int {
	t.Helper()
	count := map[string]int{}
	last := int64(-1)
	for _, line := range lines {
		rec, offStr, ok := strings.Cut(line, "@")
		off, err := strconv.ParseInt(offStr, 10, 64)
		if !ok || err != nil {
			t.Fatalf("kcat line %q: not key=value@offset", line)
		}
		if off <= last {
			t.Fatalf("offset %d after %d:\n%s", off, last, strings.Join(lines, "\n"))
		}
		last = off
		if written[off] != rec {
			t.Fatalf("offset %d reads %q, was written as %q: compaction must keep offsets", off, rec, written[off])
		}
		k, _, _ := strings.Cut(rec, "=")
		count[k]++
	}
	if last != end-1 {
		t.Fatalf("last offset read %d, want %d: the last record keeps its offset", last, end-1)
	}
	return count
}

// waitCompacted reads the topic with kcat until done accepts the records
// per key, checking offsets on every read, and returns the last read.
func waitCompacted(t *testing.T, kcat, addr, topic string, written map[int64]string, end int64,
	what string, done func(count map[string]int) bool) []string {
	t.Helper()
	var lines []string
	testkit.EventuallyNil(t, 20*time.Second, func() error {
		lines = readKcat(t, kcat, addr, topic)
		if count := checkOffsets(t, lines, written, end); !done(count) {
			return fmt.Errorf("records per key %v: want %s", count, what)
		}
		return nil
	})
	return lines
}

// checkLatest asserts replaying lines gives exactly want: the latest value
// of each key, tombstoned keys absent.
func checkLatest(t *testing.T, lines []string, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, line := range lines {
		rec, _, _ := strings.Cut(line, "@")
		k, v, _ := strings.Cut(rec, "=")
		if v == "NULL" {
			delete(got, k)
		} else {
			got[k] = v
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("compacted log replays to %v, want %v", got, want)
	}
}
