package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testkit"
)

// The carried ISR counters never go down: a leadership's counts stay in
// the total after it ends, read once more at its end, and counts of live
// leaderships are added as they grow.
func TestISRCarry(t *testing.T) {
	finals := map[int]isrCounts{}
	final := func(k int) isrCounts { return finals[k] }
	var c isrCarry[int]
	steps := []struct {
		name   string
		live   map[int]isrCounts
		finals map[int]isrCounts // what an ended leadership reads at its end
		want   isrCounts
	}{
		{"nothing led", nil, nil, isrCounts{}},
		{"two leaderships", map[int]isrCounts{1: {1, 0, 0}, 2: {0, 2, 1}}, nil, isrCounts{1, 2, 1}},
		{"one grows", map[int]isrCounts{1: {3, 0, 0}, 2: {0, 2, 1}}, nil, isrCounts{3, 2, 1}},
		{"1 ends after one more shrink", map[int]isrCounts{2: {0, 2, 1}}, map[int]isrCounts{1: {4, 0, 0}}, isrCounts{4, 2, 1}},
		{"a new epoch on the same partition starts from zero", map[int]isrCounts{2: {0, 2, 1}, 3: {}}, nil, isrCounts{4, 2, 1}},
		{"2 ends and its final read is stale", map[int]isrCounts{3: {1, 1, 0}}, map[int]isrCounts{2: {}}, isrCounts{5, 3, 1}},
		{"all leadership moves away", nil, map[int]isrCounts{3: {1, 1, 0}}, isrCounts{5, 3, 1}},
		{"and stays away", nil, nil, isrCounts{5, 3, 1}},
	}
	for _, s := range steps {
		for k, v := range s.finals {
			finals[k] = v
		}
		if got := c.observe(s.live, final); got != s.want {
			t.Fatalf("%s: totals %+v, want %+v", s.name, got, s.want)
		}
	}
}

// replScrape gathers a broker's replication metrics the way Prometheus
// would, through a registry; one per broker, kept across scrapes, as the
// carried counters need.
type replScrape struct {
	tb  *testBroker
	reg *prometheus.Registry
}

func newReplScrape(tb *testBroker) *replScrape {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newReplicationCollector(tb.Broker))
	return &replScrape{tb: tb, reg: reg}
}

func (s *replScrape) gather(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := s.reg.Gather()
	if err != nil {
		t.Fatalf("broker %d: gathering: %v", s.tb.cfg.NodeID, err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// want checks series against values and says which differ, for Eventually.
func (s *replScrape) want(t *testing.T, want map[string]float64) error {
	t.Helper()
	fams := s.gather(t)
	for name, v := range want {
		got, ok := value(fams, name)
		if !ok || got != v {
			return fmt.Errorf("broker %d: %s = %v (present %v), want %v", s.tb.cfg.NodeID, name, got, ok, v)
		}
	}
	return nil
}

func sumOver(t *testing.T, ss []*replScrape, name string) float64 {
	t.Helper()
	var sum float64
	for _, s := range ss {
		v, _ := value(s.gather(t), name)
		sum += v
	}
	return sum
}

// A three-broker cluster's replication metrics: leader and partition
// counts that add up, the active controller on node 1 only, followers
// caught up with lag 0, then a follower that stops: once its session
// expires the controller counts it fenced, its partitions' leaders count
// them under-replicated, and its single-replica partition goes offline.
func TestReplicationMetricsCluster(t *testing.T) {
	// Every broker leads, so every one needs the controller's settings.
	bs := threeBrokers(t, "controlled.shutdown.enable=false", "min.insync.replicas=2", "replica.lag.time.max.ms=3000")
	for _, a := range []struct {
		topic    string
		replicas []int32
	}{{"ma", []int32{2, 3, 1}}, {"mb", []int32{3, 1, 2}}, {"mc", []int32{1, 2, 3}}, {"solo3", []int32{3}}} {
		createAssigned(t, bs[0], a.topic, a.replicas...)
	}
	ss := []*replScrape{newReplScrape(bs[0]), newReplScrape(bs[1]), newReplScrape(bs[2])}

	// Produce to ma (led by 2) so its followers have something to copy.
	testkit.Eventually(t, 10*time.Second, "broker 2 to lead ma", func() bool {
		return bs[1].topics.get("ma") != nil && bs[1].topics.get("ma").replication(0) != nil
	})
	cl := bs[1].client(t, kgo.DefaultProduceTopic("ma"), kgo.RequiredAcks(kgo.AllISRAcks()))
	const n = 50
	for i := range n {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatalf("acks=all produce %d: %v", i, err)
		}
	}

	testkit.EventuallyNil(t, 15*time.Second, func() error {
		steady := map[string]float64{
			"sluice_replica_under_replicated_partitions": 0, "sluice_replica_under_min_isr_partitions": 0,
			"sluice_replica_fetcher_max_lag": 0, "sluice_replica_fetcher_failed_partitions": 0,
			"sluice_replica_offline_replicas": 0,
		}
		wants := []map[string]float64{
			{"sluice_controller_active": 1, "sluice_replica_leaders": 1, "sluice_replica_partitions": 3, "sluice_replica_at_min_isr_partitions": 0,
				"sluice_controller_fenced_brokers": 0, "sluice_controller_active_brokers": 3, "sluice_controller_offline_partitions": 0,
				"sluice_controller_preferred_replica_imbalance": 0, "sluice_controller_partitions": 4, "sluice_controller_topics": 4},
			{"sluice_controller_active": 0, "sluice_replica_leaders": 1, "sluice_replica_partitions": 3, "sluice_replica_at_min_isr_partitions": 0},
			// solo3 has one replica: at min ISR as Kafka counts it.
			{"sluice_controller_active": 0, "sluice_replica_leaders": 2, "sluice_replica_partitions": 4, "sluice_replica_at_min_isr_partitions": 1},
		}
		for i, s := range ss {
			for k, v := range steady {
				wants[i][k] = v
			}
			if err := s.want(t, wants[i]); err != nil {
				return err
			}
		}
		// The followers of ma hold every record and lag 0.
		for _, i := range []int{0, 2} {
			if leo, _, _ := replicaState(bs[i], "ma"); leo != n {
				return fmt.Errorf("broker %d: ma's log end %d, want %d", i+1, leo, n)
			}
			if v, ok := value(ss[i].gather(t), "sluice_replica_fetcher_lag", "topic", "ma", "partition", "0"); !ok || v != 0 {
				return fmt.Errorf("broker %d: ma/0 follower lag %v (present %v), want 0", i+1, v, ok)
			}
		}
		return nil
	})
	if sum := sumOver(t, ss, "sluice_replica_leaders"); sum != 4 {
		t.Fatalf("leaders over the cluster %v, want the 4 partitions", sum)
	}
	for _, s := range ss[1:] {
		fams := s.gather(t)
		for _, name := range []string{"sluice_controller_fenced_brokers", "sluice_controller_offline_partitions"} {
			if _, ok := value(fams, name); ok {
				t.Fatalf("broker %d reports %s; only the active controller does", s.tb.cfg.NodeID, name)
			}
		}
	}
	for _, s := range ss {
		img := s.tb.metaImage()
		if got := mustValue(t, s.gather(t), "sluice_metadata_last_applied_offset"); got < float64(img.Offset()-1) || got <= 0 {
			t.Fatalf("broker %d: last applied metadata offset %v, its image is at %d", s.tb.cfg.NodeID, got, img.Offset())
		}
	}

	// Broker 3 stops without a controlled shutdown.
	if err := bs[2].Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyNil(t, 20*time.Second, func() error {
		// ma: ISR [2 1], at min.insync.replicas=2. mb fails over to 1.
		if err := ss[1].want(t, map[string]float64{"sluice_replica_under_replicated_partitions": 1,
			"sluice_replica_at_min_isr_partitions": 1, "sluice_replica_under_min_isr_partitions": 0, "sluice_replica_leaders": 1}); err != nil {
			return err
		}
		return ss[0].want(t, map[string]float64{"sluice_controller_active": 1, "sluice_controller_fenced_brokers": 1,
			"sluice_controller_active_brokers": 2, "sluice_controller_offline_partitions": 1,
			// mb led by 1, not its preferred 3; solo3 led by nobody.
			"sluice_controller_preferred_replica_imbalance": 2, "sluice_replica_leaders": 2,
			"sluice_replica_under_replicated_partitions": 2})
	})
	if sum := sumOver(t, ss[:2], "sluice_replica_leaders"); sum != 3 {
		t.Fatalf("leaders over the live brokers %v, want 3 (4 partitions, one offline)", sum)
	}
}

// A follower that stops falls out of the ISR by its leader's decision after
// replica.lag.time.max.ms (before its session expires and the controller
// fences it), and the leader counts the partition under-replicated until
// the follower is back and caught up; the ISR counters are the leader's. With metrics.partition.level=false the follower lag is one
// series per topic.
func TestReplicationMetricsISRChanges(t *testing.T) {
	bs := threeBrokers(t, "controlled.shutdown.enable=false", "broker.session.timeout.ms=10000", "metrics.partition.level=false",
		"replica.lag.time.max.ms=3000")
	createAssigned(t, bs[0], "sh", 2, 3, 1)
	leader := newReplScrape(bs[1])
	testkit.Eventually(t, 10*time.Second, "broker 2 to lead sh", func() bool {
		return bs[1].topics.get("sh") != nil && bs[1].topics.get("sh").replication(0) != nil
	})
	cl := bs[1].client(t, kgo.DefaultProduceTopic("sh"), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	follower := newReplScrape(bs[2])
	testkit.EventuallyNil(t, 10*time.Second, func() error {
		fams := follower.gather(t)
		if v, ok := value(fams, "sluice_replica_fetcher_lag", "topic", "sh", "partition", "all"); !ok || v != 0 {
			return fmt.Errorf("sh follower lag folded per topic: %v (present %v), want 0", v, ok)
		}
		if _, ok := value(fams, "sluice_replica_fetcher_lag", "partition", "0"); ok {
			t.Fatal("a per-partition follower lag series with metrics.partition.level=false")
		}
		return leader.want(t, map[string]float64{"sluice_replica_under_replicated_partitions": 0,
			"sluice_replica_isr_shrinks_total": 0, "sluice_replica_isr_expands_total": 0})
	})

	if err := bs[2].Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A follower that holds the leader's whole log is in sync however
	// long it is silent (Kafka's isCaughtUp): a record gets it behind.
	acks1 := bs[1].client(t, kgo.DefaultProduceTopic("sh"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err := acks1.ProduceSync(context.Background(), &kgo.Record{Value: []byte("w")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyNil(t, 15*time.Second, func() error {
		return leader.want(t, map[string]float64{"sluice_replica_under_replicated_partitions": 1})
	})
	if v := mustValue(t, newReplScrape(bs[0]).gather(t), "sluice_controller_fenced_brokers"); v != 0 {
		t.Fatalf("fenced brokers %v: the shrink should be the leader's, within the 10 s session", v)
	}
	// The counters are the leader's own counts (isr.Stats: AlterPartition
	// answers that committed). They are not asserted to be 1: isr.Leader
	// counts a change only when the controller's answer arrives before the
	// metadata that carries it, and a linked broker's metadata fetch may
	// win that race.
	rp := bs[1].topics.get("sh").replication(0)
	checkCounts := func() (shrinks, expands float64) {
		t.Helper()
		fams := leader.gather(t)
		shrinks, expands = mustValue(t, fams, "sluice_replica_isr_shrinks_total"), mustValue(t, fams, "sluice_replica_isr_expands_total")
		st := rp.Stats()
		if shrinks != float64(st.ISRShrinks) || expands != float64(st.ISRExpands) || mustValue(t, fams, "sluice_replica_isr_update_failures_total") != float64(st.FailedAlters) {
			t.Fatalf("counters %v shrinks, %v expands; the only leadership counted %+v", shrinks, expands, st)
		}
		return shrinks, expands
	}
	shrinks, _ := checkCounts()

	// Broker 3 comes back with an empty disk once its session expired (a
	// new incarnation may not register before), copies the log and
	// rejoins.
	waitFenced(t, bs[0], 3)
	startLinkedBroker(t, 3, bs[0].addr, "broker.heartbeat.interval.ms=200", "replica.fetch.wait.max.ms=200", "replica.fetch.backoff.ms=100")
	testkit.EventuallyNil(t, 20*time.Second, func() error {
		return leader.want(t, map[string]float64{"sluice_replica_under_replicated_partitions": 0})
	})
	if s2, _ := checkCounts(); s2 < shrinks {
		t.Fatalf("shrinks went from %v down to %v", shrinks, s2)
	}
}

// waitFenced waits until the controller has fenced broker id.
func waitFenced(t *testing.T, ctl *testBroker, id int32) {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, fmt.Sprintf("broker %d to be fenced", id), func() bool {
		br, ok := ctl.metaImage().Broker(id)
		return ok && br.Fenced
	})
}
