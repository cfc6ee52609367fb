package itest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testCtx is a context bounded well below the go test timeout.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newClient is a kgo client for addr with timeouts that fail fast in tests.
func newClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.DialTimeout(5 * time.Second),
		kgo.RetryTimeout(15 * time.Second),
		kgo.ProduceRequestTimeout(15 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// admin is a kadm client for addr.
func admin(t testing.TB, addr string) *kadm.Client {
	t.Helper()
	return kadm.NewClient(newClient(t, addr))
}

// createTopic creates a topic and fails the test unless it succeeded.
func createTopic(t testing.TB, addr, name string, partitions int32, configs map[string]*string) kadm.TopicID {
	t.Helper()
	ctx := testCtx(t, 15*time.Second)
	resp, err := admin(t, addr).CreateTopic(ctx, partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v / %v", name, err, resp.Err)
	}
	return resp.ID
}

// produceSync produces records synchronously and fails on any error.
func produceSync(t testing.TB, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// endOffsets returns the end offset (high watermark) per partition.
func endOffsets(t testing.TB, addr, topic string) map[int32]int64 {
	t.Helper()
	ctx := testCtx(t, 15*time.Second)
	lo, err := admin(t, addr).ListEndOffsets(ctx, topic)
	if err != nil || lo.Error() != nil {
		t.Fatalf("ListEndOffsets %s: %v / %v", topic, err, lo.Error())
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("ListEndOffsets %s[%d]: %v", topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

// consumeAll reads every partition of topic from the start up to its current
// end offsets with a fresh client and returns the records in per-partition
// order (partitions ascending).
func consumeAll(t testing.TB, addr, topic string, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	ends := endOffsets(t, addr, topic)
	want := map[int32]int64{}
	for p, e := range ends {
		if e > 0 {
			want[p] = e
		}
	}
	cl := newClient(t, addr, append([]kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, opts...)...)
	byPart := map[int32][]*kgo.Record{}
	ctx := testCtx(t, 60*time.Second)
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s: timed out with partitions %v still short", topic, want)
		}
		fs.EachError(func(tp string, p int32, err error) {
			t.Fatalf("consume %s[%d]: %v", tp, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			byPart[r.Partition] = append(byPart[r.Partition], r)
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	parts := make([]int32, 0, len(byPart))
	for p := range byPart {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	var out []*kgo.Record
	for _, p := range parts {
		out = append(out, byPart[p]...)
	}
	return out
}

// checkContiguous asserts each partition's offsets run 0, 1, 2, ...
func checkContiguous(t testing.TB, recs []*kgo.Record) {
	t.Helper()
	next := map[int32]int64{}
	for _, r := range recs {
		if r.Offset != next[r.Partition] {
			t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
		}
		next[r.Partition]++
	}
}

// --- raw protocol ---

// rawConn speaks the Kafka framing directly, so tests can send requests kgo
// would never build (corrupt batches, unknown keys, garbage).
type rawConn struct {
	t    testing.TB
	c    net.Conn
	corr int32
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c}
}

// frame encodes req with a request header (v1 or v2 as the version needs).
func frameRequest(req kmsg.Request, corr int32) []byte {
	b := make([]byte, 4, 256)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	id := "itest"
	b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
	b = append(b, id...)
	if req.IsFlexible() {
		b = append(b, 0) // empty tagged fields
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// roundTrip sends req and decodes the response into a new response value.
func (rc *rawConn) roundTrip(req kmsg.Request) (kmsg.Response, error) {
	rc.corr++
	_ = rc.c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := rc.c.Write(frameRequest(req, rc.corr)); err != nil {
		return nil, err
	}
	body, err := rc.readFrame()
	if err != nil {
		return nil, err
	}
	if len(body) < 4 || int32(binary.BigEndian.Uint32(body)) != rc.corr {
		return nil, fmt.Errorf("bad response header % x", body[:min(len(body), 8)])
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		if len(body) < 1 || body[0] != 0 {
			return nil, errors.New("unexpected response header tags")
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode %T: %w", resp, err)
	}
	return resp, nil
}

func (rc *rawConn) mustRoundTrip(req kmsg.Request) kmsg.Response {
	rc.t.Helper()
	resp, err := rc.roundTrip(req)
	if err != nil {
		rc.t.Fatalf("%T: %v", req, err)
	}
	return resp
}

func (rc *rawConn) readFrame() ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(rc.c, sz[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(sz[:]))
	if n < 4 || n > 64<<20 {
		return nil, fmt.Errorf("response size %d", n)
	}
	body := make([]byte, n)
	_, err := io.ReadFull(rc.c, body)
	return body, err
}

// expectClosed asserts the broker closes the connection (EOF or reset)
// within a few seconds, without sending a response.
func (rc *rawConn) expectClosed(what string) {
	rc.t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := rc.c.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		rc.t.Fatalf("%s: broker kept the connection open", what)
	}
	if err == nil {
		rc.t.Fatalf("%s: broker answered %d bytes instead of closing", what, n)
	}
}

// produceRaw sends one batch to topic/partition 0 with the given Produce
// version (3..12, topics by name) and returns the partition response.
func produceRaw(t testing.TB, rc *rawConn, version int16, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = 0
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := rc.mustRoundTrip(req).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response shape: %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

// newestLogFile returns the path of the highest-based .log segment of a
// partition directory.
func newestLogFile(t testing.TB, dataDir, topic string, partition int) string {
	t.Helper()
	dir := filepath.Join(dataDir, fmt.Sprintf("%s-%d", topic, partition))
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			logs = append(logs, e.Name())
		}
	}
	if len(logs) == 0 {
		t.Fatalf("no .log file in %s", dir)
	}
	sort.Strings(logs)
	return filepath.Join(dir, logs[len(logs)-1])
}

// batchBounds lists the [start, end) byte ranges of the batches in a .log
// file, walking the length fields.
func batchBounds(t testing.TB, data []byte) [][2]int {
	t.Helper()
	var out [][2]int
	for off := 0; off+12 <= len(data); {
		n := int(int32(binary.BigEndian.Uint32(data[off+8:])))
		if n <= 0 || off+12+n > len(data) {
			break
		}
		out = append(out, [2]int{off, off + 12 + n})
		off += 12 + n
	}
	return out
}

func equalHeaders(a, b []kgo.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func itoa(i int) string { return fmt.Sprint(i) }

// produceBatch sends recs (all to one partition) as a single record batch:
// cl must use kgo.ManualFlushing, so nothing leaves before the Flush.
func produceBatch(t testing.TB, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	errs := make(chan error, len(recs))
	for _, r := range recs {
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) { errs <- err })
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	for range recs {
		if err := <-errs; err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// runCLI runs `sluice ARGS --brokers addr` and checks what scripts rely on:
// the exit code, no stack trace, and a runtime error on one stderr line.
func runCLI(t testing.TB, addr string, wantExit int, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(sluiceBin, append(args, "--brokers", addr)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != wantExit {
		t.Fatalf("sluice %v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, code, wantExit, out.String(), errb.String())
	}
	if strings.Contains(errb.String(), "goroutine") || strings.Contains(errb.String(), "panic") {
		t.Fatalf("sluice %v printed a stack:\n%s", args, errb.String())
	}
	if wantExit == 1 && strings.Count(errb.String(), "\n") != 1 {
		t.Fatalf("sluice %v: stderr is not one line:\n%s", args, errb.String())
	}
	return out.String(), errb.String()
}
