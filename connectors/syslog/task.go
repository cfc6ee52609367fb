package main

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
)

// The task: listeners parse messages into records and put them in a
// bounded queue; Poll takes them out. The queue is the only buffer the
// plugin has, so it bounds what a crash loses (syslog has no replay: a
// message is gone from the sender once written to the socket). When it is
// full a TCP or TLS connection's reader waits to put its record in, stops
// reading, and the kernel's buffers fill until the sender blocks; a UDP
// datagram is dropped and counted, since UDP has no way to slow a sender.

const (
	listenerKey = "listener" // source partition: {"listener": "tcp://addr:port"}
	seqKey      = "seq"      // source offset: {"seq": messages received on it}
	readSize    = 64 << 10
	statsEvery  = 30 * time.Second
)

// stats are the task's counters, logged as they first move and then
// every statsEvery while they do.
type stats struct {
	received    atomic.Int64
	truncated   atomic.Int64
	parseFailed atomic.Int64
	udpDropped  atomic.Int64
	stalls      atomic.Int64 // TCP/TLS reads that waited for room in the queue
	rejected    atomic.Int64 // connections over syslog.tcp.max.connections
}

type task struct {
	cfg   config
	log   *slog.Logger
	queue chan queued
	stats stats

	lastMu sync.Mutex
	last   []int64 // the seq of each record of the latest Poll (SourceOffsetAt)

	stopped  chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	mu        sync.Mutex
	listeners []*listener
	conns     map[net.Conn]struct{}
	warned    [4]atomic.Bool // first truncation, parse failure, drop, rejection logged
}

func (t *task) Start(_ context.Context, tc sdk.TaskContext, cfg map[string]string, _ []sdk.Position) error {
	c, errs := parseConfig(cfg)
	if err := errs.err(); err != nil {
		return err
	}
	t.cfg, t.log = c, tc.Logger
	if t.log == nil {
		t.log = sdk.Logger
	}
	t.queue = make(chan queued, c.queueMax)
	t.stopped = make(chan struct{})
	t.conns = map[net.Conn]struct{}{}
	// Offsets from an earlier run are not a position to resume from:
	// nothing upstream can be re-read. They are ignored.
	for _, tr := range c.transports {
		l, err := t.listen(tr)
		if err != nil {
			t.closeListeners()
			return err
		}
		t.listeners = append(t.listeners, l)
		t.log.Info("syslog listener started", "listener", l.url, "topic", c.topic)
	}
	for _, l := range t.listeners {
		t.wg.Add(1)
		go func() { defer t.wg.Done(); l.serve(t) }()
	}
	t.wg.Add(1)
	go func() { defer t.wg.Done(); t.reportStats() }()
	return nil
}

var _ sdk.SourceOffsetsAt = (*task)(nil)

// queued is a record waiting for Poll, with its number on its listener
// (its source offset, made into a map only when the SDK asks for it).
type queued struct {
	rec *data.Record
	seq int64
}

// Poll returns the queued records, waiting for the first one until ctx
// ends or the task stops.
func (t *task) Poll(ctx context.Context, limits sdk.PollLimits) ([]*data.Record, error) {
	limit := t.cfg.batch
	if limits.MaxRecords > 0 && limits.MaxRecords < limit {
		limit = limits.MaxRecords
	}
	var first queued
	select {
	case first = <-t.queue:
	case <-ctx.Done():
		return nil, nil
	case <-t.stopped:
		return nil, nil
	}
	n := min(limit, len(t.queue)+1)
	out := make([]*data.Record, 1, n)
	t.lastMu.Lock()
	defer t.lastMu.Unlock()
	seqs := append(t.last[:0], first.seq)
	out[0] = first.rec
	defer func() { t.last = seqs }()
	for len(out) < limit {
		select {
		case q := <-t.queue:
			out = append(out, q.rec)
			seqs = append(seqs, q.seq)
		default:
			return out, nil
		}
	}
	return out, nil
}

// SourceOffsetAt is the source offset of record i of the latest Poll
// (sdk.SourceOffsetsAt): the SDK asks only for the last record of each
// listener's run in a batch, so a map per message (~5% of the plugin's
// CPU with its allocation and garbage) is one per batch.
func (t *task) SourceOffsetAt(i int) map[string]any {
	t.lastMu.Lock()
	defer t.lastMu.Unlock()
	if i < 0 || i >= len(t.last) {
		return nil
	}
	return map[string]any{seqKey: t.last[i]}
}

// Commit has nothing to acknowledge: syslog senders get no receipts.
func (t *task) Commit(context.Context, sdk.Commit) error { return nil }

// Stop closes the listeners and connections and waits for their readers.
// What is still queued is lost, as it would be in a crash.
func (t *task) Stop(context.Context) error {
	if t.stopped == nil {
		return nil
	}
	t.stopOnce.Do(func() {
		close(t.stopped)
		t.closeListeners()
		t.mu.Lock()
		for c := range t.conns {
			_ = c.Close()
		}
		t.mu.Unlock()
		t.wg.Wait()
		t.log.Info("syslog source stopped", t.statsAttrs()...)
	})
	return nil
}

func (t *task) closeListeners() {
	for _, l := range t.listeners {
		l.close()
	}
}

func (t *task) isStopped() bool {
	select {
	case <-t.stopped:
		return true
	default:
		return false
	}
}

// record makes a parsed message into a record; its source offset is
// left to SourceOffsetAt.
func (t *task) record(l *listener, p parsed, recv time.Time) *data.Record {
	r := &data.Record{
		Topic: t.cfg.topic, Partition: -1, Timestamp: recv.UnixMilli(),
		Value:           p.value,
		SourcePartition: l.partition,
	}
	if t.cfg.key != keyNone {
		r.KeySchema, r.Key = data.OptionalStringSchema, p.key
	}
	return r
}

// emit parses one frame and queues its record. block says whether to wait
// for room (TCP, TLS) or drop (UDP); it returns false when the task stops
// while waiting.
func (t *task) emit(l *listener, p *parser, f frame, remote string, recv time.Time, block bool) bool {
	t.stats.received.Add(1)
	if f.truncated {
		t.stats.truncated.Add(1)
		t.warnOnce(0, "syslog message longer than syslog.max.message.bytes truncated",
			"listener", l.url, "remote", remote, "size", f.size, "max", t.cfg.maxBytes)
	}
	res := p.parse(f.data, f.truncated, remote, recv)
	if res.failed {
		t.stats.parseFailed.Add(1)
		t.warnOnce(1, "syslog message not parsed: kept raw with parse_error",
			"listener", l.url, "remote", remote, "error", res.parseError)
	}
	q := queued{t.record(l, res, recv), l.seq.Add(1)}
	select {
	case t.queue <- q:
		return true
	default:
	}
	if !block {
		t.stats.udpDropped.Add(1)
		t.warnOnce(2, "syslog queue full: UDP messages dropped", "listener", l.url, "queue", t.cfg.queueMax)
		return true
	}
	t.stats.stalls.Add(1)
	select {
	case t.queue <- q:
		return true
	case <-t.stopped:
		return false
	}
}

// warnOnce logs the first event of a kind at once; the counts that follow
// are in the periodic stats line.
func (t *task) warnOnce(kind int, msg string, args ...any) {
	if t.warned[kind].CompareAndSwap(false, true) {
		t.log.Warn(msg+" (further ones are counted in the periodic stats)", args...)
	}
}

func (t *task) statsAttrs() []any {
	return []any{
		"received", t.stats.received.Load(), "truncated", t.stats.truncated.Load(),
		"parse_failed", t.stats.parseFailed.Load(), "udp_dropped", t.stats.udpDropped.Load(),
		"tcp_stalls", t.stats.stalls.Load(), "connections_rejected", t.stats.rejected.Load(),
		"queued", len(t.queue),
	}
}

// reportStats logs the counters every statsEvery while something that
// loses or changes data (truncation, parse failure, drop, rejection) goes
// on, so a lossy setup shows in the worker's log.
func (t *task) reportStats() {
	tick := time.NewTicker(statsEvery)
	defer tick.Stop()
	var last [4]int64
	for {
		select {
		case <-t.stopped:
			return
		case <-tick.C:
		}
		now := [4]int64{t.stats.truncated.Load(), t.stats.parseFailed.Load(), t.stats.udpDropped.Load(), t.stats.rejected.Load()}
		if now != last {
			t.log.Warn("syslog source stats", t.statsAttrs()...)
			last = now
		}
	}
}
