package broker

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/replicamgr"
)

// replicationCollector reads replication at scrape time: this broker's
// replicas and the ISR of the partitions it leads (replicamgr), its
// followers' lag (the fetcher), and, on the node holding the controller
// store, the cluster as the controller's image has it. Each HELP names the
// Kafka metric it stands for, so an operator's Kafka dashboards and
// runbooks carry over.
//
// Unlike collector it keeps state between scrapes: the ISR change counts
// of leaderships that ended, so the counters never go down when
// leadership moves away (isrCarry).
type replicationCollector struct {
	b *Broker

	mu  sync.Mutex // serializes scrapes over carry
	isr isrCarry[*replicamgr.Replication]
}

// newReplicationCollector returns the collector to register on the
// broker's metrics registry, once per broker.
func newReplicationCollector(b *Broker) *replicationCollector {
	return &replicationCollector{b: b}
}

var (
	descReplicaPartitions = desc("sluice_replica_partitions",
		"Partitions with a replica on this broker, led or followed, offline ones included (Kafka's kafka.server:type=ReplicaManager,name=PartitionCount).")
	descReplicaLeaders = desc("sluice_replica_leaders",
		"Partitions this broker leads with its log online (Kafka's kafka.server:type=ReplicaManager,name=LeaderCount).")
	descReplicaOffline = desc("sluice_replica_offline_replicas",
		"Replicas on this broker that are not served because their files could not be read (Kafka's kafka.server:type=ReplicaManager,name=OfflineReplicaCount).")
	descUnderReplicated = desc("sluice_replica_under_replicated_partitions",
		"Partitions this broker leads whose committed ISR is smaller than their replicas (Kafka's kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions).")
	descUnderMinISR = desc("sluice_replica_under_min_isr_partitions",
		"Partitions this broker leads whose ISR is below the effective min.insync.replicas: acks=all produces fail with NOT_ENOUGH_REPLICAS and the high watermark stops (Kafka's kafka.server:type=ReplicaManager,name=UnderMinIsrPartitionCount).")
	descAtMinISR = desc("sluice_replica_at_min_isr_partitions",
		"Partitions this broker leads whose ISR is exactly the effective min.insync.replicas: one more replica lost stops acks=all. A single-replica partition counts, as in Kafka (kafka.server:type=ReplicaManager,name=AtMinIsrPartitionCount).")
	descISRShrinks = desc("sluice_replica_isr_shrinks_total",
		"ISR shrinks this broker proposed as leader and the controller committed (Kafka's kafka.server:type=ReplicaManager,name=IsrShrinksPerSec).")
	descISRExpands = desc("sluice_replica_isr_expands_total",
		"ISR expansions this broker proposed as leader and the controller committed (Kafka's kafka.server:type=ReplicaManager,name=IsrExpandsPerSec).")
	descISRFailed = desc("sluice_replica_isr_update_failures_total",
		"AlterPartition proposals of this broker that the controller did not commit: stale epochs, ineligible replicas, an unreachable controller (Kafka's kafka.server:type=ReplicaManager,name=FailedIsrUpdatesPerSec).")

	descFetcherMaxLag = desc("sluice_replica_fetcher_max_lag",
		"Largest lag in records, over the partitions this broker follows, between the leader's high watermark and the local log end (Kafka's kafka.server:type=ReplicaFetcherManager,name=MaxLag,clientId=Replica).")
	descFetcherLag = desc("sluice_replica_fetcher_lag",
		"Records between the leader's high watermark, as of its last fetch answer, and this follower's log end (Kafka's kafka.server:type=FetcherLagMetrics,name=ConsumerLag).", "topic", "partition")
	descFetcherFailed = desc("sluice_replica_fetcher_failed_partitions",
		"Followed partitions no longer fetched because the local replica failed (poisoned log, storage error) (Kafka's kafka.server:type=ReplicaFetcherManager,name=FailedPartitionsCount).")
	descFetcherFenced = desc("sluice_replica_fetcher_fenced_partitions",
		"Followed partitions whose leader answered FENCED_LEADER_EPOCH: fetching waits until the metadata brings a newer leader epoch.")

	descMetadataApplied = desc("sluice_metadata_last_applied_offset",
		"Offset of the last cluster metadata record this node has applied; -1 before any (Kafka's kafka.server:type=broker-metadata-metrics,name=last-applied-record-offset).")

	descControllerActive = desc("sluice_controller_active",
		"1 on the node that holds the controller's metadata store and decides the cluster's metadata, 0 elsewhere (Kafka's kafka.controller:type=KafkaController,name=ActiveControllerCount).")
	descFencedBrokers = desc("sluice_controller_fenced_brokers",
		"Registered brokers the controller has fenced: missed heartbeats for broker.session.timeout.ms, or not yet caught up after registering (Kafka's kafka.controller:type=KafkaController,name=FencedBrokerCount). Only the active controller reports it.")
	descActiveBrokers = desc("sluice_controller_active_brokers",
		"Registered brokers that are not fenced (Kafka's kafka.controller:type=KafkaController,name=ActiveBrokerCount). Only the active controller reports it.")
	descOfflinePartitions = desc("sluice_controller_offline_partitions",
		"Partitions with no leader: no replica of their ISR is alive, so they take no produce and no fetch (Kafka's kafka.controller:type=KafkaController,name=OfflinePartitionsCount). Only the active controller reports it.")
	descImbalance = desc("sluice_controller_preferred_replica_imbalance",
		"Partitions not led by their preferred (first) replica, offline ones included (Kafka's kafka.controller:type=KafkaController,name=PreferredReplicaImbalanceCount). Only the active controller reports it.")
	descGlobalPartitions = desc("sluice_controller_partitions",
		"Partitions in the cluster (Kafka's kafka.controller:type=KafkaController,name=GlobalPartitionCount). Only the active controller reports it.")
	descGlobalTopics = desc("sluice_controller_topics",
		"Topics in the cluster (Kafka's kafka.controller:type=KafkaController,name=GlobalTopicCount). Only the active controller reports it.")
)

// Describe sends nothing: an unchecked collector, like collector.
func (c *replicationCollector) Describe(chan<- *prometheus.Desc) {}

func (c *replicationCollector) Collect(ch chan<- prometheus.Metric) {
	b := c.b
	if !b.loaded.Load() {
		return // b.meta, b.replicas and b.fetcher are set by then
	}
	img := b.metaImage()
	constGauge(ch, descMetadataApplied, img.Offset()-1)
	_, isController := b.ctrlStore()
	constGauge(ch, descControllerActive, b2i(isController))
	b.collectQuorum(ch)
	if isController {
		collectControllerImage(ch, img)
	}
	c.collectReplicas(ch, img)
	c.collectFetcher(ch)
}

func constGauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v int64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
}

func b2i(ok bool) int64 {
	if ok {
		return 1
	}
	return 0
}

// collectControllerImage reports the cluster as the controller's image has
// it. Only the active controller reports, as Kafka's controller metrics are
// nonzero only there, so a sum over the cluster counts each fact once.
func collectControllerImage(ch chan<- prometheus.Metric, img *controller.Image) {
	var fenced, active int64
	for _, br := range img.Brokers() {
		if br.Fenced {
			fenced++
		} else {
			active++
		}
	}
	var offline, imbalance, parts int64
	names := img.TopicNames()
	for _, name := range names {
		t, ok := img.Topic(name)
		if !ok {
			continue
		}
		for _, p := range t.Partitions {
			parts++
			offline += b2i(p.Leader == controller.NoLeader)
			imbalance += b2i(len(p.Replicas) > 0 && p.Leader != p.Replicas[0])
		}
	}
	constGauge(ch, descFencedBrokers, fenced)
	constGauge(ch, descActiveBrokers, active)
	constGauge(ch, descOfflinePartitions, offline)
	constGauge(ch, descImbalance, imbalance)
	constGauge(ch, descGlobalPartitions, parts)
	constGauge(ch, descGlobalTopics, int64(len(names)))
}

// collectReplicas reports this broker's replicas and, for the partitions it
// leads, their ISR health and ISR change counts.
func (c *replicationCollector) collectReplicas(ch chan<- prometheus.Metric, img *controller.Image) {
	var parts, leaders, offline, under, underMin, atMin int64
	live := map[*replicamgr.Replication]isrCounts{}
	for _, t := range c.b.replicas.Topics() {
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if p.Role == replicamgr.NotHosted {
				continue
			}
			parts++
			offline += b2i(p.Offline != nil)
			if p.Role != replicamgr.Leader || p.Replica == nil {
				continue
			}
			leaders++
			if p.Repl == nil {
				// A single replica (no isr machinery): its ISR is
				// itself and the effective min ISR is 1, so it is at
				// min ISR as Kafka counts it.
				if mp, ok := img.Partition(t.Name, p.Index); ok && len(mp.Replicas) == 1 {
					atMin++
				}
				continue
			}
			s := p.Repl.Stats()
			under += b2i(s.UnderReplicated)
			underMin += b2i(s.UnderMinISR)
			atMin += b2i(s.AtMinISR)
			live[p.Repl] = isrCounts{Shrinks: s.ISRShrinks, Expands: s.ISRExpands, Failed: s.FailedAlters}
		}
	}
	c.mu.Lock()
	total := c.isr.observe(live, func(rp *replicamgr.Replication) isrCounts {
		s := rp.Stats() // a closed Replication still answers with its last counts
		return isrCounts{Shrinks: s.ISRShrinks, Expands: s.ISRExpands, Failed: s.FailedAlters}
	})
	c.mu.Unlock()
	constGauge(ch, descReplicaPartitions, parts)
	constGauge(ch, descReplicaLeaders, leaders)
	constGauge(ch, descReplicaOffline, offline)
	constGauge(ch, descUnderReplicated, under)
	constGauge(ch, descUnderMinISR, underMin)
	constGauge(ch, descAtMinISR, atMin)
	ch <- prometheus.MustNewConstMetric(descISRShrinks, prometheus.CounterValue, float64(total.Shrinks))
	ch <- prometheus.MustNewConstMetric(descISRExpands, prometheus.CounterValue, float64(total.Expands))
	ch <- prometheus.MustNewConstMetric(descISRFailed, prometheus.CounterValue, float64(total.Failed))
}

// collectFetcher reports the followers' lag. With
// metrics.partition.level=false the per-partition lag is summed per topic
// (partition="all"), as the log and consumer-lag series are.
func (c *replicationCollector) collectFetcher(ch chan<- prometheus.Metric) {
	perPartition := c.b.metrics.perPartition
	var maxLag, failed, fenced int64
	perTopic := map[string]int64{}
	for _, s := range c.b.fetcher.Stats() {
		if s.Err != nil {
			failed++ // not fetched any more: its lag would only grow
			continue
		}
		fenced += b2i(s.Fenced)
		maxLag = max(maxLag, s.Lag)
		if perPartition {
			constGauge(ch, descFetcherLag, s.Lag, s.Partition.Topic, strconv.Itoa(int(s.Partition.Index)))
		} else {
			perTopic[s.Partition.Topic] += s.Lag
		}
	}
	for topic, lag := range perTopic {
		constGauge(ch, descFetcherLag, lag, topic, "all")
	}
	constGauge(ch, descFetcherMaxLag, maxLag)
	constGauge(ch, descFetcherFailed, failed)
	constGauge(ch, descFetcherFenced, fenced)
}

// isrCounts are the ISR change counts of one leadership (isr.Stats).
type isrCounts struct{ Shrinks, Expands, Failed uint64 }

func (a isrCounts) add(b isrCounts) isrCounts {
	return isrCounts{a.Shrinks + b.Shrinks, a.Expands + b.Expands, a.Failed + b.Failed}
}

// isrCarry turns per-leadership counts into broker counters that never go
// down. Each leadership (a Replication, which lives for one leader epoch)
// counts from zero, and leaves the sum when leadership moves away or a new
// epoch starts; isrCarry keeps the final counts of those that ended.
//
// A leadership that starts and ends between two scrapes is never seen, so
// its changes are not counted; everything seen at one scrape is counted in
// full, up to its end. The counters start from zero with the process, as
// every counter does.
type isrCarry[K comparable] struct {
	ended isrCounts       // final counts of leaderships that ended
	last  map[K]isrCounts // live leaderships at the previous scrape
}

// observe takes the live leaderships' counts and returns the totals:
// ended ones plus live ones. A leadership seen last time and not now has
// ended; final reads its last counts (it may have changed since the last
// scrape).
func (c *isrCarry[K]) observe(live map[K]isrCounts, final func(K) isrCounts) isrCounts {
	for k, prev := range c.last {
		if _, ok := live[k]; ok {
			continue
		}
		f := final(k)
		// Counts of one leadership only grow; never let a bad read
		// take the total down.
		f = isrCounts{max(f.Shrinks, prev.Shrinks), max(f.Expands, prev.Expands), max(f.Failed, prev.Failed)}
		c.ended = c.ended.add(f)
	}
	c.last = live
	total := c.ended
	for _, n := range live {
		total = total.add(n)
	}
	return total
}
