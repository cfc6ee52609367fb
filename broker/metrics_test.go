package broker

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/segment"
)

// scrape fetches /metrics from the broker's admin endpoint and parses it.
func (tb *testBroker) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	body := httpGet(t, "http://"+tb.AdminAddr().String()+"/metrics", http.StatusOK)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

func httpGet(t *testing.T, url string, wantStatus int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: status %d, want %d: %s", url, resp.StatusCode, wantStatus, b)
	}
	return string(b)
}

// value returns the value of the series of family name whose labels include
// all of labels (name=value pairs); ok is false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func mustValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	v, ok := value(fams, name, labels...)
	if !ok {
		t.Fatalf("no series %s%v on /metrics", name, labels)
	}
	return v
}

// produceBatch sends one Produce v9 of a batch of n records to topic/0 and
// returns the batch's size in bytes.
func produceBatch(t *testing.T, c *rawConn, topic string, partition int32, n int) int {
	t.Helper()
	kvs := make([]segment.KV, n)
	for i := range kvs {
		kvs[i] = segment.KV{Value: []byte(strings.Repeat("v", 100))}
	}
	batch, err := segment.BuildBatch(kvs, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := do[*kmsg.ProduceResponse](c, req, 9)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 && partition == 0 {
		t.Fatalf("produce: error code %d", code)
	}
	return len(batch)
}

func fetchAll(t *testing.T, c *rawConn, topic string, from int64) {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes, req.MinBytes, req.MaxWaitMillis, req.ReplicaID = 1<<20, 1, 100, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset, fp.PartitionMaxBytes = from, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp := do[*kmsg.FetchResponse](c, req, 11)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("fetch: error code %d", code)
	}
}

func TestMetricsCountTraffic(t *testing.T) { forEachEngine(t, testMetricsCountTraffic) }

// Producing and consuming known batches must move the traffic counters,
// request histograms, log gauges and lag by exactly what was sent.
func testMetricsCountTraffic(t *testing.T, engine string) {
	tb := startTestBroker(t, "netio.engine="+engine)
	tb.createTopic(t, "m", 2, map[string]*string{"flush.messages": kmsg.StringPtr("1")})
	c := tb.raw(t)
	before := tb.scrape(t)
	produceCount, _ := value(before, "sluice_request_handle_seconds", "api", "Produce", "version", "9")
	flushes, _ := value(before, "sluice_log_flush_seconds")

	size := produceBatch(t, c, "m", 0, 10)
	size += produceBatch(t, c, "m", 0, 5)
	produceBatch(t, c, "m", 7, 1) // no such partition
	fetchAll(t, c, "m", 0)
	fetchAll(t, c, "m", 12) // the tail of the second batch: offsets 12..14

	// A group that committed offset 4 on partition 0 lags by 11.
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation = "g", -1
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = "m"
	op := kmsg.NewOffsetCommitRequestTopicPartition()
	op.Partition, op.Offset = 0, 4
	ot.Partitions = append(ot.Partitions, op)
	oc.Topics = append(oc.Topics, ot)
	if r := do[*kmsg.OffsetCommitResponse](c, oc, 8); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit: %d", r.Topics[0].Partitions[0].ErrorCode)
	}

	// Histograms are observed after the response is written, so wait for
	// the last one (the commit) to land.
	var fams map[string]*dto.MetricFamily
	testkit.Poll(5*time.Second, func() bool {
		fams = tb.scrape(t)
		v, _ := value(fams, "sluice_request_handle_seconds", "api", "OffsetCommit", "version", "8")
		return v == 1
	}) // if it never comes, the checks below say what is missing
	want := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sluice_topic_messages_in_total", []string{"topic", "m"}, 15},
		{"sluice_topic_bytes_in_total", []string{"topic", "m"}, float64(size)},
		// The first fetch returns both batches (15 offsets); the second
		// returns the second batch whole but advances the consumer by 3.
		{"sluice_topic_messages_out_total", []string{"topic", "m"}, 18},
		{"sluice_topic_bytes_out_total", []string{"topic", "m"}, float64(2*size - produceSizeOf(t, 10))},
		{"sluice_request_handle_seconds", []string{"api", "Produce", "version", "9"}, produceCount + 3},
		{"sluice_request_queue_seconds", []string{"api", "Fetch", "version", "11"}, 2},
		{"sluice_request_send_seconds", []string{"api", "Fetch", "version", "11"}, 2},
		{"sluice_request_errors_total", []string{"api", "Produce", "error", "UNKNOWN_TOPIC_OR_PARTITION"}, 1},
		{"sluice_log_end_offset", []string{"topic", "m", "partition", "0"}, 15},
		{"sluice_log_end_offset", []string{"topic", "m", "partition", "1"}, 0},
		{"sluice_log_size_bytes", []string{"topic", "m", "partition", "0"}, float64(size)},
		{"sluice_log_segments", []string{"topic", "m", "partition", "0"}, 1},
		{"sluice_log_start_offset", []string{"topic", "m", "partition", "0"}, 0},
		{"sluice_consumer_group_lag", []string{"group", "g", "topic", "m", "partition", "0"}, 11},
		{"sluice_consumer_groups", []string{"state", "Empty", "type", "classic"}, 1},
		{"sluice_consumer_group_members", []string{"group", "g"}, 0},
		{"sluice_ready", nil, 1},
		{"sluice_build_info", nil, 1},
	}
	for _, w := range want {
		if got := mustValue(t, fams, w.name, w.labels...); got != w.want {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.want)
		}
	}
	// flush.messages=1: each append fsyncs at least the segment.
	if got := mustValue(t, fams, "sluice_log_flush_seconds"); got < flushes+2 {
		t.Errorf("flush histogram count %v, want at least %v", got, flushes+2)
	}
	// The admin client that created the topic holds connections too.
	if got := mustValue(t, fams, "sluice_connections_open", "engine", engine); got < 1 {
		t.Errorf("connections open %v, want at least this test's", got)
	}
	if got := mustValue(t, fams, "sluice_network_received_bytes_total", "engine", engine); got <= float64(size) {
		t.Errorf("received bytes %v, want more than the two batches (%d)", got, size)
	}
	// Fetch answers under 64 KiB have their file ranges copied into one
	// write (netio's inlineSmall), so these small batches count as copied
	// bytes; large answers go zero-copy (netio's tests hold that).
	fetched := size + size - produceSizeOf(t, 10)
	cp := mustValue(t, fams, "sluice_network_sent_bytes_total", "engine", engine, "mode", "copied")
	if cp < float64(fetched) {
		t.Errorf("copied bytes %v, want at least the fetched batches (%d)", cp, fetched)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "sluice_requests_in_flight", "sluice_producer_ids", "sluice_log_recovery_seconds"} {
		mustValue(t, fams, name)
	}
}

func produceSizeOf(t *testing.T, n int) int {
	kvs := make([]segment.KV, n)
	for i := range kvs {
		kvs[i] = segment.KV{Value: []byte(strings.Repeat("v", 100))}
	}
	b, err := segment.BuildBatch(kvs, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

func TestMetricsTopicLevelAndDeletedTopics(t *testing.T) {
	tb := startTestBroker(t, "metrics.partition.level=false")
	tb.createTopic(t, "agg", 3, nil)
	c := tb.raw(t)
	produceBatch(t, c, "agg", 0, 4)
	produceBatch(t, c, "agg", 2, 6)
	fams := tb.scrape(t)
	if got := mustValue(t, fams, "sluice_log_end_offset", "topic", "agg", "partition", "all"); got != 10 {
		t.Errorf("summed end offset %v, want 10", got)
	}
	if _, ok := value(fams, "sluice_log_end_offset", "topic", "agg", "partition", "0"); ok {
		t.Errorf("per-partition series exported with metrics.partition.level=false")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tb.admin(t).DeleteTopics(ctx, "agg"); err != nil {
		t.Fatal(err)
	}
	fams = tb.scrape(t)
	for _, name := range []string{"sluice_topic_messages_in_total", "sluice_log_end_offset"} {
		if _, ok := value(fams, name, "topic", "agg"); ok {
			t.Errorf("%s still exported for a deleted topic", name)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	tb := startTestBroker(t)
	base := "http://" + tb.AdminAddr().String()
	if body := httpGet(t, base+"/healthz", http.StatusOK); !strings.Contains(body, "ok") {
		t.Errorf("/healthz: %q", body)
	}
	if body := httpGet(t, base+"/readyz", http.StatusOK); !strings.Contains(body, "ready") {
		t.Errorf("/readyz: %q", body)
	}
	// During shutdown the broker is no longer ready; the endpoint itself is
	// closed at the end of Shutdown.
	tb.stopping.Store(true)
	if body := httpGet(t, base+"/readyz", http.StatusServiceUnavailable); !strings.Contains(body, "shutting down") {
		t.Errorf("/readyz while stopping: %q", body)
	}
	tb.stopping.Store(false)
	if err := tb.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Errorf("admin endpoint still answers after Shutdown")
	}
}

func TestAdminListenerConflictFailsStart(t *testing.T) {
	tb := startTestBroker(t)
	cfgSets := []string{"admin.listener=" + tb.AdminAddr().String()}
	_, err := newBrokerErr(t, cfgSets...)
	if err == nil || !strings.Contains(err.Error(), "admin listener") {
		t.Fatalf("second broker on the same admin address: %v, want an admin listener error", err)
	}
}

// newBrokerErr runs New with sets on top of a fresh data directory and
// returns its error (closing the broker if it did start).
func newBrokerErr(t *testing.T, sets ...string) (*Broker, error) {
	t.Helper()
	cfg, err := config.Load("", append([]string{"listeners=PLAINTEXT://127.0.0.1:0", "log.dirs=" + t.TempDir()}, sets...))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		_ = b.Shutdown(context.Background())
	}
	return b, err
}
