package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

// runIO runs produce or consume with a context and standard input, which
// Run would take from the process.
func runIO(ctx context.Context, stdin io.Reader, args ...string) result {
	var stdout, stderr bytes.Buffer
	var code int
	switch args[0] {
	case "produce":
		code = runProduce(ctx, args[1:], stdin, &stdout, &stderr)
	case "consume":
		code = runConsume(ctx, args[1:], &stdout, &stderr)
	default:
		panic("runIO runs produce and consume only")
	}
	return result{code, stdout.String(), stderr.String()}
}

func produceLines(t *testing.T, brokers, input string, args ...string) result {
	t.Helper()
	return runIO(testCtx(t), strings.NewReader(input), append([]string{"produce", "orders", "--brokers", brokers}, args...)...)
}

// readTopic reads every record of topic up to the current end offsets,
// ordered by partition and offset, independently of the consume command.
func readTopic(t *testing.T, brokers, topic string) []*kgo.Record {
	t.Helper()
	ctx := testCtx(t)
	ends, err := kadm.NewClient(newClient(t, brokers)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		want += int(o.Offset)
		parts[o.Partition] = kgo.NewOffset().AtStart()
	})
	cl := newClient(t, brokers, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}), kgo.FetchMaxWait(100*time.Millisecond))
	var recs []*kgo.Record
	for len(recs) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(recs), want, topic)
		}
		recs = append(recs, fs.Records()...)
	}
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].Partition != recs[j].Partition {
			return recs[i].Partition < recs[j].Partition
		}
		return recs[i].Offset < recs[j].Offset
	})
	return recs
}

// describe renders a record's data for comparisons, telling null from empty.
func describeRecord(r *kgo.Record) string {
	field := func(b []byte) string {
		if b == nil {
			return "<null>"
		}
		return fmt.Sprintf("%q", b)
	}
	var hs []string
	for _, h := range r.Headers {
		hs = append(hs, h.Key+"="+string(h.Value))
	}
	return fmt.Sprintf("p%d %s=%s [%s]", r.Partition, field(r.Key), field(r.Value), strings.Join(hs, ","))
}

func TestProduceLinesKeysAndHeaders(t *testing.T) {
	_, brokers := testCluster(t)
	input := "k1|v1\nk2|v|2\nnokey\n|emptykey\n\nlast line without newline"
	r := produceLines(t, brokers, input, "--key-separator", "|", "--header", "app=cli", "--header", "app=again", "--partition", "1")
	if r.code != 0 || r.stdout != "" || r.stderr != "produced 6 records to \"orders\"\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	want := []string{
		`p1 "k1"="v1" [app=cli,app=again]`,
		`p1 "k2"="v|2" [app=cli,app=again]`, // split at the first separator only
		`p1 <null>="nokey" [app=cli,app=again]`,
		`p1 ""="emptykey" [app=cli,app=again]`,
		`p1 <null>="" [app=cli,app=again]`, // an empty line is an empty record
		`p1 <null>="last line without newline" [app=cli,app=again]`,
	}
	got := readTopic(t, brokers, "orders")
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i, rec := range got {
		if d := describeRecord(rec); d != want[i] {
			t.Errorf("record %d: %s, want %s", i, d, want[i])
		}
	}
}

func TestProduceFileCodecsAndAcks(t *testing.T) {
	_, brokers := testCluster(t)
	file := filepath.Join(t.TempDir(), "in.txt")
	var lines []string
	for i := range 30 {
		lines = append(lines, fmt.Sprintf("key-%d:value %d", i%5, i))
	}
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := []struct{ acks, codec string }{
		{"all", "none"}, {"1", "gzip"}, {"0", "snappy"}, {"all", "lz4"}, {"-1", "zstd"},
	}
	for _, run := range runs {
		r := produceLines(t, brokers, "", "--file", file, "--key-separator", ":", "--acks", run.acks, "--compression", run.codec, "--json")
		if r.code != 0 || r.stderr != "produced 30 records to \"orders\"\n" {
			t.Fatalf("%+v: exit %d, stderr %q", run, r.code, r.stderr)
		}
		var res struct {
			Topic       string  `json:"topic"`
			Produced    int64   `json:"produced"`
			Failed      int64   `json:"failed"`
			FirstError  *string `json:"first_error"`
			Interrupted bool    `json:"interrupted"`
		}
		decodeStrict(t, r.stdout, &res)
		if res.Topic != "orders" || res.Produced != 30 || res.Failed != 0 || res.FirstError != nil || res.Interrupted {
			t.Errorf("%+v: summary %+v", run, res)
		}
	}
	recs := readTopic(t, brokers, "orders")
	if len(recs) != 30*len(runs) {
		t.Fatalf("%d records, want %d", len(recs), 30*len(runs))
	}
	// Keys are hashed to partitions: a key always lands on the same one,
	// and each partition keeps the file's order.
	keyPart := map[string]int32{}
	perKey := map[string][]string{}
	for _, rec := range recs {
		k := string(rec.Key)
		if p, ok := keyPart[k]; ok && p != rec.Partition {
			t.Errorf("key %s on partitions %d and %d", k, p, rec.Partition)
		}
		keyPart[k] = rec.Partition
		perKey[k] = append(perKey[k], string(rec.Value))
	}
	for k, vs := range perKey {
		for i, v := range vs {
			n := int(k[len(k)-1]-'0') + (i%6)*5
			if v != fmt.Sprintf("value %d", n) {
				t.Errorf("key %s record %d = %q, want %q", k, i, v, fmt.Sprintf("value %d", n))
				break
			}
		}
	}
	// "-" reads standard input, like no --file at all.
	r := produceLines(t, brokers, "x\n", "--file", "-")
	if r.code != 0 || r.stderr != "produced 1 record to \"orders\"\n" {
		t.Errorf("--file -: exit %d, stderr %q", r.code, r.stderr)
	}
}

// Records the broker rejects make the exit code 1, with one line saying
// how many failed and why the first did.
func TestProduceRecordFailures(t *testing.T) {
	c, brokers := testCluster(t)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		preq := req.(*kmsg.ProduceRequest)
		resp := preq.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range preq.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID // v13 names topics by ID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.MessageTooLarge.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	r := produceLines(t, brokers, "a\nb\nc\n", "--partition", "0")
	checkRuntimeFailure(t, r, `sluice: produced 0 of 3 records to "orders"; 3 failed, the first with: MESSAGE_TOO_LARGE`)
}

// A broker that answers Produce without the partition makes the client
// re-send forever; the command still ends, after the delivery timeout
// (--timeout, but at least the client's minimum of 1s).
func TestProduceUnansweredRecordsEnd(t *testing.T) {
	c, brokers := testCluster(t)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return req.ResponseKind(), nil, true
	})
	start := time.Now()
	r := produceLines(t, brokers, "a\nb\n", "--timeout", "300ms", "--json")
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("took %s", d)
	}
	if r.code != exitError || strings.Count(r.stderr, "\n") != 1 ||
		!strings.Contains(r.stderr, `sluice: produced 0 of 2 records to "orders"; 2 not acknowledged within 1s`) {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	var res struct {
		Topic       string  `json:"topic"`
		Produced    int64   `json:"produced"`
		Failed      int64   `json:"failed"`
		FirstError  *string `json:"first_error"`
		Interrupted bool    `json:"interrupted"`
	}
	decodeStrict(t, r.stdout, &res)
	if res.Produced != 0 || res.Failed != 2 || res.FirstError == nil {
		t.Errorf("summary %+v", res)
	}
}

func TestProduceErrors(t *testing.T) {
	_, brokers := testCluster(t)
	checkRuntimeFailure(t, runIO(testCtx(t), strings.NewReader("x\n"), "produce", "nope", "--brokers", brokers), `sluice: topic "nope" not found`)
	checkRuntimeFailure(t, produceLines(t, brokers, "x\n", "--partition", "3"), `topic "orders" has no partition 3 (it has 3)`)
	checkRuntimeFailure(t, produceLines(t, brokers, "", "--file", filepath.Join(t.TempDir(), "missing")), "opening input: open ")
	checkRuntimeFailure(t, runIO(testCtx(t), strings.NewReader("x\n"), "produce", "orders", "--brokers", "127.0.0.1:1"), "cannot reach brokers 127.0.0.1:1: ")
	if recs := readTopic(t, brokers, "orders"); len(recs) != 0 {
		t.Errorf("failed commands produced %d records", len(recs))
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"produce"}, "name exactly one TOPIC, got 0"},
		{[]string{"produce", "a", "b"}, "name exactly one TOPIC, got 2"},
		{[]string{"produce", "a", "--acks", "2"}, "--acks: want all, 1 or 0"},
		{[]string{"produce", "a", "--compression", "brotli"}, `unknown codec "brotli"`},
		{[]string{"produce", "a", "--key-separator", ""}, "--key-separator must not be empty"},
		{[]string{"produce", "a", "--partition", "-2"}, "--partition must be a partition number"},
		{[]string{"produce", "a", "--header", "novalue"}, "not KEY=VALUE"},
		{[]string{"produce", "a", "--timeout", "0s"}, "--timeout must be positive"},
	} {
		r := runIO(testCtx(t), strings.NewReader(""), tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "usage: sluice produce") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// Cancelling the context (what Ctrl-C does) stops reading; what was read
// is still produced, the counts are printed and the exit code says the
// command was interrupted.
func TestProduceInterrupted(t *testing.T) {
	_, brokers := testCluster(t)
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result, 1)
	go func() {
		done <- runIO(ctx, pr, "produce", "orders", "--brokers", brokers, "--partition", "2")
	}()
	if _, err := io.WriteString(pw, "one\ntwo\n"); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyNil(t, settle, func() error {
		if n := len(readTopic(t, brokers, "orders")); n != 2 {
			return fmt.Errorf("%d records produced, want 2", n)
		}
		return nil
	})
	cancel() // the input stays open: only the cancellation can end the command
	select {
	case r := <-done:
		if r.code != 130 || r.stderr != "interrupted: produced 2 of 2 records to \"orders\"; 0 failed; the rest of the input was not read\n" {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("produce did not stop after cancellation")
	}
}

// On a terminal, a progress line is redrawn at most once per interval and
// erased before the final count.
func TestProduceProgressOnTerminal(t *testing.T) {
	_, brokers := testCluster(t)
	defer func(f func(io.Writer) bool, d time.Duration) { isTerminal, progressInterval = f, d }(isTerminal, progressInterval)
	isTerminal = func(io.Writer) bool { return true }
	progressInterval = 50 * time.Millisecond

	pr, pw := io.Pipe()
	go func() {
		for i := range 10 {
			fmt.Fprintf(pw, "line %d\n", i)
			time.Sleep(40 * time.Millisecond)
		}
		pw.Close()
	}()
	start := time.Now()
	r := runIO(testCtx(t), pr, "produce", "orders", "--brokers", brokers)
	elapsed := time.Since(start)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	updates := strings.Count(r.stderr, " records read, ")
	if updates < 1 || updates > int(elapsed/progressInterval)+1 {
		t.Errorf("%d progress updates in %s at most one per %s:\n%q", updates, elapsed, progressInterval, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "\r") || !strings.HasSuffix(r.stderr, "\r\x1b[Kproduced 10 records to \"orders\"\n") {
		t.Errorf("progress not redrawn in place and erased: %q", r.stderr)
	}
}
