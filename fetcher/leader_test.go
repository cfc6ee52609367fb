package fetcher

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// fakeLeader is a leader broker over real TCP: kfake answers ApiVersions
// and everything else, and our control functions answer Fetch and
// ListOffsets as a Kafka leader answers a follower (Partition.readRecords:
// leader-epoch fencing, DivergingEpoch, OFFSET_OUT_OF_RANGE, batches from
// the fetch offset up to the partition's max bytes, the last one possibly
// cut short).
type fakeLeader struct {
	t    *testing.T
	c    *kfake.Cluster
	addr string

	mu    sync.Mutex
	parts map[partKey]*fakePart
	reqs  []*kmsg.FetchRequest
	hold  *heldFetch // the next fetch is answered, then held
}

// fakePart is one partition of the leader's log.
type fakePart struct {
	batches  [][]byte
	epoch    int32 // the leader epoch it leads in
	logStart int64
	hw       int64 // -1: the LEO
}

type heldFetch struct {
	match   func(*kmsg.FetchRequest) bool
	arrived chan struct{} // closed once the held request was answered
	release chan struct{}
}

func newFakeLeader(t *testing.T, opts ...kfake.Opt) *fakeLeader {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	l := &fakeLeader{t: t, c: c, addr: c.ListenAddrs()[0], parts: map[partKey]*fakePart{}}
	c.ControlKey(int16(kmsg.Fetch), l.fetch)
	c.ControlKey(int16(kmsg.ListOffsets), l.listOffsets)
	t.Cleanup(c.Close)
	return l
}

// set replaces a partition's log (batches as built by leaderBatch).
func (l *fakeLeader) set(topic string, index int32, fp fakePart) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.parts[partKey{topic, index}] = &fp
}

// holdWhen makes the first Fetch from now that match accepts be answered
// (from the state at that moment) and the answer held until release is
// closed.
func (l *fakeLeader) holdWhen(match func(*kmsg.FetchRequest) bool) (arrived <-chan struct{}, release chan struct{}) {
	h := &heldFetch{match: match, arrived: make(chan struct{}), release: make(chan struct{})}
	l.mu.Lock()
	l.hold = h
	l.mu.Unlock()
	return h.arrived, h.release
}

// holdAfter holds the answer to the fetch after the next n.
func (l *fakeLeader) holdAfter(n int) (arrived <-chan struct{}, release chan struct{}) {
	seen := 0
	return l.holdWhen(func(*kmsg.FetchRequest) bool { seen++; return seen > n })
}

func (l *fakeLeader) requests() []*kmsg.FetchRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*kmsg.FetchRequest(nil), l.reqs...)
}

func (l *fakeLeader) fetch(kreq kmsg.Request) (kmsg.Response, error, bool) { //nolint:revive // kfake's control signature
	l.c.KeepControl()
	req := kreq.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	l.mu.Lock()
	l.reqs = append(l.reqs, req)
	empty := true
	for _, rt := range req.Topics {
		t := kmsg.NewFetchResponseTopic()
		t.Topic, t.TopicID = rt.Topic, rt.TopicID
		name := rt.Topic
		if rt.TopicID == topicID { // v13+ names topics by ID only
			name = "t"
		}
		for i, rp := range rt.Partitions {
			fp := l.parts[partKey{name, rp.Partition}]
			if fp == nil {
				fp = &fakePart{hw: -1}
			}
			p := fp.answer(rp, i == 0)
			p.Partition = rp.Partition
			empty = empty && p.ErrorCode == 0 && len(p.RecordBatches) == 0 && p.DivergingEpoch.Epoch == -1
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	h := l.hold
	if h != nil && h.match(req) {
		l.hold = nil
	} else {
		h = nil
	}
	l.mu.Unlock()
	switch {
	case h != nil:
		close(h.arrived)
		l.c.SleepControl(func() { <-h.release })
	case empty: // a long poll with nothing new, shortened
		l.c.SleepControl(func() { time.Sleep(5 * time.Millisecond) })
	}
	return resp, nil, true
}

// leo is the log end offset.
func (fp *fakePart) leo() int64 {
	if len(fp.batches) == 0 {
		return fp.logStart
	}
	h, _ := segment.ParseBatchHeader(fp.batches[len(fp.batches)-1])
	return h.LastOffset() + 1
}

// epochs is the leader's epoch cache: each batch's epoch from its first
// batch, and the epoch it leads in from the LEO (Kafka's makeLeader).
func (fp *fakePart) epochs() []isr.EpochEntry {
	var es []isr.EpochEntry
	for _, b := range fp.batches {
		h, _ := segment.ParseBatchHeader(b)
		if len(es) == 0 || es[len(es)-1].Epoch < h.PartitionLeaderEpoch {
			es = append(es, isr.EpochEntry{Epoch: h.PartitionLeaderEpoch, StartOffset: h.BaseOffset})
		}
	}
	if len(es) == 0 || es[len(es)-1].Epoch < fp.epoch {
		es = append(es, isr.EpochEntry{Epoch: fp.epoch, StartOffset: fp.leo()})
	}
	return es
}

func (fp *fakePart) answer(rp kmsg.FetchRequestTopicPartition, first bool) kmsg.FetchResponseTopicPartition {
	p := kmsg.NewFetchResponseTopicPartition()
	leo, hw := fp.leo(), fp.hw
	if hw < 0 {
		hw = leo
	}
	switch {
	case rp.CurrentLeaderEpoch < fp.epoch:
		p.ErrorCode = kerr.FencedLeaderEpoch.Code
		return p
	case rp.CurrentLeaderEpoch > fp.epoch:
		p.ErrorCode = kerr.UnknownLeaderEpoch.Code
		return p
	}
	p.HighWatermark, p.LastStableOffset, p.LogStartOffset = hw, hw, fp.logStart
	if rp.LastFetchedEpoch >= 0 {
		e := isr.EndOffsetFor(fp.epochs(), rp.LastFetchedEpoch, leo)
		if e.Epoch < rp.LastFetchedEpoch || e.EndOffset < rp.FetchOffset {
			p.DivergingEpoch.Epoch, p.DivergingEpoch.EndOffset = e.Epoch, e.EndOffset
			return p
		}
	}
	if rp.FetchOffset < fp.logStart || rp.FetchOffset > leo {
		p.ErrorCode = kerr.OffsetOutOfRange.Code
		p.HighWatermark, p.LastStableOffset, p.LogStartOffset = -1, -1, -1
		return p
	}
	for _, b := range fp.batches {
		h, _ := segment.ParseBatchHeader(b)
		if h.LastOffset() < rp.FetchOffset {
			continue
		}
		room := int(rp.PartitionMaxBytes) - len(p.RecordBatches)
		if len(b) > room {
			if first && len(p.RecordBatches) == 0 {
				p.RecordBatches = append(p.RecordBatches, b...) // at least one batch
			} else if room > 0 {
				p.RecordBatches = append(p.RecordBatches, b[:room]...) // cut short
			}
			break
		}
		p.RecordBatches = append(p.RecordBatches, b...)
	}
	return p
}

// listOffsets answers earliest (-2) and latest (-1) as for a replica: the
// log start and the LEO.
func (l *fakeLeader) listOffsets(kreq kmsg.Request) (kmsg.Response, error, bool) { //nolint:revive // kfake's control signature
	l.c.KeepControl()
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, rt := range req.Topics {
		t := kmsg.NewListOffsetsResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewListOffsetsResponseTopicPartition()
			p.Partition = rp.Partition
			fp := l.parts[partKey{rt.Topic, rp.Partition}]
			switch {
			case fp == nil:
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Timestamp == -2:
				p.Offset = fp.logStart
			default:
				p.Offset = fp.leo()
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil, true
}

// leaderBatch is a batch of n records as a leader's log holds it: base
// offset and partition leader epoch set (neither is under the CRC).
func leaderBatch(t *testing.T, base int64, epoch int32, n int) []byte {
	t.Helper()
	kvs := make([]segment.KV, n)
	for i := range kvs {
		kvs[i] = segment.KV{Value: []byte(fmt.Sprintf("e%d-o%d", epoch, base+int64(i)))}
	}
	b, err := segment.BuildBatch(kvs, 1000+base)
	if err != nil {
		t.Fatal(err)
	}
	segment.SetBaseOffset(b, base)
	segment.SetPartitionLeaderEpoch(b, epoch)
	return b
}

// chain builds consecutive batches from base: sizes[i] records each, all
// in epoch.
func chain(t *testing.T, base int64, epoch int32, sizes ...int) [][]byte {
	var out [][]byte
	for _, n := range sizes {
		out = append(out, leaderBatch(t, base, epoch, n))
		base += int64(n)
	}
	return out
}

// openFollower opens replica t-0 and makes it follow in epoch, with
// batches already in its log.
func openFollower(t *testing.T, fs segment.FS, epoch int32, batches ...[]byte) *replica.Partition {
	t.Helper()
	return openFollowerAt(t, fs, 0, epoch, batches...)
}

// openFollowerAt opens replica t-index, replicated, and makes it follow
// in epoch, with batches already in its log.
func openFollowerAt(t *testing.T, fs segment.FS, index, epoch int32, batches ...[]byte) *replica.Partition {
	t.Helper()
	cfg := replica.Config{Replicated: true, Log: segment.Config{SegmentBytes: 1 << 20, IndexIntervalBytes: 4096, RetentionBytes: -1, RetentionMs: -1}}
	r, err := replica.Open(fs, fmt.Sprintf("/data/t-%d", index), "t", index, 0, cfg, nil, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.BecomeFollower(epoch); err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if _, err := r.AppendAsFollower(b); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
