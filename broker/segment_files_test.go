package broker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/segment"
)

// fdTopic names the i-th single-partition topic of these tests.
func fdTopic(i int) string { return fmt.Sprintf("fd-%03d", i) }

// createAndFill creates n single-partition topics in one CreateTopics and
// produces one record to each (its topic's name) in one Produce.
func createAndFill(t *testing.T, tb *testBroker, n int) {
	t.Helper()
	c := tb.raw(t)
	ct := kmsg.NewPtrCreateTopicsRequest()
	for i := range n {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fdTopic(i), 1, 1
		ct.Topics = append(ct.Topics, rt)
	}
	ct.TimeoutMillis = 30000
	for _, st := range do[*kmsg.CreateTopicsResponse](c, ct, 7).Topics {
		if st.ErrorCode != 0 {
			t.Fatalf("create %s: %d %q", st.Topic, st.ErrorCode, strOrEmpty(st.ErrorMessage))
		}
	}
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks, pr.TimeoutMillis = -1, 30000
	for i := range n {
		batch, err := segment.BuildBatch([]segment.KV{{Value: []byte(fdTopic(i))}}, time.Now().UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = fdTopic(i)
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		pr.Topics = append(pr.Topics, rt)
	}
	for _, rt := range do[*kmsg.ProduceResponse](c, pr, 9).Topics {
		if code := rt.Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce to %s: error code %d", rt.Topic, code)
		}
	}
}

// fetchEveryTopic reads all n topics with one Fetch (every partition's
// file wanted at once) and checks each holds its one record.
func fetchEveryTopic(t *testing.T, tb *testBroker, n int) {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes, req.MinBytes, req.MaxWaitMillis, req.ReplicaID = 50<<20, 1, 100, -1
	for i := range n {
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = fdTopic(i)
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
	}
	resp := do[*kmsg.FetchResponse](tb.raw(t), req, 11)
	if len(resp.Topics) != n {
		t.Fatalf("fetch answered %d topics of %d", len(resp.Topics), n)
	}
	for _, rt := range resp.Topics {
		p := rt.Partitions[0]
		var got []string
		err := segment.EachRecord(p.RecordBatches, func(r segment.Record) error {
			got = append(got, string(r.Value))
			return nil
		})
		if p.ErrorCode != 0 || err != nil || len(got) != 1 || got[0] != rt.Topic {
			t.Fatalf("fetch %s: error code %d, records %q (%v), want [%s]", rt.Topic, p.ErrorCode, got, err, rt.Topic)
		}
	}
}

// TestRestartWithMorePartitionsThanTheFileCap: 300 partitions under a cap
// of 50 segment files, three times what holding every partition's three
// files open would take. The broker creates, fills, stops, starts again
// holding no segment file, and serves every record, without the open
// files ever going over the cap (but for a moment per concurrent read).
func TestRestartWithMorePartitionsThanTheFileCap(t *testing.T) {
	topics, capFiles := 300, 50
	if testing.Short() {
		topics, capFiles = 120, 20
	}
	dir := t.TempDir()
	set := "log.open.segment.files.max=" + strconv.Itoa(capFiles)
	tb := startTestBrokerIn(t, dir, set)
	createAndFill(t, tb, topics)
	fams := tb.scrape(t)
	if v := mustValue(t, fams, "sluice_log_open_segment_files_limit"); v != float64(capFiles) {
		t.Fatalf("sluice_log_open_segment_files_limit = %v, want %d", v, capFiles)
	}
	if v := mustValue(t, fams, "sluice_log_open_segment_files"); v > float64(capFiles) || v < 1 {
		t.Fatalf("sluice_log_open_segment_files = %v after filling, cap %d", v, capFiles)
	}
	if st := tb.files.Stats(); st.Peak > int64(capFiles) || st.Evictions == 0 {
		t.Fatalf("creating and filling %d partitions: %v", topics, tb.files)
	}
	if err := tb.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	tb, err := tryStartLogging(t, segment.OSFS(), &logs, dir, set)
	if err != nil {
		t.Fatalf("restart with %d partitions and a cap of %d files: %v", topics, capFiles, err)
	}
	if st := tb.files.Stats(); st.Open != 0 || st.Peak > int64(capFiles) {
		t.Fatalf("after a clean restart, before any request: %v", tb.files)
	}
	line := logLine(t, logs.String(), "file descriptors")
	for _, want := range []string{fmt.Sprintf("partitions=%d", topics), "segment_files_open=0", fmt.Sprintf("segment_files_limit=%d", capFiles), "nofile_limit="} {
		if !strings.Contains(line, want) {
			t.Errorf("start-up line %q lacks %s", line, want)
		}
	}
	fetchEveryTopic(t, tb, topics)
	if v := mustValue(t, tb.scrape(t), "sluice_log_open_segment_files"); v > float64(capFiles) {
		t.Fatalf("sluice_log_open_segment_files = %v after reading everything, cap %d", v, capFiles)
	}
	// One Fetch over every partition: its reads beyond the cap were copied
	// rather than pinned, each going over it by one file for a moment.
	if st := tb.files.Stats(); st.Peak > int64(capFiles)+1 {
		t.Fatalf("reading every partition: %v", tb.files)
	}
	t.Logf("%s; cache: %v", line, tb.files)
}

// logLine returns the first line of logs whose msg is msg.
func logLine(t *testing.T, logs, msg string) string {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "msg=\""+msg+"\"") || strings.Contains(l, "msg="+msg+" ") {
			return l
		}
	}
	t.Fatalf("no %q line in the broker's log:\n%s", msg, logs)
	return ""
}

// fdChildEnv tells a re-executed test binary that it is the child of
// TestStartsWithMorePartitionsThanRLIMITAllows: "dir topics nofile".
const fdChildEnv = "SLUICE_TEST_FD_CHILD"

// TestStartsWithMorePartitionsThanRLIMITAllows: a broker whose
// RLIMIT_NOFILE is too low to hold three files per partition still starts
// and serves every record. The test re-executes its own binary with the
// limit lowered (setrlimit in the child, as systemd's LimitNOFILE would),
// since lowering it here would starve the rest of the test run. 200
// partitions under 256 descriptors (100 under 128 with -short) would need
// 600 (300) with every partition's files held open.
func TestStartsWithMorePartitionsThanRLIMITAllows(t *testing.T) {
	if arg := os.Getenv(fdChildEnv); arg != "" {
		var dir string
		var topics, nofile int
		if _, err := fmt.Sscan(arg, &dir, &topics, &nofile); err != nil {
			t.Fatalf("%s=%q: %v", fdChildEnv, arg, err)
		}
		runLowNOFILEChild(t, dir, topics, nofile)
		return
	}
	topics, nofile := 200, 256
	if testing.Short() {
		topics, nofile = 100, 128
	}
	dir := t.TempDir()
	tb := startTestBrokerIn(t, dir)
	createAndFill(t, tb, topics)
	if err := tb.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestStartsWithMorePartitionsThanRLIMITAllows$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", fdChildEnv, dir, topics, nofile))
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS")) {
		t.Fatalf("child with RLIMIT_NOFILE=%d and %d partitions: %v\n%s", nofile, topics, err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "file descriptors") {
			t.Log(strings.TrimSpace(l))
		}
	}
}

func runLowNOFILEChild(t *testing.T, dir string, topics, nofile int) {
	rl := syscall.Rlimit{Cur: uint64(nofile), Max: uint64(nofile)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Skipf("cannot lower RLIMIT_NOFILE: %v", err)
	}
	var logs bytes.Buffer
	tb, err := tryStartLogging(t, segment.OSFS(), &logs, dir)
	if err != nil {
		t.Fatalf("start with %d partitions under RLIMIT_NOFILE=%d: %v", topics, nofile, err)
	}
	line := logLine(t, logs.String(), "file descriptors")
	if !strings.Contains(line, fmt.Sprintf("nofile_limit=%d", nofile)) || !strings.Contains(line, fmt.Sprintf("partitions=%d", topics)) {
		t.Fatalf("start-up line %q", line)
	}
	fetchEveryTopic(t, tb, topics)
	limit := int64(tb.files.Limit())
	if st := tb.files.Stats(); limit != int64(nofile/2) || st.Open > limit {
		t.Fatalf("cache under RLIMIT_NOFILE=%d: %v", nofile, tb.files)
	}
	if err := tb.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s; after reading every partition: %v", line, tb.files)
}
