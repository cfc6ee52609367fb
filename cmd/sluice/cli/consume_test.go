package cli

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testkit"
)

// seed produces records to "orders" with known keys, headers and
// timestamps: partition p gets counts[p] records, record i of a partition
// is stamped at (i+1) seconds after the epoch.
func seed(t *testing.T, brokers string, counts ...int) {
	t.Helper()
	cl := newClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var rs []*kgo.Record
	for p, n := range counts {
		for i := range n {
			r := &kgo.Record{
				Topic: "orders", Partition: int32(p),
				Value:     []byte(fmt.Sprintf("v%d-%d", p, i)),
				Timestamp: time.UnixMilli(int64(i+1) * 1000),
			}
			if i%2 == 0 { // odd records keep a null key and no headers
				r.Key = []byte(fmt.Sprintf("k%d", i))
				r.Headers = []kgo.RecordHeader{{Key: "h", Value: []byte("x")}, {Key: "i", Value: []byte(fmt.Sprint(i))}}
			}
			rs = append(rs, r)
		}
	}
	if err := cl.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func consumeOK(t *testing.T, brokers string, args ...string) string {
	t.Helper()
	r := runIO(testCtx(t), nil, append([]string{"consume", "--brokers", brokers}, args...)...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("consume %q: exit %d, stderr %q", args, r.code, r.stderr)
	}
	return r.stdout
}

func sortedLines(s string) []string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if s == "" {
		lines = nil
	}
	sort.Strings(lines)
	return lines
}

func TestConsumeFormatAndJSON(t *testing.T) {
	_, brokers := testCluster(t)
	seed(t, brokers, 3, 2, 0)

	out := consumeOK(t, brokers, "orders", "-e", "--format", `%t|%p|%o|%k|%s|%T|%h|%K|%S\n`)
	want := []string{
		"orders|0|0|k0|v0-0|1000|h=x,i=0|2|4",
		"orders|0|1||v0-1|2000||-1|4",
		"orders|0|2|k2|v0-2|3000|h=x,i=2|2|4",
		"orders|1|0|k0|v1-0|1000|h=x,i=0|2|4",
		"orders|1|1||v1-1|2000||-1|4",
	}
	if got := sortedLines(out); !slices.Equal(got, want) {
		t.Errorf("format output\n%q\nwant\n%q", got, want)
	}
	// One partition keeps its order; the default format is the value.
	if out := consumeOK(t, brokers, "orders", "--partition", "0", "--exit-at-end"); out != "v0-0\nv0-1\nv0-2\n" {
		t.Errorf("default format: %q", out)
	}

	out = consumeOK(t, brokers, "orders", "--partition", "0", "-e", "--json")
	type jsonHeader struct {
		Key   string  `json:"key"`
		Value *string `json:"value"`
	}
	type jsonRec struct {
		Topic     string       `json:"topic"`
		Partition int32        `json:"partition"`
		Offset    int64        `json:"offset"`
		Timestamp int64        `json:"timestamp"`
		Key       *string      `json:"key"`
		Value     *string      `json:"value"`
		Headers   []jsonHeader `json:"headers"`
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("--json printed %d lines, want 3:\n%s", len(lines), out)
	}
	for i, line := range lines {
		var rec jsonRec
		decodeStrict(t, line, &rec)
		if rec.Topic != "orders" || rec.Partition != 0 || rec.Offset != int64(i) || rec.Timestamp != int64(i+1)*1000 ||
			rec.Value == nil || *rec.Value != fmt.Sprintf("v0-%d", i) || rec.Headers == nil {
			t.Errorf("line %d: %+v", i, rec)
		}
		if i%2 == 0 {
			if rec.Key == nil || *rec.Key != fmt.Sprintf("k%d", i) || len(rec.Headers) != 2 || rec.Headers[1].Key != "i" || *rec.Headers[1].Value != fmt.Sprint(i) {
				t.Errorf("line %d: key %v headers %+v", i, rec.Key, rec.Headers)
			}
		} else if rec.Key != nil || len(rec.Headers) != 0 {
			t.Errorf("line %d: key %v headers %+v, want null and []", i, rec.Key, rec.Headers)
		}
	}
}

func TestConsumeFromPositions(t *testing.T) {
	_, brokers := testCluster(t)
	seed(t, brokers, 10)
	offsets := func(from string) string {
		t.Helper()
		return strings.TrimSpace(strings.ReplaceAll(consumeOK(t, brokers, "orders", "--partition", "0", "-e", "--from", from, "--format", `%o `), "  ", " "))
	}
	for _, tc := range []struct{ from, want string }{
		{"earliest", "0 1 2 3 4 5 6 7 8 9"},
		{"latest", ""},
		{"7", "7 8 9"},
		{"99", ""}, // past the end: clamped to it
		{"-2", "8 9"},
		{"@5000", "4 5 6 7 8 9"},          // record 4 is stamped 5s
		{"@5001", "5 6 7 8 9"},            // the first at or after
		{"1970-01-01T00:00:08Z", "7 8 9"}, // RFC 3339
		{"1970-01-01T01:00:00+01:00", "0 1 2 3 4 5 6 7 8 9"}, // = epoch
		{"@99000", ""}, // after every record: the end
	} {
		if got := offsets(tc.from); got != tc.want {
			t.Errorf("--from %s: offsets %q, want %q", tc.from, got, tc.want)
		}
	}
	// Below the log start (after records were deleted) means the start.
	if _, err := kadm.NewClient(newClient(t, brokers)).DeleteRecords(testCtx(t), kadm.Offsets{"orders": {0: {Topic: "orders", Partition: 0, At: 3}}}); err != nil {
		t.Fatal(err)
	}
	if got := offsets("1"); got != "3 4 5 6 7 8 9" {
		t.Errorf("--from 1 after deleting up to 3: %q", got)
	}
	// With every partition at its end there is nothing to wait for.
	if out := consumeOK(t, brokers, "orders", "-e", "--from", "latest"); out != "" {
		t.Errorf("latest -e: %q", out)
	}
}

func TestConsumeCount(t *testing.T) {
	_, brokers := testCluster(t)
	seed(t, brokers, 5, 5, 5)
	if out := consumeOK(t, brokers, "orders", "--partition", "1", "--count", "3", "--format", `%o,`); out != "0,1,2," {
		t.Errorf("--count 3: %q", out)
	}
	// Without -e the count alone ends the command.
	if n := len(sortedLines(consumeOK(t, brokers, "orders", "--count", "7"))); n != 7 {
		t.Errorf("--count 7 over all partitions printed %d", n)
	}
	// -e wins when the end comes first.
	if n := len(sortedLines(consumeOK(t, brokers, "orders", "--count", "100", "-e"))); n != 15 {
		t.Errorf("--count 100 -e printed %d, want 15", n)
	}
}

// syncBuffer is an output the test can read while the command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Without -e or --count the command follows the topic until its context
// is cancelled (Ctrl-C), then exits 0.
func TestConsumeFollowsUntilCancelled(t *testing.T) {
	_, brokers := testCluster(t)
	seed(t, brokers, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runConsume(ctx, []string{"orders", "--partition", "0", "--brokers", brokers, "--format", `%s\n`}, &stdout, &stderr)
	}()
	waitOutput := func(want string) {
		t.Helper()
		testkit.EventuallyNil(t, settle, func() error {
			if got := stdout.String(); got != want {
				return fmt.Errorf("output %q, want %q", got, want)
			}
			return nil
		})
	}
	waitOutput("v0-0\nv0-1\n")
	seed(t, brokers, 1) // a record produced while consuming shows up
	waitOutput("v0-0\nv0-1\nv0-0\n")
	cancel()
	select {
	case code := <-done:
		if code != 0 || stderr.String() != "" {
			t.Errorf("after cancel: exit %d, stderr %q", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("consume did not stop after cancellation")
	}
}

func committedOffsets(t *testing.T, brokers, group string) map[int32]int64 {
	t.Helper()
	resps, err := kadm.NewClient(newClient(t, brokers)).FetchOffsets(testCtx(t), group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	resps.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

func TestConsumeAsGroupCommits(t *testing.T) {
	_, brokers := testCluster(t)
	seed(t, brokers, 5, 5, 5)
	if n := len(sortedLines(consumeOK(t, brokers, "orders", "--group", "readers", "-e"))); n != 15 {
		t.Fatalf("first run printed %d records, want 15", n)
	}
	if got := committedOffsets(t, brokers, "readers"); !maps3(got, 5, 5, 5) {
		t.Errorf("committed %v, want 5 5 5", got)
	}

	// The next run starts where the group committed, not at --from.
	seed(t, brokers, 0, 2)
	out := consumeOK(t, brokers, "orders", "--group", "readers", "-e", "--from", "earliest", "--format", `%p:%o `)
	if out != "1:5 1:6 " {
		t.Errorf("second run: %q, want only the two new records", out)
	}
	// --count commits exactly what was printed.
	seed(t, brokers, 0, 0, 3)
	if out := consumeOK(t, brokers, "orders", "--group", "readers", "--count", "1", "--format", `%p:%o`); out != "2:5" {
		t.Errorf("--count 1: %q", out)
	}
	if got := committedOffsets(t, brokers, "readers"); !maps3(got, 5, 7, 6) {
		t.Errorf("committed %v, want 5 7 6", got)
	}
	// A new group starting at latest has nothing to read before the end.
	if out := consumeOK(t, brokers, "orders", "--group", "tail", "--from", "latest", "-e"); out != "" {
		t.Errorf("new group at latest: %q", out)
	}
}

func maps3(m map[int32]int64, a, b, c int64) bool {
	return len(m) == 3 && m[0] == a && m[1] == b && m[2] == c
}

func TestConsumeSeveralTopics(t *testing.T) {
	_, brokers := testCluster(t)
	seed(t, brokers, 1, 1)
	adm := kadm.NewClient(newClient(t, brokers))
	if _, err := adm.CreateTopic(testCtx(t), 1, 1, nil, "payments"); err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, brokers)
	if err := cl.ProduceSync(testCtx(t), &kgo.Record{Topic: "payments", Value: []byte("paid")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := sortedLines(consumeOK(t, brokers, "orders", "payments", "orders", "-e", "--format", `%t:%s\n`))
	if want := []string{"orders:v0-0", "orders:v1-0", "payments:paid"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestConsumeErrors(t *testing.T) {
	_, brokers := testCluster(t)
	run := func(args ...string) result {
		return runIO(testCtx(t), nil, append([]string{"consume"}, args...)...)
	}
	checkRuntimeFailure(t, run("nope", "--brokers", brokers), `sluice: topic "nope" not found`)
	checkRuntimeFailure(t, run("orders", "nope", "gone", "--brokers", brokers), `sluice: topics "nope", "gone" not found`)
	checkRuntimeFailure(t, run("orders", "--partition", "5", "--brokers", brokers), `topic "orders" has no partition 5 (it has 3)`)
	checkRuntimeFailure(t, run("orders", "--brokers", "127.0.0.1:1"), "cannot reach brokers 127.0.0.1:1: ")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "name at least one TOPIC"},
		{[]string{"t", "--partition", "0", "--group", "g"}, "--partition and --group cannot be combined"},
		{[]string{"t", "u", "--partition", "0"}, "--partition needs exactly one TOPIC"},
		{[]string{"t", "--count", "-1"}, "--count must not be negative"},
		{[]string{"t", "--partition", "-3"}, "--partition must be a partition number"},
		{[]string{"t", "--format", `%s`, "--json"}, "--format and --json cannot be combined"},
		{[]string{"t", "--format", `%q`}, "unknown token %q"},
		{[]string{"t", "--from", "yesterday"}, `--from: "yesterday"`},
		{[]string{"t", "--bogus"}, "bogus"},
	} {
		r := run(tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "usage: sluice consume") || r.stdout != "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
