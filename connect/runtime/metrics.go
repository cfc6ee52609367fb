package runtime

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the worker's Prometheus metrics, per connector and task.
// The names follow Kafka Connect's task metrics (source-record-poll-total,
// sink-record-send-total, offset-commit-*, deadletterqueue-produce-*) in
// Prometheus form.
type Metrics struct {
	polled, written, read, put   *prometheus.CounterVec
	skipped, dlq, commitFailures *prometheus.CounterVec
	restarts                     *prometheus.CounterVec
	batchSeconds, commitSeconds  *prometheus.HistogramVec
	running, failed              *prometheus.GaugeVec
	info                         *prometheus.GaugeVec
}

// NewMetrics registers the worker's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	labels := []string{"connector", "task"}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "sluice", Subsystem: "connect", Name: name, Help: help}, labels)
	}
	m := &Metrics{
		polled:         counter("source_records_polled_total", "Records a source task returned from Poll, before transforms."),
		written:        counter("source_records_written_total", "Source records the cluster acknowledged."),
		read:           counter("sink_records_read_total", "Records a sink task's consumer read."),
		put:            counter("sink_records_put_total", "Records handed to a sink task's Put after transforms."),
		skipped:        counter("records_skipped_total", "Records skipped because of an error under errors.tolerance=all (those sent to the dead letter queue included)."),
		dlq:            counter("deadletterqueue_records_total", "Records sent to the dead letter queue."),
		commitFailures: counter("offset_commit_failures_total", "Offset flushes that failed and will be retried."),
		restarts:       counter("task_restarts_total", "Tasks restarted by the worker after a failure."),
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "sluice", Subsystem: "connect", Name: "batch_seconds",
			Help:    "Time of one Poll (source) or Put (sink) call.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, labels),
		commitSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "sluice", Subsystem: "connect", Name: "offset_commit_seconds",
			Help:    "Time of one offset flush: acknowledgements, offset write, the task's commit.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, labels),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "sluice", Subsystem: "connect", Name: "tasks_running",
			Help: "Tasks running on this worker (1 per task).",
		}, labels),
		failed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "sluice", Subsystem: "connect", Name: "tasks_failed",
			Help: "Tasks of this worker that are FAILED now, waiting for a restart or given up (1 per task).",
		}, labels),
	}
	m.info = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "sluice", Subsystem: "connect", Name: "worker_info",
		Help: "1 for a running Connect worker, labelled with its version, group.id and mode (distributed or standalone).",
	}, []string{"version", "group_id", "mode"})
	if reg != nil {
		reg.MustRegister(m.polled, m.written, m.read, m.put, m.skipped, m.dlq, m.commitFailures,
			m.restarts, m.batchSeconds, m.commitSeconds, m.running, m.failed, m.info)
	}
	return m
}

// SetWorker records what this worker is (sluice_connect_worker_info), so a
// worker with no tasks still shows up, and "worker down" can be alerted on.
func (m *Metrics) SetWorker(version, groupID, mode string) {
	m.info.WithLabelValues(version, groupID, mode).Set(1)
}

// taskMetrics are one task's children of the worker's metrics.
type taskMetrics struct {
	polled, written, read, put, skipped, dlq, commitFailures, restarts prometheus.Counter
	batch, commitLatency                                               prometheus.Observer
	running, failed                                                    prometheus.Gauge
}

func (m *Metrics) task(id TaskID) *taskMetrics {
	l := prometheus.Labels{"connector": id.Connector, "task": strconv.Itoa(id.Task)}
	return &taskMetrics{
		polled: m.polled.With(l), written: m.written.With(l), read: m.read.With(l), put: m.put.With(l),
		skipped: m.skipped.With(l), dlq: m.dlq.With(l), commitFailures: m.commitFailures.With(l),
		restarts: m.restarts.With(l), batch: m.batchSeconds.With(l), commitLatency: m.commitSeconds.With(l),
		running: m.running.With(l), failed: m.failed.With(l),
	}
}

func (t *taskMetrics) pollBatch(n int, d time.Duration) {
	t.polled.Add(float64(n))
	if n > 0 {
		t.batch.Observe(d.Seconds())
	}
}
