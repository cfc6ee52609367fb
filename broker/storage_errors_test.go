package broker

import (
	"bytes"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/coordinator"
	"github.com/sluice-io/sluice/segment"
)

// lockedBuffer collects log lines written from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines are the lines logged so far that contain s.
func (b *lockedBuffer) lines(s string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

func metricValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// A full disk fails every write: the first failure is logged with its path
// and errno, the next ones within storageLogEvery only counted, and the
// line after the window says how many were left out. Every one is in the
// metric, and the first successful write clears the failing state.
func TestStorageErrorsLoggedOncePerWindow(t *testing.T) {
	dir := t.TempDir()
	var logs lockedBuffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m := newMetrics(&Broker{}, false)
	h := newStorageHealth([]string{dir}, m, slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return now })
	ffs := &failFS{FS: segment.OSFS(), failIn: "p-0", writes: syscall.ENOSPC, open: map[string]int{}}
	fsys := healthFS{FS: ffs, h: h}
	if err := fsys.MkdirAll(filepath.Join(dir, "p-0"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "p-0", "00000000000000000000.log")
	f, err := fsys.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	errs, failing := m.storageErrors.WithLabelValues(dir), m.dirFailing.WithLabelValues(dir)
	if h.err() != nil || metricValue(t, failing) != 0 {
		t.Fatalf("failing before any error: %v", h.err())
	}

	for range 5 {
		if _, err := f.Write([]byte("record")); err == nil {
			t.Fatal("write on the full disk succeeded")
		}
		now = now.Add(time.Second)
	}
	lines := logs.lines("storage error")
	if len(lines) != 1 {
		t.Fatalf("%d error lines for 5 errors in %v, want 1:\n%s", len(lines), storageLogEvery, strings.Join(lines, "\n"))
	}
	for _, want := range []string{"dir=" + dir, "path=" + path, "errno=ENOSPC", "op=write", "suppressed=0"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("error line lacks %q: %s", want, lines[0])
		}
	}
	if got := metricValue(t, errs); got != 5 {
		t.Errorf("sluice_log_dir_storage_errors_total %v, want 5", got)
	}
	if got := metricValue(t, failing); got != 1 {
		t.Errorf("sluice_log_dir_failing %v, want 1", got)
	}
	if err := h.err(); err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("readiness: %v, want the dir and its last error", err)
	}

	// Ten seconds after the first line, the next error is logged again,
	// with the four left out.
	now = now.Add(storageLogEvery - 5*time.Second)
	if _, err := f.Write([]byte("record")); err == nil {
		t.Fatal("write on the full disk succeeded")
	}
	if lines = logs.lines("storage error"); len(lines) != 2 || !strings.Contains(lines[1], "suppressed=4") {
		t.Fatalf("after the window, want a second line with suppressed=4:\n%s", strings.Join(lines, "\n"))
	}

	ffs.healed.Store(true)
	if _, err := f.Write([]byte("record")); err != nil {
		t.Fatal(err)
	}
	if err := h.err(); err != nil {
		t.Errorf("still failing after a successful write: %v", err)
	}
	if got := metricValue(t, failing); got != 0 {
		t.Errorf("sluice_log_dir_failing %v after recovery, want 0", got)
	}
	if rec := logs.lines("storage recovered"); len(rec) != 1 || !strings.Contains(rec[0], "errors=6") {
		t.Errorf("recovery lines %q, want one with errors=6", rec)
	}
	if got := metricValue(t, errs); got != 6 {
		t.Errorf("sluice_log_dir_storage_errors_total %v, want 6: a counter never goes back", got)
	}

	// A disk at the edge of full fails and recovers within the window:
	// the error is counted but not logged, and neither is its recovery.
	ffs.healed.Store(false)
	if _, err := f.Write([]byte("record")); err == nil {
		t.Fatal("write on the full disk succeeded")
	}
	ffs.healed.Store(true)
	if _, err := f.Write([]byte("record")); err != nil {
		t.Fatal(err)
	}
	if n, rec := len(logs.lines("storage error")), len(logs.lines("storage recovered")); n != 2 || rec != 1 {
		t.Errorf("a failure within the window logged %d error and %d recovery lines in all, want 2 and 1", n, rec)
	}
	if got := metricValue(t, errs); got != 7 {
		t.Errorf("sluice_log_dir_storage_errors_total %v, want 7", got)
	}
}

// Process limits and names are not the disk's fault: they neither mark a
// dir failing nor count.
func TestStorageErrorsIgnoreNonDiskErrors(t *testing.T) {
	dir := t.TempDir()
	m := newMetrics(&Broker{}, false)
	h := newStorageHealth([]string{dir}, m, slog.New(slog.DiscardHandler), time.Now)
	d := h.dirOf(filepath.Join(dir, "t-0", "x.log"))
	if d == nil || h.dirOf(filepath.Join(filepath.Dir(dir), "elsewhere")) != nil {
		t.Fatalf("dirOf: %v", d)
	}
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOENT, syscall.EEXIST} {
		d.failed("open", "x", &os.PathError{Op: "open", Path: "x", Err: errno})
	}
	d.failed("write", "x", os.ErrClosed)
	if err := h.err(); err != nil || metricValue(t, m.storageErrors.WithLabelValues(dir)) != 0 {
		t.Fatalf("non-disk errors marked the dir failing: %v", err)
	}
}

// The disk under a partition fills up: produce answers KAFKA_STORAGE_ERROR
// as before, but now the broker logs it, counts it, and /readyz answers 503
// naming the dir; once space is freed the next produce succeeds and the
// broker is ready again, without a restart.
func TestDiskFullIsVisibleAndRecovers(t *testing.T) {
	dir := t.TempDir()
	ffs := &failFS{FS: segment.OSFS(), failIn: "full-0", writes: syscall.ENOSPC, open: map[string]int{}}
	ffs.healed.Store(true) // space left while the topic is created
	var logs lockedBuffer
	tb, err := tryStartLogging(t, ffs, &logs, dir)
	if err != nil {
		t.Fatal(err)
	}
	tb.createTopic(t, "full", 1, nil)
	batch, err := segment.BuildBatch([]segment.KV{{Value: []byte("v")}}, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	readyz := "http://" + tb.AdminAddr().String() + "/readyz"
	if r := produceRaw(t, tb, "full", batch); r.ErrorCode != 0 {
		t.Fatalf("produce with space: %d", r.ErrorCode)
	}
	httpGet(t, readyz, http.StatusOK)

	ffs.healed.Store(false)
	const failures = 3
	for range failures {
		if r := produceRaw(t, tb, "full", batch); r.ErrorCode != kerr.KafkaStorageError.Code {
			t.Fatalf("produce on a full disk: %d %q, want KAFKA_STORAGE_ERROR", r.ErrorCode, strOrEmpty(r.ErrorMessage))
		}
	}
	lines := logs.lines("storage error")
	if len(lines) != 1 {
		t.Fatalf("%d storage error lines for %d failed produces, want 1:\n%s", len(lines), failures, strings.Join(lines, "\n"))
	}
	for _, want := range []string{"level=ERROR", "dir=" + dir, "path=" + filepath.Join(dir, "full-0"), "errno=ENOSPC"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("error line lacks %q: %s", want, lines[0])
		}
	}
	fams := tb.scrape(t)
	if got := mustValue(t, fams, "sluice_log_dir_storage_errors_total", "dir", dir); got < failures {
		t.Errorf("sluice_log_dir_storage_errors_total %v, want at least %d", got, failures)
	}
	if got := mustValue(t, fams, "sluice_log_dir_failing", "dir", dir); got != 1 {
		t.Errorf("sluice_log_dir_failing %v, want 1", got)
	}
	if body := httpGet(t, readyz, http.StatusServiceUnavailable); !strings.Contains(body, "log dir "+dir) || !strings.Contains(body, "no space left on device") {
		t.Errorf("/readyz on a full disk: %q, want the dir and its error", body)
	}

	ffs.healed.Store(true)
	if r := produceRaw(t, tb, "full", batch); r.ErrorCode != 0 {
		t.Fatalf("produce once space is freed: %d %q", r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	if body := httpGet(t, readyz, http.StatusOK); !strings.Contains(body, "ready") {
		t.Errorf("/readyz after recovery: %q", body)
	}
	if got := mustValue(t, tb.scrape(t), "sluice_log_dir_failing", "dir", dir); got != 0 {
		t.Errorf("sluice_log_dir_failing %v after recovery, want 0", got)
	}
	if len(logs.lines("storage recovered")) != 1 {
		t.Errorf("no line says the dir recovered")
	}
	if end := tb.topics.get("full").parts[0].LogEndOffset(); end != 2 {
		t.Errorf("log end offset %d, want 2: the failed appends must leave no trace", end)
	}
}

// The coordinator's writes go through the same FS: on a full disk,
// creating __consumer_offsets and committing offsets fail and are seen,
// and both work once space is freed, without a restart (the second half of
// issue 13's item 10, with ENOSPC on writes rather than EMFILE on opens).
func TestOffsetCommitRecoversFromFullDisk(t *testing.T) {
	dir := t.TempDir()
	ffs := &failFS{FS: segment.OSFS(), failIn: coordinator.OffsetsTopic + "-0", writes: syscall.ENOSPC, open: map[string]int{}}
	var logs lockedBuffer
	tb, err := tryStartLogging(t, ffs, &logs, dir, "offsets.topic.num.partitions=1")
	if err != nil {
		t.Fatal(err)
	}
	readyz := "http://" + tb.AdminAddr().String() + "/readyz"
	c := tb.raw(t)
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g"
	if r := do[*kmsg.FindCoordinatorResponse](c, fc, 3); r.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("FindCoordinator on a full disk: %d, want COORDINATOR_NOT_AVAILABLE", r.ErrorCode)
	}
	if body := httpGet(t, readyz, http.StatusServiceUnavailable); !strings.Contains(body, "log dir "+dir) {
		t.Errorf("/readyz after the offsets topic failed to be created: %q", body)
	}
	ffs.healed.Store(true)
	if r := do[*kmsg.FindCoordinatorResponse](c, fc, 3); r.ErrorCode != 0 {
		t.Fatalf("FindCoordinator once space is freed: %d %q", r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	tb.createTopic(t, "t", 1, nil)
	commit := func() int16 {
		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.Group, oc.Generation = "g", -1
		oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 0}}}}
		return do[*kmsg.OffsetCommitResponse](c, oc, 8).Topics[0].Partitions[0].ErrorCode
	}
	if code := commit(); code != 0 {
		t.Fatalf("OffsetCommit with space: %d", code)
	}
	httpGet(t, readyz, http.StatusOK)

	ffs.healed.Store(false)
	if code := commit(); code == 0 {
		t.Fatal("OffsetCommit on a full disk succeeded")
	}
	if body := httpGet(t, readyz, http.StatusServiceUnavailable); !strings.Contains(body, "no space left on device") {
		t.Errorf("/readyz while commits fail: %q", body)
	}
	ffs.healed.Store(true)
	if code := commit(); code != 0 {
		t.Fatalf("OffsetCommit once space is freed: %d", code)
	}
	httpGet(t, readyz, http.StatusOK)
}
