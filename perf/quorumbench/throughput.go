package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Metadata throughput: how fast the active controller commits partition
// records, with concurrent clients creating topics of many partitions; and
// the latency of one CreateTopics at a time, what an idle user feels.

// latencyResult is the one-request-in-flight CreateTopics latency.
type latencyResult struct {
	Calls  int
	Errors int
	Dist   dist
}

// measureLatency creates calls topics of one partition of rf replicas, one
// after the other, through broker 4, after warm unmeasured ones.
func measureLatency(ctx context.Context, c *cluster, calls, warm int, rf int32) (latencyResult, error) {
	var res latencyResult
	var ds []time.Duration
	for i := range warm + calls {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		t0 := time.Now()
		n, err := createTopics(ctx, c.client(0), []string{fmt.Sprintf("lat-%05d", i)}, 1, rf, 10*time.Second)
		d := time.Since(t0)
		if i < warm {
			continue
		}
		res.Calls++
		if err != nil || n != 1 {
			res.Errors++
			continue
		}
		ds = append(ds, d)
	}
	res.Dist = summarize(ds)
	if res.Errors > res.Calls/10 {
		return res, fmt.Errorf("%d of %d CreateTopics calls failed", res.Errors, res.Calls)
	}
	return res, nil
}

// throughputOpts are the knobs of the throughput measurement.
type throughputOpts struct {
	clients    int
	partitions int32 // per topic
	rf         int32
	window     time.Duration
	budget     int // stop creating once this many partitions were created
}

// throughputResult is one throughput window.
type throughputResult struct {
	Clients        int
	PartsPerTopic  int32
	RF             int32
	Wall           time.Duration // first call to the last answer
	Calls, Errors  int64
	Partitions     int64
	Records        int64 // high watermark delta
	IdleRecordsSec float64
	BudgetHit      bool
	BrokersCaught  time.Duration // last answer → every broker's metadata offset at the final HW
	Fencings       int           // brokers fenced for an expired session, window start → caught up
	Failures       string        // what the failed calls got, "kind×count"
	WarmFailures   string        // what the calls before the window got before one succeeded
}

func (r throughputResult) callsPerSec() float64 { return float64(r.Calls) / r.Wall.Seconds() }
func (r throughputResult) partsPerSec() float64 { return float64(r.Partitions) / r.Wall.Seconds() }
func (r throughputResult) recsPerSec() float64  { return float64(r.Records) / r.Wall.Seconds() }

// measureThroughput runs o.clients workers, each with its own connection
// to one of the brokers in turn, creating topics of o.partitions
// partitions back to back for o.window; it counts committed records as the
// metadata log's high watermark delta over the same span.
func measureThroughput(ctx context.Context, c *cluster, o throughputOpts, logf func(string, ...any)) (throughputResult, error) {
	res := throughputResult{Clients: o.clients, PartsPerTopic: o.partitions, RF: o.rf}
	// What the log gains with nobody creating anything (heartbeats change
	// nothing; a non-zero rate here is background the delta includes).
	idle0, err := describeQuorum(ctx, c.client(0), 2*time.Second)
	if err != nil {
		return res, err
	}
	ti := time.Now()
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return res, err
	}
	idle1, err := describeQuorum(ctx, c.client(0), 2*time.Second)
	if err != nil {
		return res, err
	}
	res.IdleRecordsSec = float64(idle1.hw-idle0.hw) / time.Since(ti).Seconds()

	// Each worker's connection is opened and used once before the window:
	// what a forward right after the failovers gets (a broker's link to a
	// restarted controller may hold a dead connection, answered as
	// REQUEST_TIMED_OUT, which clients retry) is not throughput.
	type worker struct {
		cl *kgo.Client
		b  *kgo.Broker
	}
	var workers []worker
	defer func() {
		for _, w := range workers {
			w.cl.Close()
		}
	}()
	warmFailures := map[string]int{}
	for w := range o.clients {
		cl, b, err := newClient(c.brokers[w%len(c.brokers)].addr)
		if err != nil {
			return res, err
		}
		workers = append(workers, worker{cl, b})
		for try := 0; ; try++ {
			_, err := createTopics(ctx, b, []string{fmt.Sprintf("tp-warm-%d", w)}, 1, o.rf, 10*time.Second)
			if err == nil {
				break
			}
			warmFailures[errKind(err)]++
			if try == 20 {
				return res, fmt.Errorf("warming worker %d's connection: %w", w, err)
			}
			if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
				return res, err
			}
		}
	}
	res.WarmFailures = formatFailures(warmFailures)

	var calls, errs, parts atomic.Int64
	var budgetHit atomic.Bool
	var mu sync.Mutex
	failures := map[string]int{}
	q0, err := describeQuorum(ctx, c.client(0), 2*time.Second)
	if err != nil {
		return res, err
	}
	start := time.Now()
	deadline := start.Add(o.window)
	var wg sync.WaitGroup
	for w, wk := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A failed call is retried with the same name (a retry
			// finding it created counts it): what a client does.
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; {
				if int(parts.Load()) >= o.budget {
					budgetHit.Store(true)
					return
				}
				n, err := createTopics(ctx, wk.b, []string{fmt.Sprintf("tp-%d-%06d", w, i)}, o.partitions, o.rf, 10*time.Second)
				calls.Add(1)
				if err != nil || n != 1 {
					errs.Add(1)
					mu.Lock()
					failures[errKind(err)]++
					mu.Unlock()
					_ = sleepCtx(ctx, 20*time.Millisecond)
					continue
				}
				parts.Add(int64(o.partitions))
				i++
			}
		}()
	}
	wg.Wait()
	res.Wall = time.Since(start)
	q1, err := describeQuorum(ctx, c.client(0), 5*time.Second)
	if err != nil {
		return res, err
	}
	res.Calls, res.Errors, res.Partitions = calls.Load(), errs.Load(), parts.Load()
	res.Records = q1.hw - q0.hw
	res.BudgetHit = budgetHit.Load()
	res.Failures = formatFailures(failures)
	if res.Errors > 0 || res.WarmFailures != "-" {
		logf("throughput: %d of %d CreateTopics failed (%s); before the window: %s", res.Errors, res.Calls, res.Failures, res.WarmFailures)
	}
	// How long the brokers take to apply all of it.
	end := time.Now()
	for {
		q, err := describeQuorum(ctx, c.client(0), 5*time.Second)
		if err == nil && observersAt(q, c, q1.hw) {
			res.BrokersCaught = time.Since(end)
			res.Fencings = c.fencings(start, -1)
			break
		}
		if time.Since(end) > 2*time.Minute {
			return res, fmt.Errorf("brokers did not reach the metadata offset %d within 2m after the throughput window (last %+v, %v)", q1.hw, q, err)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return res, err
		}
	}
	if res.Errors > res.Calls/2 {
		return res, fmt.Errorf("%d of %d CreateTopics calls failed: %s", res.Errors, res.Calls, res.Failures)
	}
	return res, nil
}

// observersAt reports whether every broker's metadata offset, as its last
// heartbeat reported it, is at least hw.
func observersAt(q quorumState, c *cluster, hw int64) bool {
	for _, b := range c.brokers {
		if s, ok := q.observers[b.id]; !ok || s.leo < hw {
			return false
		}
	}
	return true
}
