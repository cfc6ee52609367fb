package broker

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// The log cleaner's metrics, after Kafka's kafka.log:type=LogCleaner and
// LogCleanerManager beans (cleaner-recopy-percent, max-clean-time-secs,
// max-dirty-percent, time-since-last-run-ms, uncleanable-partitions-count),
// as Prometheus counters and gauges, plus the age of each compacted
// partition's last cleaning.
var (
	descCleanerRuns     = desc("sluice_log_cleaner_runs_total", "Cleaning passes completed (log compaction).")
	descCleanerFailures = desc("sluice_log_cleaner_failures_total", "Cleaning passes that failed; each leaves its partition uncleanable until restart (logged at ERROR).")
	descCleanerRead     = desc("sluice_log_cleaner_read_bytes_total", "Bytes the cleaning passes read.")
	descCleanerWritten  = desc("sluice_log_cleaner_written_bytes_total", "Bytes the cleaning passes wrote (the recopied records).")
	descCleanerDropped  = desc("sluice_log_cleaner_dropped_records_total", "Records compaction removed: older versions of a key and expired tombstones.")
	descCleanerRecopy   = desc("sluice_log_cleaner_recopy_ratio", "Bytes written over bytes read by the last pass (Kafka's cleaner-recopy-percent, as a fraction).")
	descCleanerMaxTime  = desc("sluice_log_cleaner_max_clean_time_seconds", "Longest of the cleaner threads' last passes (Kafka's max-clean-time-secs).")
	descCleanerMaxDirty = desc("sluice_log_cleaner_max_dirty_ratio", "Highest cleanable dirty ratio among compacted partitions at the last choice (Kafka's max-dirty-percent, as a fraction).")
	descCleanerSince    = desc("sluice_log_cleaner_seconds_since_last_run", "Seconds since the last cleaning pass ended (Kafka's time-since-last-run-ms); absent before the first.")
	descCleanerUnclean  = desc("sluice_log_cleaner_uncleanable_partitions", "Compacted partitions skipped after a failed pass (Kafka's uncleanable-partitions-count).")
	descLogDirtyRatio   = desc("sluice_log_cleaner_dirty_ratio", "Cleanable dirty ratio of a compacted partition at the cleaner's last choice.", "topic", "partition")
	descLogSinceClean   = desc("sluice_log_cleaner_seconds_since_last_clean", "Seconds since a compacted partition was last cleaned; absent until its first pass since start.", "topic", "partition")
)

func (c *collector) collectCleaner(ch chan<- prometheus.Metric) {
	st := c.b.replicas.CleanerStats()
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(descCleanerRuns, float64(st.Runs))
	counter(descCleanerFailures, float64(st.Failures))
	counter(descCleanerRead, float64(st.BytesRead))
	counter(descCleanerWritten, float64(st.BytesWritten))
	counter(descCleanerDropped, float64(st.RecordsDropped))
	gauge(descCleanerRecopy, st.RecopyRatio)
	gauge(descCleanerMaxTime, st.MaxCleanTime.Seconds())
	gauge(descCleanerMaxDirty, st.MaxDirtyRatio)
	now := c.b.now()
	if !st.LastRun.IsZero() {
		gauge(descCleanerSince, now.Sub(st.LastRun).Seconds())
	}
	unclean := 0
	for _, ps := range st.Partitions {
		part := strconv.Itoa(int(ps.Partition))
		gauge(descLogDirtyRatio, ps.DirtyRatio, ps.Topic, part)
		if !ps.LastCleaned.IsZero() {
			gauge(descLogSinceClean, now.Sub(ps.LastCleaned).Seconds(), ps.Topic, part)
		}
		if ps.Uncleanable {
			unclean++
		}
	}
	gauge(descCleanerUnclean, float64(unclean))
}
