package fetcher

import (
	"bytes"
	"net"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

const (
	testNode        = 7
	testBrokerEpoch = 42
)

var (
	topicID = [16]byte{1, 2, 3}
	part0   = Partition{Topic: "t", TopicID: topicID, Index: 0}
)

func newManager(t *testing.T, tweak ...func(*Config)) *Manager {
	t.Helper()
	cfg := Config{NodeID: testNode, BrokerEpoch: func() int64 { return testBrokerEpoch },
		MaxWait: 100 * time.Millisecond, Backoff: 20 * time.Millisecond, Logger: quietLogger()}
	for _, f := range tweak {
		f(&cfg)
	}
	m := New(cfg)
	t.Cleanup(m.Close)
	return m
}

// eventually polls cond for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// logBytes is the replica's log from its start to its high watermark.
func logBytes(t *testing.T, r *replica.Partition) []byte {
	t.Helper()
	res, err := r.Read(r.LogStartOffset(), 1<<30, true)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	var out []byte
	for _, fr := range res.Ranges {
		b := make([]byte, fr.Length)
		if _, err := fr.File.ReadAt(b, fr.Offset); err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func caughtUp(r *replica.Partition, leo int64) func() bool {
	return func() bool { return r.LogEndOffset() == leo && r.HighWatermark() == leo }
}

func checkEpochs(t *testing.T, r *replica.Partition, want ...replica.EpochEntry) {
	t.Helper()
	if got := r.EpochEntries(); !reflect.DeepEqual(got, want) {
		t.Fatalf("epoch history %v, want %v", got, want)
	}
}

// The follower stores the leader's batches byte for byte, with the
// leader's offsets and epochs, dropping the batch a size limit cut short.
func TestCopiesLeaderBatchesVerbatim(t *testing.T) {
	l := newFakeLeader(t)
	batches := append(chain(t, 0, 1, 3, 2), chain(t, 5, 3, 1, 4)...)
	l.set("t", 0, fakePart{batches: batches, epoch: 3, hw: -1})
	r := openFollower(t, segment.NewMemFS(), 3)
	m := newManager(t, func(c *Config) { c.MaxBytes = 150 }) // a batch and a piece of the next
	m.Follow(part0, r, Leader{ID: 1, Addr: l.addr}, 3)

	eventually(t, "caught up", caughtUp(r, 10))
	if got, want := logBytes(t, r), bytes.Join(batches, nil); !bytes.Equal(got, want) {
		t.Fatalf("follower log differs from the leader's:\n got %x\nwant %x", got, want)
	}
	checkEpochs(t, r, replica.EpochEntry{Epoch: 1, StartOffset: 0}, replica.EpochEntry{Epoch: 3, StartOffset: 5})
	st := m.Stats()
	if len(st) != 1 || st[0].Lag != 0 || st[0].LeaderHighWatermark != 10 || st[0].LogEndOffset != 10 || st[0].Fenced || st[0].Err != nil {
		t.Fatalf("stats %+v", st)
	}
}

// After each fetch the follower's high watermark is the leader's capped
// by its own LEO, and Stats reports the lag behind the leader's.
func TestHighWatermarkIsLeadersCappedByLEO(t *testing.T) {
	l := newFakeLeader(t)
	l.set("t", 0, fakePart{batches: chain(t, 0, 1, 3, 2, 5), epoch: 1, hw: 7})
	r := openFollower(t, segment.NewMemFS(), 1)
	m := newManager(t, func(c *Config) { c.MaxBytes = 1 }) // one batch per fetch
	arrived, release := l.holdAfter(1)
	m.Follow(part0, r, Leader{ID: 1, Addr: l.addr}, 1)
	<-arrived // the first answer is applied
	if r.LogEndOffset() != 3 || r.HighWatermark() != 3 {
		t.Fatalf("after one batch: LEO %d, HW %d; want 3, min(leader's 7, LEO 3)", r.LogEndOffset(), r.HighWatermark())
	}
	if st := m.Stats(); st[0].Lag != 4 || st[0].LeaderHighWatermark != 7 {
		t.Fatalf("stats %+v, want lag 4 behind the leader's HW 7", st[0])
	}
	close(release)
	eventually(t, "all fetched, HW 7", func() bool { return r.LogEndOffset() == 10 && r.HighWatermark() == 7 })
	l.set("t", 0, fakePart{batches: chain(t, 0, 1, 3, 2, 5), epoch: 1, hw: -1})
	eventually(t, "HW 10", caughtUp(r, 10))
}

// KIP-279: after two fast leader changes the follower's last epoch is
// unknown to the leader, its first truncation is not final, and the
// second DivergingEpoch takes it to where the logs agree.
func TestDivergingEpochTruncatesUntilTheLogsAgree(t *testing.T) {
	l := newFakeLeader(t)
	// Leader: epoch 1 wrote 0..3, epoch 2 wrote 4..5, it leads in 4 from 6.
	leaderLog := append(append(chain(t, 0, 1, 4), chain(t, 4, 2, 2)...), chain(t, 6, 4, 3)...)
	l.set("t", 0, fakePart{batches: leaderLog, epoch: 4, hw: -1})
	// Follower: epoch 1 reached it up to 4, then it led epoch 3 from 5.
	r := openFollower(t, segment.NewMemFS(), 3, append(chain(t, 0, 1, 4, 1), chain(t, 5, 3, 3)...)...)
	if err := r.BecomeFollower(4); err != nil {
		t.Fatal(err)
	}
	m := newManager(t)
	m.Follow(part0, r, Leader{ID: 1, Addr: l.addr}, 4)

	eventually(t, "caught up", caughtUp(r, 9))
	if got, want := logBytes(t, r), bytes.Join(leaderLog, nil); !bytes.Equal(got, want) {
		t.Fatalf("follower log differs from the leader's after truncation")
	}
	checkEpochs(t, r, replica.EpochEntry{Epoch: 1, StartOffset: 0}, replica.EpochEntry{Epoch: 2, StartOffset: 4},
		replica.EpochEntry{Epoch: 4, StartOffset: 6})
	var got [][2]int64
	for _, req := range l.requests()[:3] {
		p := req.Topics[0].Partitions[0]
		got = append(got, [2]int64{p.FetchOffset, int64(p.LastFetchedEpoch)})
	}
	// (8, 3): diverges at {2, 6}, the follower knows no epoch 2: cut to
	// the end of its epoch 1 (5) and ask again; (5, 1): {1, 4}, cut to 4.
	if want := [][2]int64{{8, 3}, {5, 1}, {4, 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("fetches (offset, last fetched epoch) %v, want %v", got, want)
	}
}

// A fetch offset below the leader's log start: the follower empties its
// log, restarts it at the leader's start and copies from there.
func TestOutOfRangeBelowLeaderStartTruncatesFully(t *testing.T) {
	l := newFakeLeader(t)
	leaderLog := chain(t, 20, 2, 4, 6)
	l.set("t", 0, fakePart{batches: leaderLog, epoch: 2, logStart: 20, hw: -1})
	r := openFollower(t, segment.NewMemFS(), 2, chain(t, 0, 1, 5)...)
	m := newManager(t)
	m.Follow(part0, r, Leader{ID: 1, Addr: l.addr}, 2)

	eventually(t, "caught up", caughtUp(r, 30))
	if r.LogStartOffset() != 20 {
		t.Fatalf("log start %d, want the leader's 20", r.LogStartOffset())
	}
	if !bytes.Equal(logBytes(t, r), bytes.Join(leaderLog, nil)) {
		t.Fatal("follower log differs from the leader's")
	}
	checkEpochs(t, r, replica.EpochEntry{Epoch: 2, StartOffset: 20})
}

// The leader's log start moving up (retention, DeleteRecords) moves the
// follower's.
func TestFollowsLeaderLogStart(t *testing.T) {
	l := newFakeLeader(t)
	leaderLog := chain(t, 0, 1, 5, 5)
	l.set("t", 0, fakePart{batches: leaderLog, epoch: 1, hw: -1})
	r := openFollower(t, segment.NewMemFS(), 1)
	m := newManager(t)
	m.Follow(part0, r, Leader{ID: 1, Addr: l.addr}, 1)
	eventually(t, "caught up", caughtUp(r, 10))
	l.set("t", 0, fakePart{batches: leaderLog[1:], epoch: 1, logStart: 5, hw: -1})
	eventually(t, "log start 5", func() bool { return r.LogStartOffset() == 5 })
}

// FENCED_LEADER_EPOCH (the leader is in a newer epoch than this broker's
// metadata): no more fetches until Follow names the newer epoch.
func TestFencedStopsUntilFollowWithNewerEpoch(t *testing.T) {
	l := newFakeLeader(t)
	l.set("t", 0, fakePart{batches: chain(t, 0, 5, 3), epoch: 5, hw: -1})
	r := openFollower(t, segment.NewMemFS(), 4)
	m := newManager(t)
	m.Follow(part0, r, Leader{ID: 1, Addr: l.addr}, 4)
	eventually(t, "fenced", func() bool { st := m.Stats(); return len(st) == 1 && st[0].Fenced })
	time.Sleep(10 * m.cfg.Backoff)
	if n := len(l.requests()); n != 1 {
		t.Fatalf("%d fetches after FENCED_LEADER_EPOCH, want the one", n)
	}
	if err := r.BecomeFollower(5); err != nil {
		t.Fatal(err)
	}
	m.Follow(part0, r, Leader{ID: 1, Addr: l.addr}, 5)
	eventually(t, "caught up in epoch 5", caughtUp(r, 3))
}

// UNKNOWN_LEADER_EPOCH (the leader has not heard of our epoch yet):
// retried after the backoff, not in a loop, until the leader catches up.
func TestUnknownLeaderEpochBacksOffAndRetries(t *testing.T) {
	l := newFakeLeader(t)
	l.set("t", 0, fakePart{batches: chain(t, 0, 3, 3), epoch: 3, hw: -1})
	r := openFollower(t, segment.NewMemFS(), 4)
	m := newManager(t, func(c *Config) { c.Backoff = 50 * time.Millisecond })
	m.Follow(part0, r, Leader{ID: 1, Addr: l.addr}, 4)
	time.Sleep(300 * time.Millisecond)
	if n := len(l.requests()); n < 2 || n > 10 {
		t.Fatalf("%d fetches in 300ms with a 50ms backoff", n)
	}
	l.set("t", 0, fakePart{batches: chain(t, 0, 3, 3), epoch: 4, hw: -1})
	eventually(t, "caught up", caughtUp(r, 3))
}

// A Follow with a newer epoch while a fetch is in flight: the answer to
// the old fetch is dropped, and the next fetch is the new assignment's.
func TestFollowNewEpochDropsTheAnswerInFlight(t *testing.T) {
	l := newFakeLeader(t)
	l.set("t", 0, fakePart{batches: append(chain(t, 0, 1, 1), chain(t, 1, 1, 3)...), epoch: 1, hw: -1})
	r := openFollower(t, segment.NewMemFS(), 1, chain(t, 0, 1, 1)...)
	m := newManager(t)
	arrived, release := l.holdAfter(0)
	m.Follow(part0, r, Leader{ID: 1, Addr: l.addr}, 1)
	<-arrived // answered with epoch 1's batch at 1, held

	newLog := append(chain(t, 0, 1, 1), chain(t, 1, 2, 2)...)
	l.set("t", 0, fakePart{batches: newLog, epoch: 2, hw: -1})
	if err := r.BecomeFollower(2); err != nil {
		t.Fatal(err)
	}
	m.Follow(part0, r, Leader{ID: 1, Addr: l.addr}, 2)
	close(release)

	// Had the old answer been appended, the log would end at 4 and the
	// new leader's batch at 1 would never fit.
	eventually(t, "caught up in epoch 2", caughtUp(r, 3))
	if !bytes.Equal(logBytes(t, r), bytes.Join(newLog, nil)) {
		t.Fatal("follower log differs from the new leader's")
	}
	checkEpochs(t, r, replica.EpochEntry{Epoch: 1, StartOffset: 0}, replica.EpochEntry{Epoch: 2, StartOffset: 1})
}

// Unfollow while a fetch for the partition is in flight: its answer is
// not appended, while the partition that stays gets its part of it.
func TestUnfollowDuringFetchAppendsNothing(t *testing.T) {
	l := newFakeLeader(t)
	l.set("t", 0, fakePart{batches: chain(t, 0, 1, 3), epoch: 1, hw: -1})
	l.set("t", 1, fakePart{batches: chain(t, 0, 1, 3), epoch: 1, hw: -1})
	fs := segment.NewMemFS()
	r0 := openFollower(t, fs, 1)
	r1 := openFollowerAt(t, fs, 1, 1)
	m := newManager(t)
	arrived, release := l.holdWhen(func(req *kmsg.FetchRequest) bool { return len(req.Topics[0].Partitions) == 2 })
	leader := Leader{ID: 1, Addr: l.addr}
	m.Follow(Partition{Topic: "t", TopicID: topicID, Index: 1}, r1, leader, 1)
	m.Follow(part0, r0, leader, 1)
	<-arrived // both asked from 0, answered, held
	if r0.LogEndOffset() != 0 {
		t.Fatalf("partition 0 fetched before the held answer: LEO %d", r0.LogEndOffset())
	}
	m.Unfollow(part0)
	close(release)
	eventually(t, "partition 1 caught up", caughtUp(r1, 3))
	if r0.LogEndOffset() != 0 {
		t.Fatalf("unfollowed partition appended to: LEO %d", r0.LogEndOffset())
	}
	if st := m.Stats(); len(st) != 1 || st[0].Partition.Index != 1 {
		t.Fatalf("stats %+v, want partition 1 only", st)
	}
}

// Following and unfollowing under a stream of data: once Unfollow
// returned, the replica does not change.
func TestNothingAppendedAfterUnfollowReturns(t *testing.T) {
	l := newFakeLeader(t)
	var batches [][]byte
	for i := range 400 {
		batches = append(batches, leaderBatch(t, int64(i), 1, 1))
	}
	l.set("t", 0, fakePart{batches: batches, epoch: 1, hw: -1})
	r := openFollower(t, segment.NewMemFS(), 1)
	m := newManager(t, func(c *Config) { c.MaxBytes = 1 })
	for i := range 10 {
		m.Follow(part0, r, Leader{ID: 1, Addr: l.addr}, 1)
		time.Sleep(time.Duration(i) * time.Millisecond)
		m.Unfollow(part0)
		leo := r.LogEndOffset()
		time.Sleep(5 * time.Millisecond)
		if r.LogEndOffset() != leo {
			t.Fatalf("round %d: LEO moved from %d to %d after Unfollow", i, leo, r.LogEndOffset())
		}
	}
}

// The request carries the follower's identity, epochs and offsets, in
// each form the negotiated version has.
func TestRequestCarriesFollowerState(t *testing.T) {
	for _, maxFetch := range []int16{-1, 14, 12} {
		t.Run("fetch_v"+strconv.Itoa(int(maxFetch)), func(t *testing.T) {
			var opts []kfake.Opt
			if maxFetch >= 0 {
				vs := kversion.Stable()
				vs.SetMaxKeyVersion(int16(kmsg.Fetch), maxFetch)
				opts = append(opts, kfake.MaxVersions(vs))
			}
			l := newFakeLeader(t, opts...)
			l.set("t", 0, fakePart{batches: chain(t, 0, 1, 3, 2), epoch: 3, hw: -1})
			r := openFollower(t, segment.NewMemFS(), 3, chain(t, 0, 1, 3)...)
			m := newManager(t)
			m.Follow(part0, r, Leader{ID: 1, Addr: l.addr}, 3)
			eventually(t, "caught up", caughtUp(r, 5))

			req := l.requests()[0]
			if maxFetch >= 0 && req.Version != maxFetch || req.Version < 12 {
				t.Fatalf("Fetch v%d, leader supports up to v%d", req.Version, maxFetch)
			}
			if req.Version >= 15 && (req.ReplicaState.ID != testNode || req.ReplicaState.Epoch != testBrokerEpoch) {
				t.Fatalf("v%d ReplicaState %+v, want {%d %d}", req.Version, req.ReplicaState, testNode, testBrokerEpoch)
			}
			if req.Version < 15 && req.ReplicaID != testNode {
				t.Fatalf("v%d ReplicaID %d, want %d", req.Version, req.ReplicaID, testNode)
			}
			if req.MaxWaitMillis != 100 || req.MinBytes != 1 || req.MaxBytes != 10<<20 || req.SessionID != 0 || req.SessionEpoch != 0 {
				t.Fatalf("request %+v: want a full fetch asking for a session (id 0, epoch 0) with the configured waits and sizes", req)
			}
			tp := req.Topics[0]
			if req.Version >= 13 && tp.TopicID != topicID || req.Version < 13 && tp.Topic != "t" {
				t.Fatalf("v%d topic %q %x", req.Version, tp.Topic, tp.TopicID)
			}
			p := tp.Partitions[0]
			want := kmsg.NewFetchRequestTopicPartition()
			want.CurrentLeaderEpoch, want.FetchOffset, want.LastFetchedEpoch, want.LogStartOffset, want.PartitionMaxBytes = 3, 3, 1, 0, 1<<20
			p.UnknownTags, want.UnknownTags = kmsg.Tags{}, kmsg.Tags{}
			if !reflect.DeepEqual(p, want) {
				t.Fatalf("partition %+v, want %+v", p, want)
			}
		})
	}
}

// A leader older than Fetch v12 cannot tell a follower where its log
// diverges: nothing is appended from it.
func TestLeaderBelowFetchV12IsRefused(t *testing.T) {
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(int16(kmsg.Fetch), 11)
	l := newFakeLeader(t, kfake.MaxVersions(vs))
	l.set("t", 0, fakePart{batches: chain(t, 0, 1, 3), epoch: 1, hw: -1})
	r := openFollower(t, segment.NewMemFS(), 1)
	m := newManager(t)
	m.Follow(part0, r, Leader{ID: 1, Addr: l.addr}, 1)
	eventually(t, "two fetches", func() bool { return len(l.requests()) >= 2 })
	if r.LogEndOffset() != 0 {
		t.Fatalf("appended %d records from a v%d leader", r.LogEndOffset(), l.requests()[0].Version)
	}
}

// A leader that is down: the fetcher backs off between attempts (no busy
// loop) and copies once the leader is back on the same address.
func TestLeaderDownBacksOffThenRecovers(t *testing.T) {
	port := testkit.FreePorts(t, 1)[0]
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var dials atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			c.Close()
		}
	}()
	r := openFollower(t, segment.NewMemFS(), 1)
	m := newManager(t, func(c *Config) { c.Backoff = 50 * time.Millisecond })
	m.Follow(part0, r, Leader{ID: 1, Addr: addr}, 1)
	time.Sleep(300 * time.Millisecond)
	ln.Close()
	// franz-go dials up to three times per attempt (it retries
	// ApiVersions at v0 on a closed connection), sometimes more on a
	// loaded machine: ~6 attempts here. A busy loop dials hundreds.
	if n := dials.Load(); n < 2 || n > 60 {
		t.Fatalf("%d connections in 300ms with a 50ms backoff", n)
	}

	l := newFakeLeader(t, kfake.Ports(port))
	l.set("t", 0, fakePart{batches: chain(t, 0, 1, 3), epoch: 1, hw: -1})
	eventually(t, "caught up after the leader came back", caughtUp(r, 3))
}

// A replica whose log a storage error poisoned is not fetched any more.
func TestPoisonedReplicaIsNotFetched(t *testing.T) {
	l := newFakeLeader(t)
	l.set("t", 0, fakePart{batches: chain(t, 0, 1, 3), epoch: 1, hw: -1})
	efs := segment.NewErrorFS(segment.NewMemFS())
	r := openFollower(t, efs, 1)
	efs.Inject(segment.Fault{Ops: segment.OpWrite, Path: segment.PathSuffix(".log"), Written: 10})
	efs.Inject(segment.Fault{Ops: segment.OpTruncate, Path: segment.PathSuffix(".log"), Sticky: true})
	m := newManager(t)
	m.Follow(part0, r, Leader{ID: 1, Addr: l.addr}, 1)
	eventually(t, "failed", func() bool { st := m.Stats(); return st[0].Err != nil })
	if r.Poisoned() == nil {
		t.Fatal("replica not poisoned: the fault did not hit")
	}
	n := len(l.requests())
	time.Sleep(10 * m.cfg.Backoff)
	if got := len(l.requests()); got != n {
		t.Fatalf("%d more fetches for a poisoned replica", got-n)
	}
}

func TestWholeBatchesDropsATrailingPiece(t *testing.T) {
	b1, b2 := leaderBatch(t, 0, 1, 2), leaderBatch(t, 2, 1, 3)
	both := append(append([]byte(nil), b1...), b2...)
	for _, tc := range []struct {
		name string
		in   []byte
		want int
	}{
		{"empty", nil, 0},
		{"whole", both, len(both)},
		{"cut in the second batch", both[:len(b1)+20], len(b1)},
		{"cut in the second length field", both[:len(b1)+10], len(b1)},
		{"cut in the first batch", b1[:len(b1)-1], 0},
	} {
		if got := len(wholeBatches(tc.in)); got != tc.want {
			t.Errorf("%s: %d bytes kept, want %d", tc.name, got, tc.want)
		}
	}
	corrupt := append([]byte(nil), b1...)
	corrupt[11] = 3 // length 3: not a batch; kept for the append to refuse
	if got := wholeBatches(corrupt); len(got) != len(corrupt) {
		t.Errorf("corrupt length: %d bytes kept, want all %d", len(got), len(corrupt))
	}
}

// Partitions of one leader are hashed over num.replica.fetchers
// fetchers, each with its own requests; Close stops them all.
func TestPartitionsSpreadOverFetchersAndCloseStops(t *testing.T) {
	l := newFakeLeader(t)
	fs := segment.NewMemFS()
	m := newManager(t, func(c *Config) { c.NumFetchers = 2 })
	var rs []*replica.Partition
	for i := range int32(6) {
		l.set("t", i, fakePart{batches: chain(t, 0, 1, 2), epoch: 1, hw: -1})
		r := openFollowerAt(t, fs, i, 1)
		rs = append(rs, r)
		m.Follow(Partition{Topic: "t", TopicID: topicID, Index: i}, r, Leader{ID: 1, Addr: l.addr}, 1)
	}
	for i, r := range rs {
		eventually(t, "partition "+strconv.Itoa(i)+" caught up", caughtUp(r, 2))
	}
	used := map[int]bool{}
	for _, req := range l.requests() {
		ps := req.Topics[0].Partitions
		idx := fetcherIndex(Partition{Topic: "t", Index: ps[0].Partition}, 2)
		used[idx] = true
		for _, p := range ps {
			if got := fetcherIndex(Partition{Topic: "t", Index: p.Partition}, 2); got != idx {
				t.Fatalf("one request names partitions of fetchers %d and %d", idx, got)
			}
		}
	}
	if len(used) != 2 {
		t.Fatalf("requests came from fetchers %v, want both", used)
	}
	if st := m.Stats(); len(st) != 6 || st[0].Partition.Index != 0 || st[5].Partition.Index != 5 {
		t.Fatalf("stats %+v, want the six partitions in order", st)
	}
	m.Close()
	n := len(l.requests())
	time.Sleep(50 * time.Millisecond)
	if got := len(l.requests()); got != n {
		t.Fatalf("%d fetches after Close", got-n)
	}
	m.Follow(part0, rs[0], Leader{ID: 1, Addr: l.addr}, 2)
	if len(m.Stats()) != 0 {
		t.Fatal("Follow after Close took a partition")
	}
}

// Right after a leader change the new leader may refuse a fetch until it
// has applied the metadata; the follower asks again within tens of
// milliseconds, not a whole replica.fetch.backoff.ms, so acks=all produces
// are not held that long.
func TestRefusedByANewLeaderRetriesSoon(t *testing.T) {
	l := newFakeLeader(t)
	l.set("t", 0, fakePart{batches: chain(t, 0, 3, 3), epoch: 3, hw: -1})
	r := openFollower(t, segment.NewMemFS(), 4)
	m := newManager(t, func(c *Config) { c.Backoff = 5 * time.Second })
	m.Follow(part0, r, Leader{ID: 1, Addr: l.addr}, 4)
	time.Sleep(100 * time.Millisecond) // refused: the leader is still in epoch 3
	l.set("t", 0, fakePart{batches: chain(t, 0, 3, 3), epoch: 4, hw: -1})
	start := time.Now()
	eventually(t, "caught up", caughtUp(r, 3))
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("caught up %v after the leader took the epoch; the follower waited out its 5 s backoff", took)
	}
}
