package fetcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/isr"
)

// minFetchVersion is the oldest Fetch a leader may answer: v12 brought
// LastFetchedEpoch and DivergingEpoch, on which truncation relies here.
const minFetchVersion = 12

// fetcher is one (leader, index) fetch loop: Kafka's ReplicaFetcherThread.
type fetcher struct {
	m      *Manager
	key    fetcherKey
	logger *slog.Logger
	parts  map[partKey]*partState // guarded by m.mu

	ctx    context.Context // cancelled when the last partition leaves
	cancel context.CancelFunc
	wake   chan struct{} // poked on a new partition or a backoff's end

	cl      *kgo.Client // the goroutine's own
	rot     int         // rotates the partitions' order, so a full response does not always starve the same ones
	sess    session     // the incremental fetch session with the leader (KIP-227)
	failing bool        // the last request failed; logged once per outage
}

// sent is one partition of a request in flight: its state (the
// generation the answer must still match) and what was asked.
type sent struct {
	ps       *partState
	req      isr.FetchRequest
	logStart int64
}

func newFetcher(m *Manager, key fetcherKey) *fetcher {
	ctx, cancel := context.WithCancel(context.Background())
	return &fetcher{m: m, key: key, parts: map[partKey]*partState{}, ctx: ctx, cancel: cancel,
		wake:   make(chan struct{}, 1),
		logger: m.cfg.Logger.With("leader", key.leader.ID, "leader_addr", key.leader.Addr, "fetcher", key.index)}
}

// poke wakes the loop if it sleeps; it never blocks.
func (f *fetcher) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fetcher) run() {
	defer f.m.wg.Done()
	cfg := f.m.cfg
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.key.leader.Addr),
		kgo.ClientID(fmt.Sprintf("broker-%d-fetcher-%d", cfg.NodeID, f.key.index)),
		kgo.RequestRetries(0))
	if err != nil {
		// Only a malformed address gets here; metadata must fix it.
		f.logger.Error("cannot create the replica fetcher's client", "err", err)
		<-f.ctx.Done()
		return
	}
	f.cl = cl
	defer cl.Close()
	for f.ctx.Err() == nil {
		batch, wait := f.prepare()
		if len(batch) == 0 {
			f.sleep(wait)
			continue
		}
		resp, err := f.fetch(batch)
		if f.ctx.Err() != nil {
			return
		}
		if isSessionError(err) {
			// The leader restarted or evicted the session: the next
			// request is full, at once.
			f.logger.Debug("fetch session ended by the leader, starting a new one", "err", err)
			continue
		}
		if err != nil {
			f.requestFailed(batch, err)
			continue
		}
		if f.failing {
			f.failing = false
			f.logger.Info("replica fetcher reached its leader again")
		}
		for _, s := range f.apply(batch, resp) {
			f.reset(s)
		}
	}
}

// sleep waits for a poke, d (0: no timer) or the end.
func (f *fetcher) sleep(d time.Duration) {
	var stop func() bool
	if d > 0 {
		stop = f.m.cfg.Clock.AfterFunc(d, f.poke)
	}
	select {
	case <-f.ctx.Done():
	case <-f.wake:
	}
	if stop != nil {
		stop()
	}
}

// prepare picks the partitions to fetch now, truncating those that must
// first (isr.Follower.Next), and returns the shortest backoff left among
// the others (0 if none backs off).
func (f *fetcher) prepare() ([]sent, time.Duration) {
	f.m.mu.Lock()
	parts := make([]*partState, 0, len(f.parts))
	for _, ps := range f.parts {
		parts = append(parts, ps)
	}
	f.m.mu.Unlock()
	slices.SortFunc(parts, func(a, b *partState) int {
		return cmp.Or(cmp.Compare(a.p.Topic, b.p.Topic), cmp.Compare(a.p.Index, b.p.Index))
	})
	if n := len(parts); n > 1 {
		f.rot++
		k := f.rot % n
		parts = append(parts[k:], parts[:k]...)
	}
	now := f.m.cfg.Clock.Now()
	var batch []sent
	var wait time.Duration
	throttled := f.throttledNow(now)
	for _, ps := range parts {
		if throttled && f.m.cfg.Throttled(ps.p.Topic, ps.p.Index) {
			// The follower throttle is used up: this partition
			// waits for the next fetch (Kafka leaves it out too).
			if d := 100 * time.Millisecond; wait == 0 || d < wait {
				wait = d
			}
			continue
		}
		s, backoff, ok := ps.next(now, f.m.cfg.Backoff)
		switch {
		case ok:
			batch = append(batch, s)
		case backoff > 0 && (wait == 0 || backoff < wait):
			wait = backoff
		}
	}
	return batch, wait
}

// throttledNow reports whether the follower throttle is used up at now.
func (f *fetcher) throttledNow(now time.Time) bool {
	cfg := f.m.cfg
	return cfg.Throttle != nil && cfg.Throttled != nil && cfg.Throttle.Exceeded(now)
}

// fetch sends one Fetch for batch to the leader: full, or incremental in
// the fetcher's session.
func (f *fetcher) fetch(batch []sent) (*kmsg.FetchResponse, error) {
	cfg := f.m.cfg
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = cfg.NodeID // v0–14
	req.ReplicaState.ID = cfg.NodeID
	req.ReplicaState.Epoch = cfg.BrokerEpoch() // v15+, KIP-903
	req.MaxWaitMillis = int32(cfg.MaxWait.Milliseconds())
	req.MinBytes = cfg.MinBytes
	req.MaxBytes = cfg.ResponseMaxBytes
	pending := f.sess.build(req, batch, cfg.MaxBytes)
	resp, err := f.send(req)
	f.sess.done(pending, resp, err)
	if err != nil {
		return nil, fmt.Errorf("fetch from leader %d at %s: %w", f.key.leader.ID, f.key.leader.Addr, err)
	}
	return resp, nil
}

// send sends req and returns the answer, or its failure: transport, a
// version too old for followers, or a top-level error code.
func (f *fetcher) send(req *kmsg.FetchRequest) (*kmsg.FetchResponse, error) {
	kresp, err := f.cl.SeedBrokers()[0].Request(f.ctx, req)
	if err != nil {
		return nil, err
	}
	if req.Version < minFetchVersion {
		return nil, fmt.Errorf("leader speaks Fetch v%d, followers need v%d+ (truncation on fetch)", req.Version, minFetchVersion)
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	return resp, nil
}

// requestFailed backs off every partition of a failed request (Kafka's
// partitionsWithError on a connection error): the loop sleeps, then
// franz-go dials again.
func (f *fetcher) requestFailed(batch []sent, err error) {
	if !f.failing {
		f.failing = true
		f.logger.Warn("replica fetch failed, backing off", "backoff", f.m.cfg.Backoff, "err", err)
	} else {
		f.logger.Debug("replica fetch failed again", "err", err)
	}
	now := f.m.cfg.Clock.Now()
	for _, s := range batch {
		s.ps.delay(now, f.m.cfg.Backoff)
	}
}

// apply hands each partition's answer to its state and returns the
// partitions that need a reset (OFFSET_OUT_OF_RANGE); partitions the
// leader left out are fetched again next time.
func (f *fetcher) apply(batch []sent, resp *kmsg.FetchResponse) []sent {
	byName := map[partKey]sent{}
	byID := map[[16]byte]string{}
	for _, s := range batch {
		byName[partKey{s.ps.p.Topic, s.ps.p.Index}] = s
		byID[s.ps.p.TopicID] = s.ps.p.Topic
	}
	now := f.m.cfg.Clock.Now()
	var resets []sent
	for i := range resp.Topics {
		t := &resp.Topics[i]
		name := t.Topic
		if name == "" { // v13+ names topics by ID
			name = byID[t.TopicID]
		}
		for j := range t.Partitions {
			rp := &t.Partitions[j]
			s, ok := byName[partKey{name, rp.Partition}]
			if !ok {
				continue
			}
			delete(byName, partKey{name, rp.Partition}) // one answer per request
			if f.m.cfg.Throttle != nil && f.m.cfg.Throttled != nil && f.m.cfg.Throttled(name, rp.Partition) {
				f.m.cfg.Throttle.Record(int64(len(rp.RecordBatches)), now)
			}
			if s.ps.applyFetch(s.req, rp, now, f.m.cfg.Backoff) {
				resets = append(resets, s)
			}
		}
	}
	return resets
}

// reset answers OFFSET_OUT_OF_RANGE: it asks the leader for its log
// bounds (no lock held: this is network I/O), then lets the partition
// apply isr.OutOfRangeReset.
func (f *fetcher) reset(s sent) {
	start, startErr := f.listOffset(s.ps, -2)
	end, endErr := f.listOffset(s.ps, -1)
	s.ps.applyReset(start, end, errors.Join(startErr, endErr), f.m.cfg.Clock.Now(), f.m.cfg.Backoff)
}

// listOffset asks the leader, as a replica, for the partition's earliest
// (-2) or latest (-1, its log end offset for a replica) offset.
func (f *fetcher) listOffset(ps *partState, timestamp int64) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = f.m.cfg.NodeID
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic = ps.p.Topic
	p := kmsg.NewListOffsetsRequestTopicPartition()
	p.Partition = ps.p.Index
	p.CurrentLeaderEpoch = ps.epoch
	p.Timestamp = timestamp
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	kresp, err := f.cl.SeedBrokers()[0].Request(f.ctx, req)
	if err != nil {
		return -1, fmt.Errorf("list offset %d of %s-%d from leader %d: %w", timestamp, ps.p.Topic, ps.p.Index, ps.leader.ID, err)
	}
	for _, rt := range kresp.(*kmsg.ListOffsetsResponse).Topics {
		for _, rp := range rt.Partitions {
			if rt.Topic != ps.p.Topic || rp.Partition != ps.p.Index {
				continue
			}
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return -1, fmt.Errorf("list offset %d of %s-%d from leader %d: %w", timestamp, ps.p.Topic, ps.p.Index, ps.leader.ID, err)
			}
			return rp.Offset, nil
		}
	}
	return -1, fmt.Errorf("list offset %d of %s-%d: leader %d did not answer for the partition", timestamp, ps.p.Topic, ps.p.Index, ps.leader.ID)
}
