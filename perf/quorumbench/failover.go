package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Controller failover: kill -9 the active controller, time how long until
// a broker's DescribeQuorum names another, and until a CreateTopics
// retried every 20 ms succeeds; then restart the killed voter and wait
// until it has caught up before the next kill.

// killResult is one kill.
type killResult struct {
	Index      int
	Killed     int32 // the active controller killed
	Epoch      int32 // its epoch
	NewLeader  int32
	NewEpoch   int32
	Leader     time.Duration // kill → the first broker's DescribeQuorum names NewLeader
	AllLeader  time.Duration // kill → every broker's does
	Create     time.Duration // kill → the first CreateTopics that succeeded
	Attempts   int           // CreateTopics attempts, the successful one included
	Failures   string        // what the failed attempts got, "kind×count"
	Rejoin     time.Duration // restart → the voter's log end reaches the HW
	ListenedIn time.Duration // restart → "controller listening"
	Fencings   int           // brokers fenced for an expired session, kill → caught up
	Slowest    string        // the broker that named the new leader last, and what it answered before
}

// failoverOpts are the knobs of the failover measurement.
type failoverOpts struct {
	kills        int
	retryEvery   time.Duration // between CreateTopics attempts
	reqTimeout   time.Duration // each attempt's and each DescribeQuorum's
	giveUp       time.Duration // a failover not done by then is a failure
	settle       time.Duration // after the restarted voter caught up
	replicas     int32
	pollInterval time.Duration
}

// measureFailovers kills the active controller o.kills times. It stops at
// the first failover that does not complete, returning what it measured
// and the error.
func measureFailovers(ctx context.Context, c *cluster, o failoverOpts, logf func(string, ...any)) ([]killResult, error) {
	var out []killResult
	for k := range o.kills {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		r, err := oneFailover(ctx, c, k, o)
		if err != nil {
			return out, fmt.Errorf("kill %d: %w", k+1, err)
		}
		out = append(out, r)
		logf("kill %2d: controller %d (epoch %d) → %d (epoch %d): leader named after %v (all brokers %v), CreateTopics after %v in %d attempts; restarted voter caught up in %v; %d brokers fenced",
			k+1, r.Killed, r.Epoch, r.NewLeader, r.NewEpoch, ms(r.Leader), ms(r.AllLeader), ms(r.Create), r.Attempts, ms(r.Rejoin), r.Fencings)
	}
	return out, nil
}

func oneFailover(ctx context.Context, c *cluster, k int, o failoverOpts) (killResult, error) {
	r := killResult{Index: k + 1}
	q, err := settledQuorum(ctx, c, o)
	if err != nil {
		return r, err
	}
	if q.leader < 1 || int(q.leader) > len(c.voters) {
		return r, fmt.Errorf("DescribeQuorum names leader %d, not a voter", q.leader)
	}
	r.Killed, r.Epoch = q.leader, q.epoch
	victim := c.voter(q.leader)
	old := victim.proc()

	wctx, cancel := context.WithTimeout(ctx, o.giveUp)
	defer cancel()
	t0 := old.kill9()
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := make([]time.Duration, len(c.brokers)) // per broker, 0 = not yet
	answers := make([]map[string]int, len(c.brokers))
	for i := range c.brokers {
		answers[i] = map[string]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wctx.Err() == nil {
				q, err := describeQuorum(wctx, c.client(i), o.reqTimeout)
				if err == nil && q.leader >= 0 && q.leader != r.Killed {
					mu.Lock()
					seen[i] = time.Since(t0)
					r.NewLeader, r.NewEpoch = q.leader, q.epoch
					mu.Unlock()
					return
				}
				if err == nil {
					answers[i][fmt.Sprintf("leader %d", q.leader)]++
				} else {
					answers[i][errKind(err)]++
				}
				_ = sleepCtx(wctx, o.pollInterval)
			}
		}()
	}
	failures := map[string]int{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		topic := fmt.Sprintf("failover-%03d", k+1)
		for wctx.Err() == nil {
			r.Attempts++
			n, err := createTopics(wctx, c.client(k), []string{topic}, 1, o.replicas, o.reqTimeout)
			if err == nil && n == 1 {
				r.Create = time.Since(t0)
				return
			}
			failures[errKind(err)]++
			_ = sleepCtx(wctx, o.retryEvery)
		}
	}()
	wg.Wait()
	<-old.exited
	for _, d := range seen {
		if d == 0 {
			r.AllLeader = 0
			break
		}
		if r.Leader == 0 || d < r.Leader {
			r.Leader = d
		}
		r.AllLeader = max(r.AllLeader, d)
	}
	r.Failures = formatFailures(failures)
	slowest := 0
	for i, d := range seen {
		if d == 0 || seen[slowest] != 0 && d > seen[slowest] {
			slowest = i
		}
	}
	r.Slowest = fmt.Sprintf("broker %d; before: %s", c.brokers[slowest].id, formatFailures(answers[slowest]))
	if r.Leader == 0 || r.AllLeader == 0 || r.Create == 0 {
		return r, fmt.Errorf("failover of controller %d (epoch %d) not done within %s: brokers naming a new leader after %v, CreateTopics after %v (%d attempts: %s)\n%s",
			r.Killed, r.Epoch, o.giveUp, seen, r.Create, r.Attempts, r.Failures, c.tails(20))
	}
	if err := rejoin(ctx, c, victim, &r, o); err != nil {
		return r, err
	}
	r.Fencings = c.fencings(t0, -1)
	return r, nil
}

// settledQuorum waits until broker 4 names a leader and every voter's log
// end has reached the high watermark.
func settledQuorum(ctx context.Context, c *cluster, o failoverOpts) (quorumState, error) {
	deadline := time.Now().Add(o.giveUp)
	var last string
	for time.Now().Before(deadline) {
		q, err := describeQuorum(ctx, c.client(0), o.reqTimeout)
		if err == nil && q.leader >= 0 && caughtUp(q, c) {
			return q, nil
		}
		last = fmt.Sprintf("%+v %v", q, err)
		if err := sleepCtx(ctx, o.pollInterval); err != nil {
			return q, err
		}
	}
	return quorumState{}, fmt.Errorf("quorum not settled within %s: %s", o.giveUp, last)
}

func caughtUp(q quorumState, c *cluster) bool {
	for _, v := range c.voters {
		if s, ok := q.voters[v.id]; !ok || s.leo < q.hw {
			return false
		}
	}
	return true
}

// rejoin restarts the killed voter and waits until DescribeQuorum shows its
// log end at the leader's high watermark, then o.settle more (the leader
// adds it back to the metadata ISR once it has caught up).
func rejoin(ctx context.Context, c *cluster, victim *node, r *killResult, o failoverOpts) error {
	p, err := victim.start()
	if err != nil {
		return err
	}
	if err := p.waitListening(o.giveUp); err != nil {
		return err
	}
	r.ListenedIn = p.listenedAt().Sub(p.started)
	deadline := time.Now().Add(o.giveUp)
	for {
		q, err := describeQuorum(ctx, c.client(0), o.reqTimeout)
		if err == nil && q.leader >= 0 {
			if s, ok := q.voters[victim.id]; ok && s.leo >= q.hw {
				r.Rejoin = time.Since(p.started)
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("restarted controller %d not caught up within %s (last DescribeQuorum %+v, %v)\n%s", victim.id, o.giveUp, q, err, c.tails(20))
		}
		if err := sleepCtx(ctx, o.pollInterval); err != nil {
			return err
		}
	}
	return sleepCtx(ctx, o.settle)
}

// errKind names an error for the failure counts: a Kafka error's name,
// "timeout" for a deadline, else the error text's start.
func errKind(err error) string {
	var ke *kerr.Error
	switch {
	case err == nil:
		return "none"
	case errors.As(err, &ke):
		return ke.Message
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	s := err.Error()
	if i := strings.IndexAny(s, ":\n"); i > 0 && i < 60 {
		s = s[:i]
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

func formatFailures(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ms rounds a duration to the millisecond, for logs and tables.
func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
