package itest

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"
)

// scrapeMetrics GETs the broker's /metrics and parses the exposition.
func scrapeMetrics(t testing.TB, b *brokerProc) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + b.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return fams
}

// matching returns the series of name whose labels include labels
// (name=value pairs).
func matching(fams map[string]*dto.MetricFamily, name string, labels ...string) []*dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	var out []*dto.Metric
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
		out = append(out, m)
	}
	return out
}

// metricSum adds the values (histogram sample counts) of every series of
// name whose labels include labels.
func metricSum(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	var sum float64
	for _, m := range matching(fams, name, labels...) {
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func getStatus(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestMetricsWhileProducingAndConsuming(t *testing.T) {
	engines.Run(t, func(t *testing.T, engine string) {
		b := startBroker(t, engine, t.TempDir())
		if code, body := getStatus(t, "http://"+b.AdminAddr()+"/healthz"); code != 200 {
			t.Fatalf("/healthz: %d %s", code, body)
		}
		if code, body := getStatus(t, "http://"+b.AdminAddr()+"/readyz"); code != 200 || !strings.Contains(body, "ready") {
			t.Fatalf("/readyz: %d %s", code, body)
		}
		createTopic(t, b.Addr(), "traffic", 4, nil)
		before := scrapeMetrics(t, b)

		const n, size = 2000, 512
		// Uncompressed, spread over every partition: byte counts are then
		// comparable with the values, and every partition gets a lag series.
		cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("traffic"),
			kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		ctx := testCtx(t, 60*time.Second)
		for i := 0; i < n; i += 100 {
			recs := make([]*kgo.Record, 100)
			for j := range recs {
				recs[j] = &kgo.Record{Value: []byte(fmt.Sprintf("%0*d", size, i+j))}
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			// Scrape while traffic flows: scrapes must not disturb it.
			scrapeMetrics(t, b)
		}
		mid := scrapeMetrics(t, b)
		if got := metricSum(mid, "sluice_topic_messages_in_total", "topic", "traffic") - metricSum(before, "sluice_topic_messages_in_total", "topic", "traffic"); got != n {
			t.Errorf("messages in moved by %v, want %d", got, n)
		}
		if got := metricSum(mid, "sluice_topic_bytes_in_total", "topic", "traffic"); got < n*size {
			t.Errorf("bytes in %v, want at least the values' %d bytes", got, n*size)
		}
		if got := metricSum(mid, "sluice_log_end_offset", "topic", "traffic"); got != n {
			t.Errorf("summed log end offsets %v, want %d", got, n)
		}
		produces := metricSum(mid, "sluice_request_handle_seconds", "api", "Produce") - metricSum(before, "sluice_request_handle_seconds", "api", "Produce")
		if produces < 1 || produces > n/100*4 {
			t.Errorf("Produce handle-time observations moved by %v for %d ProduceSync calls of 100 records", produces, n/100)
		}

		// A group consumes everything and commits: lag goes to zero.
		consumer := newClient(t, b.Addr(), kgo.ConsumerGroup("metrics-g"), kgo.ConsumeTopics("traffic"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		got := 0
		for got < n {
			fs := consumer.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d", got, n)
			}
			got += fs.NumRecords()
		}
		if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatal(err)
		}
		after := scrapeMetrics(t, b)
		if out := metricSum(after, "sluice_topic_messages_out_total", "topic", "traffic"); out < n {
			t.Errorf("messages out %v, want at least the %d consumed", out, n)
		}
		if out := metricSum(after, "sluice_topic_bytes_out_total", "topic", "traffic"); out < metricSum(mid, "sluice_topic_bytes_in_total", "topic", "traffic") {
			t.Errorf("bytes out %v below bytes in: the whole topic was consumed", out)
		}
		if lag := metricSum(after, "sluice_consumer_group_lag", "group", "metrics-g", "topic", "traffic"); lag != 0 {
			t.Errorf("lag after committing everything: %v", lag)
		}
		if len(seriesOf(after, "sluice_consumer_group_lag", "group", "metrics-g")) != 4 {
			t.Errorf("want one lag series per partition: %v", seriesOf(after, "sluice_consumer_group_lag", "group", "metrics-g"))
		}
		if v := metricSum(after, "sluice_consumer_groups", "type", "classic"); v < 1 {
			t.Errorf("classic groups gauge %v", v)
		}
		if v := metricSum(after, "sluice_request_handle_seconds", "api", "JoinGroup"); v < 1 {
			t.Errorf("no JoinGroup observations")
		}
		if v := metricSum(after, "sluice_connections_accepted_total", "engine", engine); v < 2 {
			t.Errorf("connections accepted %v", v)
		}
		if engine == "uring" && metricSum(after, "sluice_uring_completions_total") < 1 {
			t.Errorf("io_uring engine reports no completions")
		}

		// Lag appears as soon as more is produced, without the group
		// doing anything.
		produceSync(t, cl, &kgo.Record{Value: []byte("more"), Partition: 0})
		final := scrapeMetrics(t, b)
		if lag := metricSum(final, "sluice_consumer_group_lag", "group", "metrics-g", "topic", "traffic"); lag != 1 {
			t.Errorf("lag after one more record: %v, want 1", lag)
		}
	})
}

// seriesOf lists the label sets of name's series that include labels.
func seriesOf(all map[string]*dto.MetricFamily, name string, labels ...string) []string {
	var out []string
	for _, m := range matching(all, name, labels...) {
		out = append(out, fmt.Sprint(m.Label))
	}
	return out
}
