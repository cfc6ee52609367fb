package broker

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-io/sluice/netio"
)

// collector reads the broker's state at scrape time: connections and bytes
// of the network engine, io_uring rings, partition logs, producer ids,
// groups and their lag.
type collector struct{ b *Broker }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descConnsOpen     = desc("sluice_connections_open", "Client connections open.", "engine")
	descConnsAccepted = desc("sluice_connections_accepted_total", "Client connections accepted.", "engine")
	descConnsClosed   = desc("sluice_connections_closed_total", "Accepted client connections closed since.", "engine")
	descConnsRefused  = desc("sluice_connections_refused_total", "Connections closed at once because max.connections were open.", "engine")
	descNetIn         = desc("sluice_network_received_bytes_total", "Bytes of request frames received.", "engine")
	descNetOut        = desc("sluice_network_sent_bytes_total", "Bytes of responses sent: zerocopy went from the page cache by sendfile or splice, copied through Go memory.", "engine", "mode")

	descRingSubmit  = desc("sluice_uring_submissions_total", "Submission queue entries handed to the kernel.", "ring")
	descRingComplet = desc("sluice_uring_completions_total", "Completion queue entries reaped.", "ring")
	descRingNoBufs  = desc("sluice_uring_buffer_exhausted_total", "Receives that found the ring's provided buffers used up (ENOBUFS).", "ring")
	descRingSplice  = desc("sluice_uring_spliced_bytes_total", "File bytes moved to sockets with splice.", "ring")

	descLogSize           = desc("sluice_log_size_bytes", "Bytes of the partition's segments.", "topic", "partition")
	descLogSegments       = desc("sluice_log_segments", "Segments of the partition.", "topic", "partition")
	descLogStart          = desc("sluice_log_start_offset", "First offset still in the log.", "topic", "partition")
	descLogEnd            = desc("sluice_log_end_offset", "Offset the next appended record gets.", "topic", "partition")
	descLogGaps           = desc("sluice_log_recovery_gaps", "Damaged offset ranges the partition's recovery found at start and no longer serves (each logged at ERROR).", "topic", "partition")
	descLogPoisoned       = desc("sluice_log_poisoned_partitions", "Partitions whose log refuses writes until the broker restarts because an fsync of its files failed (each logged at ERROR); clients get KAFKA_STORAGE_ERROR.")
	descFetchSessions     = desc("sluice_fetch_sessions", "Incremental fetch sessions (KIP-227) cached, of consumers and of followers (Kafka's NumIncrementalFetchSessions).")
	descFetchSessionParts = desc("sluice_fetch_session_partitions", "Partitions held by the cached fetch sessions (Kafka's NumIncrementalFetchPartitionsCached).")
	descProducerIDs       = desc("sluice_producer_ids", "Producer ids with idempotence state, over all partitions.")

	descGroups       = desc("sluice_consumer_groups", "Consumer groups by state and protocol type (classic or consumer).", "state", "type")
	descGroupMembers = desc("sluice_consumer_group_members", "Members of a consumer group.", "group")
	descGroupLag     = desc("sluice_consumer_group_lag", "Records between a group's committed offset and the partition's high watermark.", "group", "topic", "partition")
)

// Describe sends nothing: the series depend on the topics and groups of the
// moment, so this is an unchecked collector.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	if c.b.listening.Load() {
		c.collectEngine(ch)
	}
	if c.b.loaded.Load() {
		sessions, parts := c.b.sessions.stats()
		ch <- prometheus.MustNewConstMetric(descFetchSessions, prometheus.GaugeValue, float64(sessions))
		ch <- prometheus.MustNewConstMetric(descFetchSessionParts, prometheus.GaugeValue, float64(parts))
		c.collectLogs(ch)
		c.collectCleaner(ch)
		c.collectGroups(ch)
	}
}

func (c *collector) collectEngine(ch chan<- prometheus.Metric) {
	b := c.b
	st := b.engine.Stats()
	e := b.engineName
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descConnsOpen, st.Open, e)
	counter(descConnsAccepted, st.Accepted, e)
	counter(descConnsClosed, st.Closed, e)
	counter(descConnsRefused, st.Refused, e)
	counter(descNetIn, st.BytesIn, e)
	counter(descNetOut, st.BytesZeroCopy, e, "zerocopy")
	counter(descNetOut, st.BytesCopied, e, "copied")
	if rr, ok := b.engine.(netio.RingStatsReporter); ok {
		for i, r := range rr.RingStats() {
			ring := strconv.Itoa(i)
			counter(descRingSubmit, r.Submissions, ring)
			counter(descRingComplet, r.Completions, ring)
			counter(descRingNoBufs, r.BufferExhausted, ring)
			counter(descRingSplice, r.BytesSpliced, ring)
		}
	}
}

func (c *collector) collectLogs(ch chan<- prometheus.Metric) {
	perPartition := c.b.metrics.perPartition
	var producers, poisoned int
	for _, t := range c.b.topics.all() {
		var size, segs, start, end, gaps int64
		for i, p := range t.parts {
			if p == nil {
				continue // offline (topics.go): nothing to read
			}
			producers += p.NumProducers()
			if p.Poisoned() != nil {
				poisoned++
			}
			if !perPartition {
				size, segs, start, end = size+p.Size(), segs+int64(p.NumSegments()), start+p.LogStartOffset(), end+p.LogEndOffset()
				gaps += int64(p.RecoveryGaps())
				continue
			}
			part := strconv.Itoa(i)
			ch <- prometheus.MustNewConstMetric(descLogSize, prometheus.GaugeValue, float64(p.Size()), t.name, part)
			ch <- prometheus.MustNewConstMetric(descLogSegments, prometheus.GaugeValue, float64(p.NumSegments()), t.name, part)
			ch <- prometheus.MustNewConstMetric(descLogStart, prometheus.GaugeValue, float64(p.LogStartOffset()), t.name, part)
			ch <- prometheus.MustNewConstMetric(descLogEnd, prometheus.GaugeValue, float64(p.LogEndOffset()), t.name, part)
			ch <- prometheus.MustNewConstMetric(descLogGaps, prometheus.GaugeValue, float64(p.RecoveryGaps()), t.name, part)
		}
		if !perPartition && len(t.parts) > 0 {
			ch <- prometheus.MustNewConstMetric(descLogSize, prometheus.GaugeValue, float64(size), t.name, "all")
			ch <- prometheus.MustNewConstMetric(descLogSegments, prometheus.GaugeValue, float64(segs), t.name, "all")
			ch <- prometheus.MustNewConstMetric(descLogStart, prometheus.GaugeValue, float64(start), t.name, "all")
			ch <- prometheus.MustNewConstMetric(descLogEnd, prometheus.GaugeValue, float64(end), t.name, "all")
			ch <- prometheus.MustNewConstMetric(descLogGaps, prometheus.GaugeValue, float64(gaps), t.name, "all")
		}
	}
	ch <- prometheus.MustNewConstMetric(descProducerIDs, prometheus.GaugeValue, float64(producers))
	ch <- prometheus.MustNewConstMetric(descLogPoisoned, prometheus.GaugeValue, float64(poisoned))
}

// collectGroups reports groups by state and each group's lag. Lag is
// computed here, against the high watermark of the moment, so operators need
// no exporter polling OffsetFetch and ListOffsets.
func (c *collector) collectGroups(ch chan<- prometheus.Metric) {
	type stateType struct{ state, typ string }
	counts := map[stateType]int{}
	for _, g := range c.b.groups.Stats() {
		counts[stateType{g.State, g.Type}]++
		ch <- prometheus.MustNewConstMetric(descGroupMembers, prometheus.GaugeValue, float64(g.Members), g.ID)
		for topicName, offs := range g.Offsets {
			t := c.b.topics.get(topicName)
			if t == nil {
				continue
			}
			var sum int64
			for part, committed := range offs {
				p := t.partition(part)
				if p == nil || committed < 0 {
					continue
				}
				lag := max(p.HighWatermark()-committed, 0)
				if c.b.metrics.perPartition {
					ch <- prometheus.MustNewConstMetric(descGroupLag, prometheus.GaugeValue, float64(lag), g.ID, topicName, strconv.Itoa(int(part)))
				}
				sum += lag
			}
			if !c.b.metrics.perPartition {
				ch <- prometheus.MustNewConstMetric(descGroupLag, prometheus.GaugeValue, float64(sum), g.ID, topicName, "all")
			}
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(descGroups, prometheus.GaugeValue, float64(n), k.state, k.typ)
	}
}
