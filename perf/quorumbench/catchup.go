package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Broker catch-up: with topics totalling many partitions, stop one broker
// (SIGTERM, or kill -9), start it again and time, from the new process's
// start, its "broker listening" line, its return (unfenced, its metadata
// offset at the leader's high watermark of the moment it restarted), its
// own Metadata listing every partition, and every partition's ISR full
// again.

// setupResult is how creating the partitions went.
type setupResult struct {
	Partitions, Topics int
	RF                 int32
	Create             time.Duration // the CreateTopics calls
	Listed             time.Duration // start → every broker's Metadata lists every partition
	FullISR            time.Duration // start → every partition's ISR is all its replicas
	HW                 int64         // the metadata log's high watermark afterwards
	Fencings           int           // brokers fenced for an expired session meanwhile
}

// createPartitions creates topics of perTopic partitions (the last one
// fewer) totalling total, with four concurrent clients, and waits until
// every broker lists them all with full ISRs.
func createPartitions(ctx context.Context, c *cluster, total, perTopic int, rf int32, giveUp time.Duration) (setupResult, error) {
	res := setupResult{Partitions: total, RF: rf}
	var sizes []int32
	for left := total; left > 0; left -= perTopic {
		sizes = append(sizes, int32(min(left, perTopic)))
	}
	res.Topics = len(sizes)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		cl, b, err := newClient(c.brokers[w%len(c.brokers)].addr)
		if err != nil {
			return res, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(sizes) || ctx.Err() != nil {
					return
				}
				if _, err := createTopics(ctx, b, []string{fmt.Sprintf("big-%04d", i)}, sizes[i], rf, 30*time.Second); err != nil {
					errs <- fmt.Errorf("create big-%04d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return res, err
	}
	res.Create = time.Since(start)
	for i := range c.brokers {
		if err := waitMeta(ctx, c, i, giveUp, func(m metaView) bool { return m.partitions >= total }); err != nil {
			return res, fmt.Errorf("after creating %d partitions: %w", total, err)
		}
	}
	res.Listed = time.Since(start)
	if err := waitMeta(ctx, c, 0, giveUp, func(m metaView) bool { return m.fullISR >= total }); err != nil {
		return res, fmt.Errorf("after creating %d partitions: %w", total, err)
	}
	res.FullISR = time.Since(start)
	q, err := describeQuorum(ctx, c.client(0), 5*time.Second)
	if err != nil {
		return res, err
	}
	res.HW = q.hw
	res.Fencings = c.fencings(start, -1)
	return res, nil
}

// waitMeta polls broker i's Metadata (every topic) until ok holds.
func waitMeta(ctx context.Context, c *cluster, i int, giveUp time.Duration, ok func(metaView) bool) error {
	deadline := time.Now().Add(giveUp)
	var last metaView
	var lastErr error
	for time.Now().Before(deadline) {
		m, err := fetchMetadata(ctx, c.client(i), true, 10*time.Second)
		if err == nil && ok(m) {
			return nil
		}
		last, lastErr = m, err
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("broker %d: not there within %s: %d partitions listed, %d with a full ISR, brokers %v (%v)",
		c.brokers[i].id, giveUp, last.partitions, last.fullISR, last.brokers, lastErr)
}

// restartResult is one stop and start of a broker.
type restartResult struct {
	Mode      string // "SIGTERM" or "kill -9"
	Broker    int32
	Shutdown  time.Duration // SIGTERM → exit (SIGTERM only)
	HW        int64         // the leader's high watermark when it restarted
	ISRBefore int           // partitions with a full ISR when it restarted (another broker's view)
	Listening time.Duration // process start → "broker listening"
	Unfenced  time.Duration // → another broker's Metadata lists it
	CaughtUp  time.Duration // → its heartbeat reports a metadata offset ≥ HW
	Ready     time.Duration // max(Unfenced, CaughtUp)
	AllParts  time.Duration // → its own Metadata lists every partition
	FullISR   time.Duration // → every partition's ISR is full again (another broker's view)
	Fencings  int           // other brokers fenced for an expired session, stop → ISRs full
}

// restartBroker stops broker i (kill9: SIGKILL, else SIGTERM), waits until
// the others no longer list it (fenced), starts it again and measures.
func restartBroker(ctx context.Context, c *cluster, i int, kill9 bool, total int, giveUp time.Duration) (restartResult, error) {
	n := c.brokers[i]
	other := (i + 1) % len(c.brokers)
	r := restartResult{Mode: "SIGTERM", Broker: n.id}
	p := n.proc()
	stopped := time.Now()
	if kill9 {
		r.Mode = "kill -9"
		p.kill9()
		<-p.exited
	} else {
		d, clean := p.stop(giveUp)
		if !clean {
			return r, fmt.Errorf("broker %d did not exit within %s of SIGTERM\n%s", n.id, giveUp, p.logTail(20))
		}
		r.Shutdown = d
	}
	// A killed broker stays unfenced until its session expires: restart
	// only once it is fenced, so "unfenced" below is the new process's.
	fenced := time.Now().Add(giveUp)
	for {
		m, err := fetchMetadata(ctx, c.client(other), false, 2*time.Second)
		if err == nil && !m.lists(n.id) {
			break
		}
		if time.Now().After(fenced) {
			return r, fmt.Errorf("broker %d still listed %s after it stopped (%v, %v)", n.id, giveUp, m.brokers, err)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return r, err
		}
	}
	m, err := fetchMetadata(ctx, c.client(other), true, 10*time.Second)
	if err != nil {
		return r, err
	}
	r.ISRBefore = m.fullISR
	q, err := describeQuorum(ctx, c.client(other), 5*time.Second)
	if err != nil {
		return r, err
	}
	r.HW = q.hw

	np, err := n.start()
	if err != nil {
		return r, err
	}
	t0 := np.started
	wctx, cancel := context.WithTimeout(ctx, giveUp)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	fail := func(s string) { mu.Lock(); errs = append(errs, s); mu.Unlock() }
	wg.Add(3)
	go func() { // unfenced and caught up, from another broker
		defer wg.Done()
		for wctx.Err() == nil {
			if r.Unfenced == 0 {
				if m, err := fetchMetadata(wctx, c.client(other), false, 2*time.Second); err == nil && m.lists(n.id) {
					r.Unfenced = time.Since(t0)
				}
			}
			if r.CaughtUp == 0 {
				q, err := describeQuorum(wctx, c.client(other), 2*time.Second)
				if s, ok := q.observers[n.id]; err == nil && ok && s.lastFetchMs >= t0.UnixMilli() && s.leo >= r.HW {
					r.CaughtUp = time.Since(t0)
				}
			}
			if r.Unfenced > 0 && r.CaughtUp > 0 {
				r.Ready = max(r.Unfenced, r.CaughtUp)
				return
			}
			_ = sleepCtx(wctx, 50*time.Millisecond)
		}
		fail(fmt.Sprintf("not unfenced and caught up within %s (unfenced after %v, caught up after %v)", giveUp, r.Unfenced, r.CaughtUp))
	}()
	go func() { // its own Metadata lists every partition
		defer wg.Done()
		if err := np.waitListening(giveUp); err != nil {
			fail(err.Error())
			return
		}
		r.Listening = np.listenedAt().Sub(t0)
		for wctx.Err() == nil {
			if m, err := fetchMetadata(wctx, c.client(i), true, 10*time.Second); err == nil && m.partitions >= total {
				r.AllParts = time.Since(t0)
				return
			}
			_ = sleepCtx(wctx, 200*time.Millisecond)
		}
		fail(fmt.Sprintf("its Metadata did not list %d partitions within %s", total, giveUp))
	}()
	go func() { // every ISR full again, from another broker
		defer wg.Done()
		for wctx.Err() == nil {
			if m, err := fetchMetadata(wctx, c.client(other), true, 10*time.Second); err == nil && m.fullISR >= total {
				r.FullISR = time.Since(t0)
				return
			}
			_ = sleepCtx(wctx, 250*time.Millisecond)
		}
		fail(fmt.Sprintf("the ISRs were not full again within %s", giveUp))
	}()
	wg.Wait()
	r.Fencings = c.fencings(stopped, n.id)
	if len(errs) > 0 {
		return r, fmt.Errorf("broker %d restarted after %s: %v\n%s", n.id, r.Mode, errs, c.tails(20))
	}
	return r, nil
}
