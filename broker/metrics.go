package broker

import (
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/netio"
)

// metrics are the broker's Prometheus metrics. Counters on the request path
// (per API, per topic) are resolved to their child once and cached, so the
// hot path costs an atomic add, not a label lookup. Gauges that describe
// state (log sizes, offsets, groups, lag, connections) are read at scrape
// time by collector (metrics_collect.go), so they cost nothing between
// scrapes.
//
// Cardinality is bounded by what the operator creates: topics, partitions
// and groups. metrics.partition.level=false folds the per-partition series
// into one per topic (partition="all").
type metrics struct {
	reg          *prometheus.Registry
	perPartition bool

	queue, handle, send *prometheus.HistogramVec
	apis                [maxAPIKey + 1][maxAPIVersion + 1]atomic.Pointer[apiMetrics]
	inFlight            atomic.Int64
	reqErrors           *prometheus.CounterVec

	bytesIn, msgsIn, bytesOut, msgsOut *prometheus.CounterVec
	topicsMu                           sync.Mutex
	topics                             map[string]*topicMetrics

	flush    prometheus.Histogram
	recovery prometheus.Gauge
	ready    prometheus.Gauge

	// Per log dir, fed by storageHealth (storage_errors.go).
	storageErrors *prometheus.CounterVec
	dirFailing    *prometheus.GaugeVec

	// Keyless records refused by compacted topics (produce.go).
	noKeyCompacted prometheus.Counter
}

// Bounds of the per-API cache; kmsg has fewer keys and versions than this.
const (
	maxAPIKey     = 127
	maxAPIVersion = 31
)

type apiMetrics struct{ queue, handle, send prometheus.Observer }

// topicMetrics are one topic's traffic counters.
type topicMetrics struct{ bytesIn, msgsIn, bytesOut, msgsOut prometheus.Counter }

// latencyBuckets span a loopback round trip (tens of µs) to a long-polling
// fetch (fetch.max.wait.ms, 500 ms by default, up to 30 s).
var latencyBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// flushBuckets span an fsync on NVMe (~100 µs) to a struggling disk.
var flushBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

func newMetrics(b *Broker, perPartition bool) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), perPartition: perPartition, topics: map[string]*topicMetrics{}}
	hist := func(name, help string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets}, []string{"api", "version"})
	}
	m.queue = hist("sluice_request_queue_seconds", "Time a request waited after it was read until its handler started: behind the connection's earlier requests.")
	m.handle = hist("sluice_request_handle_seconds", "Time the API handler took, long-poll waits of Fetch included.")
	m.send = hist("sluice_request_send_seconds", "Time from the handler's return until the response was written to the socket.")
	m.reqErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_request_errors_total", Help: "Error codes returned, per API and Kafka error name (per partition for Produce and Fetch)."}, []string{"api", "error"})
	topicCounter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"topic"})
	}
	m.bytesIn = topicCounter("sluice_topic_bytes_in_total", "Record batch bytes appended by producers.")
	m.msgsIn = topicCounter("sluice_topic_messages_in_total", "Records appended by producers.")
	m.bytesOut = topicCounter("sluice_topic_bytes_out_total", "Record batch bytes returned by Fetch.")
	m.msgsOut = topicCounter("sluice_topic_messages_out_total", "Offsets returned by Fetch: how far consumers advanced.")
	m.flush = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sluice_log_flush_seconds", Help: "Latency of fsync of log, index and state files.", Buckets: flushBuckets})
	m.recovery = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_log_recovery_seconds", Help: "Time spent opening and recovering the logs at start."})
	m.ready = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_ready", Help: "1 once the logs are recovered and the listener accepts connections."})
	m.storageErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_log_dir_storage_errors_total",
		Help: "Writes to the log dir that failed with an OS error (ENOSPC, EIO, EROFS, ...): appends, fsyncs, checkpoint and index files."}, []string{"dir"})
	m.dirFailing = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sluice_log_dir_failing",
		Help: "1 from a failed write to the log dir until the next write to it succeeds (Kafka's LogDirectoryOffline, but it recovers by itself); /readyz answers 503 meanwhile."}, []string{"dir"})
	m.noKeyCompacted = prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_no_key_compacted_topic_records_total",
		Help: "Records without a key refused by compacted topics (Kafka's NoKeyCompactedTopicRecordsPerSec): a producer writing to the wrong topic, or one that lost its keys."})
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_requests_in_flight", Help: "Requests being handled right now."},
		func() float64 { return float64(m.inFlight.Load()) })
	// The segment file cache (segment_files.go); process_open_fds and
	// process_max_fds say how the whole process stands.
	openFiles := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_log_open_segment_files",
		Help: "Segment files (.log, .index, .timeindex) open now. Files open on first use; beyond the limit the least recently used idle ones are closed."},
		func() float64 { return float64(b.segmentFileStats().Open) })
	openFilesLimit := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sluice_log_open_segment_files_limit",
		Help: "log.open.segment.files.max, or half of RLIMIT_NOFILE when unset. Files in use (a fetch being sent) are never closed, and may take the count above it for a moment."},
		func() float64 { return float64(b.segmentFileStats().Limit) })
	evictions := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sluice_log_segment_file_evictions_total",
		Help: "Idle segment files closed to stay within sluice_log_open_segment_files_limit; they reopen on their next use. A fast rise means the limit is too low for the partitions in use."},
		func() float64 { return float64(b.segmentFileStats().Evictions) })
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_build_info", Help: "Always 1; the labels say what is running.",
		ConstLabels: prometheus.Labels{"version": buildVersion(), "go_version": runtime.Version()}})
	build.Set(1)
	m.reg.MustRegister(m.queue, m.handle, m.send, m.reqErrors, m.bytesIn, m.msgsIn, m.bytesOut, m.msgsOut,
		m.flush, m.recovery, m.ready, m.storageErrors, m.dirFailing, m.noKeyCompacted, inFlight, openFiles, openFilesLimit, evictions, build, &collector{b: b}, newReplicationCollector(b),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// buildVersion is the module version, or the VCS revision of a source build.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return s.Value[:12]
		}
	}
	return "devel"
}

// RequestDone implements netio.Observer.
func (m *metrics) RequestDone(t netio.RequestTiming) {
	a := m.api(t.Key, t.Version)
	if a == nil {
		return
	}
	a.queue.Observe(t.Queue.Seconds())
	a.handle.Observe(t.Handle.Seconds())
	if t.Send > 0 {
		a.send.Observe(t.Send.Seconds())
	}
}

// api returns the cached histograms of one API version, nil for keys
// outside the cache (the broker refuses those anyway).
func (m *metrics) api(key, version int16) *apiMetrics {
	if key < 0 || key > maxAPIKey || version < 0 || version > maxAPIVersion {
		return nil
	}
	slot := &m.apis[key][version]
	if a := slot.Load(); a != nil {
		return a
	}
	labels := []string{apiName(key), strconv.Itoa(int(version))}
	a := &apiMetrics{queue: m.queue.WithLabelValues(labels...), handle: m.handle.WithLabelValues(labels...), send: m.send.WithLabelValues(labels...)}
	slot.CompareAndSwap(nil, a)
	return slot.Load()
}

func apiName(key int16) string {
	if n := kmsg.NameForKey(key); n != "" {
		return n
	}
	return "Unknown" + strconv.Itoa(int(key))
}

// requestError counts one error code returned by an API.
func (m *metrics) requestError(key int16, code int16) {
	if code == 0 {
		return
	}
	name := "UNKNOWN_ERROR_" + strconv.Itoa(int(code))
	if err := kerr.ErrorForCode(code); err != nil {
		if ke, ok := err.(*kerr.Error); ok {
			name = ke.Message
		}
	}
	m.reqErrors.WithLabelValues(apiName(key), name).Inc()
}

// topic returns the traffic counters of a topic, creating them on first use.
func (m *metrics) topic(name string) *topicMetrics {
	m.topicsMu.Lock()
	defer m.topicsMu.Unlock()
	if tm := m.topics[name]; tm != nil {
		return tm
	}
	tm := &topicMetrics{
		bytesIn: m.bytesIn.WithLabelValues(name), msgsIn: m.msgsIn.WithLabelValues(name),
		bytesOut: m.bytesOut.WithLabelValues(name), msgsOut: m.msgsOut.WithLabelValues(name),
	}
	m.topics[name] = tm
	return tm
}

// forgetTopic drops a deleted topic's series, so a dashboard stops showing
// it and a topic re-created under the name starts from zero.
func (m *metrics) forgetTopic(name string) {
	m.topicsMu.Lock()
	delete(m.topics, name)
	m.topicsMu.Unlock()
	for _, v := range []*prometheus.CounterVec{m.bytesIn, m.msgsIn, m.bytesOut, m.msgsOut} {
		v.DeleteLabelValues(name)
	}
}

// observeFlush records one fsync.
func (m *metrics) observeFlush(d time.Duration) { m.flush.Observe(d.Seconds()) }
