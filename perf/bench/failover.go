package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The failover workloads of issue 16. A producer sends 1 KiB records with
// acks=all to a one-partition topic on brokers 2, 3 and 1 (preferred
// leader 2; node 1 holds the one controller, so it is never the victim),
// one record at a time, without pause. Each event signals the partition's
// leader and times the producer:
//
//   - kill -9: from the kill until the first record sent after it is
//     acknowledged. The controller notices only when the dead broker's
//     session expires, so the target is broker.session.timeout.ms + 1 s.
//   - SIGTERM: the longest any record waited for its acknowledgement, from
//     the signal until a second after the broker exited. A controlled
//     shutdown moves leadership away before the broker stops, so the
//     producer should barely notice: the target is 100 ms.
//
// After each event the node is started again and the next event waits for
// a full ISR, so every event starts from three replicas in sync.

// Events per failover run: the issue asks for at least 20 kills.
const (
	failoverKills       = 20
	failoverShutdowns   = 10
	failoverQuickEvents = 3
	// sigtermTargetMS is the bound on produce unavailability
	// through a controlled shutdown.
	sigtermTargetMS = 100
)

// produceSample is one acknowledged (or failed) record of the producer.
type produceSample struct {
	start, end time.Time
	err        error
}

// prober sends one record at a time until stopped.
type prober struct {
	cl   *kgo.Client
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	samples []produceSample
}

func startProber(cl *kgo.Client, value []byte) *prober {
	pr := &prober{cl: cl, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(pr.done)
		for {
			select {
			case <-pr.stop:
				return
			default:
			}
			start := time.Now()
			err := cl.ProduceSync(context.Background(), &kgo.Record{Partition: 0, Value: value}).FirstErr()
			pr.mu.Lock()
			pr.samples = append(pr.samples, produceSample{start: start, end: time.Now(), err: err})
			pr.mu.Unlock()
		}
	}()
	return pr
}

func (pr *prober) close() {
	close(pr.stop)
	<-pr.done
}

// since returns the samples that ended after t.
func (pr *prober) since(t time.Time) []produceSample {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	i, _ := slices.BinarySearchFunc(pr.samples, t, func(s produceSample, t time.Time) int { return s.end.Compare(t) })
	return slices.Clone(pr.samples[i:])
}

// firstAckAfter is how long after t the first record sent at or after t
// was acknowledged; false if none was yet.
func firstAckAfter(samples []produceSample, t time.Time) (time.Duration, bool) {
	for _, s := range samples {
		if !s.start.Before(t) && s.err == nil {
			return s.end.Sub(t), true
		}
	}
	return 0, false
}

// longestWait is the longest a record ending after t and sent before until
// waited for its acknowledgement.
func longestWait(samples []produceSample, t, until time.Time) time.Duration {
	var worst time.Duration
	for _, s := range samples {
		if s.end.After(t) && s.start.Before(until) {
			worst = max(worst, s.end.Sub(s.start))
		}
	}
	return worst
}

// failoverEvent is one kill or shutdown, for the report.
type failoverEvent struct {
	Victim     int32   `json:"victim"`
	NewLeader  int32   `json:"new_leader"`
	MS         float64 `json:"ms"`
	ExitMS     float64 `json:"exit_ms"`               // signal to process exit
	Refused    int     `json:"refused,omitempty"`     // restarts refused with DUPLICATE_BROKER_REGISTRATION
	ProduceErr int     `json:"produce_err,omitempty"` // records the producer saw fail
}

// runFailover runs every event of a failover workload in one run.
func (r *runner) runFailover(ctx context.Context, w workload, p *peer, rec runRecord) runRecord {
	c := p.cluster
	if c == nil {
		rec.Err = "peer " + p.spec.Name + " is not a cluster"
		return rec
	}
	sig, events := syscall.SIGKILL, failoverKills
	if w.Name == clusterSigterm {
		sig, events = syscall.SIGTERM, failoverShutdowns
	}
	if r.opts.Quick {
		events = failoverQuickEvents
	}
	r.seq++
	topic := fmt.Sprintf("%s-%d", w.Name, r.seq)
	rec.Argv = []string{"(in-process)", "kgo producer, acks=all, one record at a time, to " + topic + " on brokers 2,3,1; " + sig.String() + " of its leader"}
	res, err := r.failovers(ctx, c, topic, sig, events, w.RecordSize)
	rec.Wall = time.Since(rec.Start).Seconds()
	rec.Result = res
	if err != nil {
		rec.Err = err.Error()
	}
	if err := deleteTopicAt(ctx, c.seeds(), topic); err != nil {
		rec.Notes = append(rec.Notes, "delete "+topic+": "+err.Error())
	}
	return rec
}

func (r *runner) failovers(ctx context.Context, c *clusterPeer, topic string, sig syscall.Signal, events, size int) (*clientResult, error) {
	if err := createTopicRF(ctx, c.seeds(), topic, 1, 3, []int32{2, 3, 1}); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DialTimeout(time.Second), kgo.MetadataMinAge(20*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }),
		kgo.RecordDeliveryTimeout(60*time.Second))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if _, err := waitISR(ctx, c.seeds(), topic, 3, 30*time.Second); err != nil {
		return nil, err
	}
	pr := startProber(cl, make([]byte, size))
	defer pr.close()

	res := &clientResult{Tool: "bench failover", Mode: modeFailover, Brokers: c.seeds(), Topic: topic,
		Config: map[string]any{"signal": sig.String(), "broker.session.timeout.ms": clusterSessionMS}}
	var evs []failoverEvent
	var times []float64
	started := time.Now()
	defer func() {
		res.Seconds = time.Since(started).Seconds()
		res.Records = int64(len(times))
		res.Latency = summarizeMS(times)
		res.CDF = cdfMS(times)
		res.Config["events"] = evs
	}()
	for i := 1; i <= events; i++ {
		ev, err := r.failoverOnce(ctx, c, pr, topic, sig)
		if ev.ProduceErr > 0 {
			res.Errors += int64(ev.ProduceErr)
			if res.FirstError == "" {
				res.FirstError = fmt.Sprintf("event %d: %d records failed", i, ev.ProduceErr)
			}
		}
		if err != nil {
			return res, fmt.Errorf("event %d of %d: %w", i, events, err)
		}
		evs, times = append(evs, ev), append(times, ev.MS)
		r.logf("%s event %d/%d: node %d → leader %d in %.0f ms (exit %.0f ms, %d restarts refused)",
			topic, i, events, ev.Victim, ev.NewLeader, ev.MS, ev.ExitMS, ev.Refused)
	}
	return res, nil
}

// failoverOnce signals the partition's leader, measures, and starts the
// node again.
func (r *runner) failoverOnce(ctx context.Context, c *clusterPeer, pr *prober, topic string, sig syscall.Signal) (failoverEvent, error) {
	var ev failoverEvent
	leader, err := steadyLeader(ctx, c, topic)
	if err != nil {
		return ev, err
	}
	ev.Victim = leader
	victim := c.nodes[leader-1]
	at := time.Now()
	if err := syscall.Kill(victim.pid(), sig); err != nil {
		return ev, fmt.Errorf("%s node %d (pid %d): %w", sig, leader, victim.pid(), err)
	}
	select {
	case <-victim.exited:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(victim.pid(), syscall.SIGKILL)
		<-victim.exited
		return ev, fmt.Errorf("node %d did not exit within 30s of %s; log: %s", leader, sig, logTail(victim.logPath, 3))
	}
	exited := time.Now()
	ev.ExitMS = ms(exited.Sub(at))
	// Measure once a record sent after the signal was acknowledged and,
	// for a shutdown, a second after the exit.
	until := exited.Add(time.Second)
	deadline := at.Add(60 * time.Second)
	for {
		samples := pr.since(at)
		first, ok := firstAckAfter(samples, at)
		if ok && (sig == syscall.SIGKILL || time.Now().After(until)) {
			ev.MS = ms(first)
			if sig == syscall.SIGTERM {
				ev.MS = ms(longestWait(samples, at, until))
			}
			for _, s := range samples {
				if s.err != nil {
					ev.ProduceErr++
				}
			}
			break
		}
		if time.Now().After(deadline) {
			return ev, fmt.Errorf("no record acknowledged within 60s of %s of node %d (%d failed since)", sig, leader, len(samples))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if parts, err := topicPartitionsAt(ctx, c.seeds(), topic); err == nil && len(parts) == 1 {
		for _, pd := range parts {
			ev.NewLeader = pd.Leader
		}
	}
	ev.Refused, err = c.restart(ctx, int(leader))
	if err != nil {
		return ev, fmt.Errorf("restart node %d: %w", leader, err)
	}
	return ev, nil
}

// steadyLeader waits for a full ISR and returns the leader, moving
// leadership back to the preferred replica (node 2) should node 1, the
// controller, have it.
func steadyLeader(ctx context.Context, c *clusterPeer, topic string) (int32, error) {
	for try := 0; ; try++ {
		parts, err := waitISR(ctx, c.seeds(), topic, 3, 60*time.Second)
		if err != nil {
			return 0, err
		}
		var leader int32
		for _, pd := range parts {
			leader = pd.Leader
		}
		if leader != 1 {
			return leader, nil
		}
		if try == 1 {
			return 0, errors.New("node 1 (the controller) still leads after a preferred election")
		}
		err = withAdmin(ctx, c.seeds(), 10*time.Second, func(ctx context.Context, _ *kgo.Client, adm *kadm.Client) error {
			_, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{topic: {0: {}}})
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("node 1 (the controller) leads and a preferred election failed: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func topicPartitionsAt(ctx context.Context, seeds []string, topic string) (parts kadm.PartitionDetails, err error) {
	err = withAdmin(ctx, seeds, 0, func(ctx context.Context, _ *kgo.Client, adm *kadm.Client) error {
		parts, err = topicPartitions(ctx, adm, topic)
		return err
	})
	return parts, err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarizeMS gives nearest-rank percentiles: with 20 events the p99 is
// the worst of them.
func summarizeMS(xs []float64) latencySummary {
	if len(xs) == 0 {
		return latencySummary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	return latencySummary{Count: int64(len(s)), Mean: sum / float64(len(s)),
		P50: rank(s, 0.5), P99: rank(s, 0.99), P999: rank(s, 0.999), Max: s[len(s)-1]}
}

func rank(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// cdfMS is [percentile, ms] for every event, as the load client's CDFs.
func cdfMS(xs []float64) [][2]float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	out := make([][2]float64, len(s))
	for i, x := range s {
		out[i] = [2]float64{100 * float64(i+1) / float64(len(s)), x}
	}
	return out
}

// failoverTarget is the target for a failover workload.
func failoverTarget(w workload, find func(w, label string) (summary, bool)) target {
	t := target{Workload: w.Name, Short: "p99"}
	limit := float64(sigtermTargetMS)
	t.What = fmt.Sprintf("produce unavailable ≤ %d ms through a controlled shutdown (p99)", sigtermTargetMS)
	if w.Name == clusterKill9 {
		limit = clusterSessionMS + 1000
		t.What = fmt.Sprintf("failover after kill -9 ≤ broker.session.timeout.ms + 1 s = %.0f ms (p99)", limit)
	}
	if s, ok := find(w.Name, w.Lanes[0].Label); ok && !math.IsNaN(s.P99) {
		t.Got = fmt.Sprintf("%.0f ms (p50 %.0f ms)", s.P99, s.P50)
		t.Pass = s.P99 <= limit
	}
	return t
}

// writeCluster is the report's section on the cluster workloads.
func (r *report) writeCluster(w func(string, ...any)) {
	var names []string
	for _, wl := range r.Workloads {
		if strings.HasPrefix(wl.Name, "cluster-") {
			names = append(names, wl.Name)
		}
	}
	if len(names) == 0 {
		return
	}
	w("\n## Cluster (issue 16)\n\n")
	w("Three `bin/sluice broker` processes on this machine (node 1 broker and controller, nodes 2 and 3 brokers), `%s`. ",
		strings.Join(clusterSets, "`, `"))
	w("`%s` produces 1 KiB records with acks=all to three partitions of three replicas, and of one replica, on the same brokers; ", clusterProduce)
	w("its CPU and RSS are the three processes' sums. ")
	w("The failover workloads produce one record at a time with acks=all to one partition on brokers 2, 3, 1 and signal its leader ")
	w("(never node 1, the only controller): after `kill -9`, the time until the first record sent after the kill is acknowledged; ")
	w("after SIGTERM (controlled shutdown), the longest any record waited for its acknowledgement from the signal until a second ")
	w("after the broker exited. The node is then started again and the next event waits for a full ISR.\n")
	for _, run := range r.Runs {
		if run.Result == nil || run.Result.Mode != modeFailover {
			continue
		}
		evs, _ := run.Result.Config["events"].([]any)
		w("\n**%s** (%d events): p50 %s ms, p99 %s ms, max %s ms.", run.Workload, run.Result.Records,
			fmtNum(run.Result.Latency.P50, 0), fmtNum(run.Result.Latency.P99, 0), fmtNum(run.Result.Latency.Max, 0))
		if len(evs) == 0 {
			evs = eventsOf(run.Result.Config["events"])
		}
		if len(evs) > 0 {
			w("\n\n| # | victim | new leader | ms | exit ms | restarts refused |\n|--:|--:|--:|--:|--:|--:|\n")
			for i, e := range evs {
				m, _ := e.(map[string]any)
				w("| %d | %v | %v | %s | %s | %v |\n", i+1, m["victim"], m["new_leader"], fmtNum(toFloat(m["ms"]), 0),
					fmtNum(toFloat(m["exit_ms"]), 0), orZero(m["refused"]))
			}
		}
		w("\n")
	}
}

// eventsOf turns the events of a fresh run (Go values) into the shape a
// re-rendered one decodes to.
func eventsOf(v any) []any {
	evs, ok := v.([]failoverEvent)
	if !ok {
		return nil
	}
	out := make([]any, len(evs))
	for i, e := range evs {
		out[i] = map[string]any{"victim": e.Victim, "new_leader": e.NewLeader, "ms": e.MS, "exit_ms": e.ExitMS, "refused": e.Refused}
	}
	return out
}

func orZero(v any) any {
	if v == nil {
		return 0
	}
	return v
}
