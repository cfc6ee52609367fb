package isr

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// testConfig is a three-replica partition led by broker 1 in leader epoch 5,
// everything at offset 10, min.insync.replicas=2, lag 1000 ms.
func testConfig() LeaderConfig {
	return LeaderConfig{
		ID: 1, BrokerEpoch: 100, LeaderEpoch: 5, PartitionEpoch: 10,
		Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3},
		Brokers: []Broker{{ID: 1, Epoch: 100}, {ID: 2, Epoch: 200}, {ID: 3, Epoch: 300}},
		MinISR:  2, LagTimeMaxMs: 1000,
		EpochStartOffset: 10, HighWatermark: 10, LogEndOffset: 10,
	}
}

func newLeader(t *testing.T, mod func(*LeaderConfig)) *Leader {
	t.Helper()
	cfg := testConfig()
	if mod != nil {
		mod(&cfg)
	}
	l, err := NewLeader(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	l.Ready()
	return l
}

// fetchAt is a well-formed follower fetch of replica id at offset, with its
// registered broker epoch (id*100) and the leader's current epoch and LEO.
func fetchAt(l *Leader, id int32, offset, nowMs int64) error {
	_, err := l.Fetch(FollowerFetch{
		ReplicaID: id, BrokerEpoch: int64(id) * 100, CurrentLeaderEpoch: l.LeaderEpoch(),
		FetchOffset: offset, LastFetchedEpoch: UndefinedEpoch,
		LeaderLogEndOffset: l.LogEndOffset(),
	}, nil, nowMs)
	return err
}

func mustFetch(t *testing.T, l *Leader, id int32, offset, nowMs int64) {
	t.Helper()
	if err := fetchAt(l, id, offset, nowMs); err != nil {
		t.Fatalf("fetch by %d at %d: %v", id, offset, err)
	}
}

func wantKerr(t *testing.T, err error, want *kerr.Error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %s", err, want.Message)
	}
}

// KIP-320 (Partition.checkCurrentLeaderEpoch) and followerReplicaOrThrow.
func TestFetchFencing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replica  int32
		epoch    int32
		brokerEp int64
		want     *kerr.Error
	}{
		{"older leader epoch is FENCED_LEADER_EPOCH", 2, 4, 200, kerr.FencedLeaderEpoch},
		{"newer leader epoch is UNKNOWN_LEADER_EPOCH", 2, 6, 200, kerr.UnknownLeaderEpoch},
		{"no leader epoch skips the check", 2, UndefinedEpoch, 200, nil},
		{"unknown replica with an epoch is UNKNOWN_LEADER_EPOCH", 9, 5, 900, kerr.UnknownLeaderEpoch},
		{"unknown replica without an epoch is NOT_LEADER_OR_FOLLOWER", 9, UndefinedEpoch, 900, kerr.NotLeaderForPartition},
		{"stale broker epoch is NOT_LEADER_OR_FOLLOWER (Replica.updateFetchStateOrThrow)", 2, 5, 199, kerr.NotLeaderForPartition},
		{"broker epoch -1 is not checked", 2, 5, -1, nil},
		{"newer broker epoch than cached is accepted", 2, 5, 201, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLeader(t, nil)
			_, err := l.Fetch(FollowerFetch{ReplicaID: tc.replica, BrokerEpoch: tc.brokerEp, CurrentLeaderEpoch: tc.epoch,
				FetchOffset: 10, LastFetchedEpoch: UndefinedEpoch, LeaderLogEndOffset: 10}, nil, 1)
			wantKerr(t, err, tc.want)
			if got := l.Stats().Followers[0].LogEndOffset; (tc.want == nil) != (got == 10) {
				t.Fatalf("follower 2 LEO = %d after err %v: a refused fetch must not update it", got, err)
			}
		})
	}
}

// Partition.readRecords: DivergingEpoch when the follower's last fetched epoch
// ends earlier (or is older) on the leader; OFFSET_OUT_OF_RANGE when the
// epoch has no end offset or the offset is outside the log.
func TestFetchDivergingEpoch(t *testing.T) {
	// The leader's cache: epoch 2 from 0, epoch 4 from 3, epoch 5 from 6; LEO 10.
	cache := []EpochEntry{{2, 0}, {4, 3}, {5, 6}}
	lookup := func(e int32) (int32, int64) { r := EndOffsetFor(cache, e, 10); return r.Epoch, r.EndOffset }
	for _, tc := range []struct {
		name      string
		offset    int64
		lastEpoch int32
		logStart  int64
		div       *EpochEndOffset
		err       *kerr.Error
	}{
		{"same epoch history, no divergence", 5, 4, 0, nil, nil},
		{"follower ahead in epoch 4", 8, 4, 0, &EpochEndOffset{4, 6}, nil},
		{"epoch 3 unknown to the leader: its floor 2 ends at 3", 5, 3, 0, &EpochEndOffset{2, 3}, nil},
		{"epoch older than the cache answers the requested epoch and first start", 0, 1, 0, nil, nil},
		{"epoch beyond the leader's latest has no end offset", 10, 7, 0, nil, kerr.OffsetOutOfRange},
		{"fetch offset below log start with an epoch", 3, 2, 4, nil, kerr.OffsetOutOfRange},
		{"fetch offset beyond the leader's LEO", 11, UndefinedEpoch, 0, nil, kerr.OffsetOutOfRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLeader(t, nil)
			div, err := l.Fetch(FollowerFetch{ReplicaID: 2, BrokerEpoch: 200, CurrentLeaderEpoch: 5, FetchOffset: tc.offset,
				LastFetchedEpoch: tc.lastEpoch, LeaderLogStartOffset: tc.logStart, LeaderLogEndOffset: 10}, lookup, 1)
			wantKerr(t, err, tc.err)
			if (div == nil) != (tc.div == nil) || (div != nil && *div != *tc.div) {
				t.Fatalf("diverging = %v, want %v", div, tc.div)
			}
			updated := l.Stats().Followers[0].LogEndOffset == tc.offset
			if updated != (tc.err == nil && tc.div == nil) {
				t.Fatalf("follower state updated = %v; only a fetch that reads may update it", updated)
			}
		})
	}
}

// Replica.updateFetchStateOrThrow: lastCaughtUpTimeMs is the latest time t at
// which the follower's fetch offset reached the leader's LEO of time t.
func TestLastCaughtUp(t *testing.T) {
	l := newLeader(t, nil)
	caughtUp := func() int64 { return l.Stats().Followers[0].LastCaughtUpMs }
	steps := []struct {
		leaderLEO, offset, now, want int64
	}{
		{10, 10, 100, 100}, // reached the LEO before the read: now
		{12, 10, 200, 100}, // reached the previous fetch's LEO (10): the previous fetch time
		{14, 12, 300, 200}, // reached the previous LEO (12): caught up at 200
		{16, 13, 400, 200}, // below the previous LEO (14): unchanged
		{16, 16, 500, 500},
	}
	for i, s := range steps {
		l.Append(s.leaderLEO, s.now)
		mustFetch(t, l, 2, s.offset, s.now)
		if got := caughtUp(); got != s.want {
			t.Fatalf("step %d: lastCaughtUp = %d, want %d", i, got, s.want)
		}
	}
}

// The follower's log start offset is kept for the DeleteRecords low
// watermark (Partition.lowWatermarkIfLeader).
func TestFollowerLogStart(t *testing.T) {
	l := newLeader(t, nil)
	if _, err := l.Fetch(FollowerFetch{ReplicaID: 3, BrokerEpoch: 300, CurrentLeaderEpoch: 5, FetchOffset: 10,
		LastFetchedEpoch: UndefinedEpoch, LogStartOffset: 4, LeaderLogEndOffset: 10}, nil, 1); err != nil {
		t.Fatal(err)
	}
	if fs := l.Stats().Followers; fs[0].LogStartOffset != -1 || fs[1].LogStartOffset != 4 {
		t.Fatalf("follower log starts %+v, want -1 (no fetch) and 4", fs)
	}
}

// Partition.maybeIncrementLeaderHW.
func TestHighWatermark(t *testing.T) {
	t.Run("min LEO over the ISR, and an ISR follower that has not fetched holds it", func(t *testing.T) {
		l := newLeader(t, nil)
		l.Append(20, 1)
		mustFetch(t, l, 2, 15, 1)
		if hw := l.HighWatermark(); hw != 10 {
			t.Fatalf("HW = %d, want 10: follower 3 has not fetched in this epoch", hw)
		}
		mustFetch(t, l, 3, 13, 1)
		if hw := l.HighWatermark(); hw != 13 {
			t.Fatalf("HW = %d, want 13", hw)
		}
		if rd := l.Ready(); !rd.HighWatermarkAdvanced || rd.HighWatermark != 13 {
			t.Fatalf("Ready = %+v, want an advance to 13", rd)
		}
		if rd := l.Ready(); rd.HighWatermarkAdvanced {
			t.Fatal("Ready reported the same advance twice")
		}
	})
	t.Run("never backwards", func(t *testing.T) {
		l := newLeader(t, nil)
		l.Append(20, 1)
		mustFetch(t, l, 2, 20, 1)
		mustFetch(t, l, 3, 20, 1)
		mustFetch(t, l, 3, 12, 2) // a follower that truncated
		if hw := l.HighWatermark(); hw != 20 {
			t.Fatalf("HW = %d, want 20", hw)
		}
	})
	t.Run("strict min ISR: no advance below min ISR, even for acks=1 (KAFKA-15583)", func(t *testing.T) {
		l := newLeader(t, func(c *LeaderConfig) { c.ISR = []int32{1} })
		l.Append(20, 1)
		if hw := l.HighWatermark(); hw != 10 {
			t.Fatalf("HW = %d, want 10 with ISR [1] < min ISR 2", hw)
		}
	})
	t.Run("effective min ISR is min(min.insync.replicas, RF)", func(t *testing.T) {
		l := newLeader(t, func(c *LeaderConfig) { c.Replicas, c.ISR, c.MinISR = []int32{1}, []int32{1}, 3 })
		l.Append(20, 1)
		if hw := l.HighWatermark(); hw != 20 {
			t.Fatalf("HW = %d, want 20 (RF 1 caps min ISR 3)", hw)
		}
	})
	t.Run("a caught-up eligible follower outside the ISR holds the HW until it joins", func(t *testing.T) {
		l := newLeader(t, func(c *LeaderConfig) { c.ISR = []int32{1, 2} })
		mustFetch(t, l, 3, 10, 1) // caught up at 1; joins? LEO 10 >= HW 10: proposes expansion
		if rd := l.Ready(); rd.Proposal == nil {
			t.Fatal("no expansion proposed")
		}
		l.HandleAlterPartition(1, AlterResult{Err: kerr.IneligibleReplica}, 2) // reset: 3 outside the ISR again
		l.Append(20, 3)
		mustFetch(t, l, 2, 20, 3)
		if hw := l.HighWatermark(); hw != 10 {
			t.Fatalf("HW = %d, want 10: follower 3 is caught up and eligible", hw)
		}
		l.Tick(2000) // 3 fell out of the caught-up window: stops holding the HW
		if hw := l.HighWatermark(); hw != 20 {
			t.Fatalf("HW = %d after the lag window, want 20", hw)
		}
	})
	t.Run("an ineligible follower outside the ISR does not hold the HW", func(t *testing.T) {
		l := newLeader(t, func(c *LeaderConfig) {
			c.ISR = []int32{1, 2}
			c.Brokers[2].Fenced = true
		})
		mustFetch(t, l, 3, 10, 1)
		l.Append(20, 1)
		mustFetch(t, l, 2, 20, 1)
		if hw := l.HighWatermark(); hw != 20 {
			t.Fatalf("HW = %d, want 20: fenced follower 3 cannot join, so it does not hold the HW", hw)
		}
	})
}

// Partition.maybeShrinkIsr and the KIP-497 asymmetry: a pending shrink does
// not count until committed.
func TestShrink(t *testing.T) {
	l := newLeader(t, nil)
	l.Append(20, 0)
	mustFetch(t, l, 2, 20, 500)
	l.Tick(900)
	if rd := l.Ready(); rd.Proposal != nil {
		t.Fatalf("shrink proposed within the lag window: %+v", rd.Proposal)
	}
	l.Tick(1001) // 3 has not caught up since 0
	rd := l.Ready()
	if rd.Proposal == nil || len(rd.Proposal.ISR) != 2 || rd.Proposal.ISR[1].ID != 2 {
		t.Fatalf("want a shrink to [1 2], got %+v", rd.Proposal)
	}
	if got := l.HighWatermark(); got != 10 {
		t.Fatalf("HW = %d while the shrink is pending, want 10: a pending shrink must not count", got)
	}
	if !slices.Equal(l.MaximalISR(), []int32{1, 2, 3}) {
		t.Fatalf("maximal ISR = %v during a pending shrink, want the committed [1 2 3]", l.MaximalISR())
	}
	mustFetch(t, l, 2, 20, 1500)
	l.Tick(1600)
	if rd := l.Ready(); rd.Proposal != nil {
		t.Fatal("a second AlterPartition while one is in flight")
	}
	if out := l.HandleAlterPartition(rd.Proposal.ID, AlterResult{LeaderEpoch: 5, PartitionEpoch: 11, ISR: []int32{1, 2}}, 1700); out != AlterCommitted {
		t.Fatalf("outcome %v, want committed", out)
	}
	if got := l.HighWatermark(); got != 20 {
		t.Fatalf("HW = %d after the shrink committed, want 20", got)
	}
	if s := l.Stats(); s.ISRShrinks != 1 || !s.UnderReplicated || s.UnderMinISR || !s.AtMinISR {
		t.Fatalf("stats %+v", s)
	}
}

// Partition.maybeExpandIsr / isFollowerInSync / isReplicaIsrEligible.
func TestExpand(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mod    func(*LeaderConfig)
		offset int64
		bEpoch int64
		want   bool
	}{
		{"LEO at HW and epoch start joins", nil, 10, 300, true},
		{"LEO below HW does not", func(c *LeaderConfig) { c.HighWatermark = 12; c.LogEndOffset = 15; c.EpochStartOffset = 5 }, 11, 300, false},
		{"LEO below the epoch start does not (Kip320.tla rule 4)", func(c *LeaderConfig) { c.HighWatermark = 8; c.EpochStartOffset = 10 }, 9, 300, false},
		{"fenced broker does not (KIP-841)", func(c *LeaderConfig) { c.Brokers[2].Fenced = true }, 10, 300, false},
		{"shutting-down broker does not", func(c *LeaderConfig) { c.Brokers[2].ShuttingDown = true }, 10, 300, false},
		{"unregistered broker does not", func(c *LeaderConfig) { c.Brokers = c.Brokers[:2] }, 10, 300, false},
		{"fetch with a newer broker epoch than registered does not (KIP-903)", nil, 10, 301, false},
		{"broker epoch -1 bypasses the epoch check", nil, 10, -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLeader(t, func(c *LeaderConfig) {
				c.ISR = []int32{1, 2}
				if tc.mod != nil {
					tc.mod(c)
				}
			})
			_, err := l.Fetch(FollowerFetch{ReplicaID: 3, BrokerEpoch: tc.bEpoch, CurrentLeaderEpoch: 5, FetchOffset: tc.offset,
				LastFetchedEpoch: UndefinedEpoch, LeaderLogEndOffset: l.LogEndOffset()}, nil, 1)
			wantKerr(t, err, nil)
			rd := l.Ready()
			if (rd.Proposal != nil) != tc.want {
				t.Fatalf("proposal %+v, want one: %v", rd.Proposal, tc.want)
			}
			if tc.want && (!slices.Equal(l.MaximalISR(), []int32{1, 2, 3}) || !slices.Equal(l.ISR(), []int32{1, 2})) {
				t.Fatalf("pending expansion: maximal %v committed %v; the expansion must count at once", l.MaximalISR(), l.ISR())
			}
		})
	}
}

// KIP-497: an expansion in flight holds the HW at once, even after the new
// member stops counting as caught up.
func TestPendingExpansionHoldsHW(t *testing.T) {
	l := newLeader(t, func(c *LeaderConfig) { c.ISR = []int32{1, 2} })
	mustFetch(t, l, 3, 10, 1)
	l.Append(20, 2)
	mustFetch(t, l, 2, 20, 5000) // long after 3 last caught up
	if hw := l.HighWatermark(); hw != 10 {
		t.Fatalf("HW = %d, want 10: replica 3 is in the maximal ISR while its expansion is in flight", hw)
	}
}

// addBrokerEpochToIsr: own epoch, each follower's last fetched broker epoch,
// -1 for one that has not fetched.
func TestProposalBrokerEpochs(t *testing.T) {
	l := newLeader(t, func(c *LeaderConfig) { c.ISR = []int32{1, 2} })
	mustFetch(t, l, 3, 10, 1)
	p := l.Ready().Proposal
	want := []BrokerState{{1, 100}, {2, -1}, {3, 300}}
	if p == nil || !slices.Equal(p.ISR, want) || p.LeaderEpoch != 5 || p.PartitionEpoch != 10 || p.LeaderID != 1 {
		t.Fatalf("proposal %+v, want ISR %v at epochs 5/10", p, want)
	}
}

// Partition.handleAlterPartitionUpdate / handleAlterPartitionError.
func TestHandleAlterPartition(t *testing.T) {
	ok := AlterResult{LeaderEpoch: 5, PartitionEpoch: 11, ISR: []int32{1, 2, 3}}
	for _, tc := range []struct {
		name     string
		id       uint64
		res      AlterResult
		want     AlterOutcome
		maximal  []int32
		inFlight bool
		resent   bool
	}{
		{"success commits", 1, ok, AlterCommitted, []int32{1, 2, 3}, false, false},
		{"equal partition epoch: no change needed, commits", 1, AlterResult{LeaderEpoch: 5, PartitionEpoch: 10, ISR: []int32{1, 2, 3}}, AlterCommitted, []int32{1, 2, 3}, false, false},
		{"another proposal's answer is ignored", 7, ok, AlterIgnored, []int32{1, 2, 3}, true, false},
		{"other leader epoch is ignored", 1, AlterResult{LeaderEpoch: 6, PartitionEpoch: 11, ISR: []int32{1, 2, 3}}, AlterIgnored, []int32{1, 2, 3}, true, false},
		{"older partition epoch is ignored", 1, AlterResult{LeaderEpoch: 5, PartitionEpoch: 9, ISR: []int32{1, 2, 3}}, AlterIgnored, []int32{1, 2, 3}, true, false},
		{"INELIGIBLE_REPLICA resets to committed", 1, AlterResult{Err: kerr.IneligibleReplica}, AlterReset, []int32{1, 2}, false, false},
		{"OPERATION_NOT_ATTEMPTED resets to committed", 1, AlterResult{Err: kerr.OperationNotAttempted}, AlterReset, []int32{1, 2}, false, false},
		{"FENCED_LEADER_EPOCH stays pending", 1, AlterResult{Err: kerr.FencedLeaderEpoch}, AlterPending, []int32{1, 2, 3}, true, false},
		{"INVALID_UPDATE_VERSION stays pending", 1, AlterResult{Err: kerr.InvalidUpdateVersion}, AlterPending, []int32{1, 2, 3}, true, false},
		{"NEW_LEADER_ELECTED stays pending", 1, AlterResult{Err: kerr.NewLeaderElected}, AlterPending, []int32{1, 2, 3}, true, false},
		{"other errors retry", 1, AlterResult{Err: kerr.NotController}, AlterRetry, []int32{1, 2, 3}, true, true},
		{"transport errors retry", 1, AlterResult{Err: errors.New("connection reset")}, AlterRetry, []int32{1, 2, 3}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLeader(t, func(c *LeaderConfig) { c.ISR = []int32{1, 2} })
			mustFetch(t, l, 3, 10, 1)
			if p := l.Ready().Proposal; p == nil || p.ID != 1 {
				t.Fatalf("want proposal 1, got %+v", p)
			}
			if got := l.HandleAlterPartition(tc.id, tc.res, 2); got != tc.want {
				t.Fatalf("outcome %d, want %d", got, tc.want)
			}
			_, inFlight := l.Pending()
			if !slices.Equal(l.MaximalISR(), tc.maximal) || inFlight != tc.inFlight {
				t.Fatalf("maximal ISR %v in flight %v, want %v %v", l.MaximalISR(), inFlight, tc.maximal, tc.inFlight)
			}
			if resent := l.Ready().Proposal != nil; resent != tc.resent {
				t.Fatalf("proposal handed out again = %v, want %v", resent, tc.resent)
			}
		})
	}
}

// Partition.appendRecordsToLeader and checkEnoughReplicasReachOffset.
func TestAcksAll(t *testing.T) {
	t.Run("NOT_ENOUGH_REPLICAS before the append on the committed ISR, acks=all only", func(t *testing.T) {
		l := newLeader(t, func(c *LeaderConfig) { c.ISR = []int32{1} })
		wantKerr(t, l.CheckAppend(-1), kerr.NotEnoughReplicas)
		wantKerr(t, l.CheckAppend(1), nil)
		wantKerr(t, l.CheckAppend(0), nil)
		mustFetch(t, l, 2, 10, 1) // pending expansion to [1 2] does not count before the append
		wantKerr(t, l.CheckAppend(-1), kerr.NotEnoughReplicas)
	})
	t.Run("done once the HW covers the offset; NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank", func(t *testing.T) {
		l := newLeader(t, nil)
		wantKerr(t, l.CheckAppend(-1), nil)
		l.Append(15, 1)
		if done, err := l.CheckEnoughReplicasReachOffset(15); done || err != nil {
			t.Fatalf("done %v err %v before the HW reached 15", done, err)
		}
		mustFetch(t, l, 2, 15, 2)
		mustFetch(t, l, 3, 15, 2)
		if done, err := l.CheckEnoughReplicasReachOffset(15); !done || err != nil {
			t.Fatalf("done %v err %v at HW 15", done, err)
		}
		if _, err := l.ApplyPartition(PartitionState{Leader: 1, LeaderEpoch: 5, PartitionEpoch: 11, Replicas: []int32{1, 2, 3}, ISR: []int32{1}}, 3); err != nil {
			t.Fatal(err)
		}
		done, err := l.CheckEnoughReplicasReachOffset(15)
		if !done {
			t.Fatal("not done")
		}
		wantKerr(t, err, kerr.NotEnoughReplicasAfterAppend)
	})
}

// makeLeader with an unchanged leader epoch adopts newer metadata and drops a
// pending AlterPartition; older metadata is skipped.
func TestApplyPartition(t *testing.T) {
	l := newLeader(t, func(c *LeaderConfig) { c.ISR = []int32{1, 2} })
	mustFetch(t, l, 3, 10, 1)
	p := l.Ready().Proposal
	if applied, err := l.ApplyPartition(PartitionState{Leader: 1, LeaderEpoch: 5, PartitionEpoch: 9, Replicas: []int32{1, 2, 3}, ISR: []int32{1}}, 2); applied || err != nil {
		t.Fatalf("older partition epoch applied %v err %v", applied, err)
	}
	if applied, err := l.ApplyPartition(PartitionState{Leader: 1, LeaderEpoch: 5, PartitionEpoch: 11, Replicas: []int32{1, 2, 3, 4}, ISR: []int32{1, 2, 3}}, 2); !applied || err != nil {
		t.Fatalf("applied %v err %v", applied, err)
	}
	if _, inFlight := l.Pending(); inFlight || l.PartitionEpoch() != 11 || !slices.Equal(l.ISR(), []int32{1, 2, 3}) {
		t.Fatalf("in flight %v, partition epoch %d, ISR %v", inFlight, l.PartitionEpoch(), l.ISR())
	}
	if out := l.HandleAlterPartition(p.ID, AlterResult{LeaderEpoch: 5, PartitionEpoch: 11, ISR: []int32{1, 2, 3}}, 3); out != AlterIgnored {
		t.Fatalf("a late answer to a proposal metadata replaced: %v, want ignored", out)
	}
	if s := l.Stats(); len(s.Followers) != 3 || s.ISRExpands != 1 || s.FailedAlters != 0 {
		t.Fatalf("want replica 4 tracked and the expansion metadata delivered first counted once: %+v", s)
	}
	_, err := l.ApplyPartition(PartitionState{Leader: 1, LeaderEpoch: 6, PartitionEpoch: 12, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}}, 3)
	if !errors.Is(err, ErrNewLeaderEpoch) {
		t.Fatalf("newer leader epoch: %v", err)
	}
	_, err = l.ApplyPartition(PartitionState{Leader: 2, LeaderEpoch: 6, PartitionEpoch: 12, Replicas: []int32{1, 2, 3}, ISR: []int32{2}}, 3)
	wantKerr(t, err, kerr.NotLeaderForPartition)
}

// A shrink the controller committed counts once whether its metadata or its
// AlterPartition answer arrives first; an ISR someone else chose (here a
// controller that also removed replica 2) is not this leader's change.
func TestShrinkCountedFromMetadata(t *testing.T) {
	for _, tc := range []struct {
		name    string
		isr     []int32
		shrinks uint64
	}{
		{"metadata carries the proposed ISR", []int32{1, 2}, 1},
		{"metadata carries another ISR", []int32{1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLeader(t, nil)
			mustFetch(t, l, 2, 10, 1)
			l.Tick(1001)
			p := l.Ready().Proposal
			if p == nil || len(p.ISR) != 2 {
				t.Fatalf("want a shrink to [1 2], got %+v", p)
			}
			if applied, err := l.ApplyPartition(PartitionState{Leader: 1, LeaderEpoch: 5, PartitionEpoch: 11, Replicas: []int32{1, 2, 3}, ISR: tc.isr}, 1002); !applied || err != nil {
				t.Fatalf("applied %v err %v", applied, err)
			}
			if out := l.HandleAlterPartition(p.ID, AlterResult{LeaderEpoch: 5, PartitionEpoch: 11, ISR: tc.isr}, 1003); out != AlterIgnored {
				t.Fatalf("late answer: %v, want ignored", out)
			}
			if s := l.Stats(); s.ISRShrinks != tc.shrinks || s.ISRExpands != 0 {
				t.Fatalf("shrinks %d expands %d, want %d and 0", s.ISRShrinks, s.ISRExpands, tc.shrinks)
			}
		})
	}
}

// An image with the partition epoch the leader already has must not drop an
// expansion in flight: the controller may have applied it already, and the
// maximal ISR would lose the new member while it is in the committed ISR
// (found by TestSim, seed 299).
func TestApplyPartitionSameEpoch(t *testing.T) {
	l := newLeader(t, func(c *LeaderConfig) { c.ISR = []int32{1, 2} })
	mustFetch(t, l, 3, 10, 1)
	if applied, err := l.ApplyPartition(PartitionState{Leader: 1, LeaderEpoch: 5, PartitionEpoch: 10, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}}, 2); applied || err != nil {
		t.Fatalf("equal partition epoch applied %v err %v", applied, err)
	}
	if !slices.Equal(l.MaximalISR(), []int32{1, 2, 3}) {
		t.Fatalf("maximal ISR %v: the pending expansion was dropped", l.MaximalISR())
	}
}

func TestNewLeaderRejectsNonsense(t *testing.T) {
	for _, mod := range []func(*LeaderConfig){
		func(c *LeaderConfig) { c.ID = 7 },
		func(c *LeaderConfig) { c.MinISR = 0 },
		func(c *LeaderConfig) { c.HighWatermark = 11 },
		func(c *LeaderConfig) { c.EpochStartOffset = 11 },
	} {
		cfg := testConfig()
		mod(&cfg)
		if _, err := NewLeader(cfg, 0); err == nil {
			t.Fatalf("NewLeader(%+v) accepted", cfg)
		}
	}
	l := newLeader(t, nil)
	mustFetch(t, l, 2, 10, 1)
	mustFetch(t, l, 3, 10, 1)
	l.Append(9, 1) // stale
	if l.LogEndOffset() != 10 {
		t.Fatalf("LEO went back to %d", l.LogEndOffset())
	}
}

// A follower named Stale (the leader this one replaced, known dead) gets no
// fresh lag window: the first Tick proposes it out, while it keeps holding
// the high watermark until the shrink commits. A stale follower that
// caught up before that Tick stays.
func TestStaleFollowerProposedOutAtFirstTick(t *testing.T) {
	l := newLeader(t, func(c *LeaderConfig) { c.Stale = []int32{3} })
	l.Append(20, 0)
	mustFetch(t, l, 2, 20, 1)
	l.Tick(2)
	rd := l.Ready()
	if rd.Proposal == nil || len(rd.Proposal.ISR) != 2 || rd.Proposal.ISR[0].ID != 1 || rd.Proposal.ISR[1].ID != 2 {
		t.Fatalf("want a shrink to [1 2] at the first tick, got %+v", rd.Proposal)
	}
	if got := l.HighWatermark(); got != 10 {
		t.Fatalf("HW = %d while the stale follower's removal is pending, want 10", got)
	}

	l = newLeader(t, func(c *LeaderConfig) { c.Stale = []int32{3} })
	l.Append(20, 0)
	mustFetch(t, l, 2, 20, 1)
	mustFetch(t, l, 3, 20, 1)
	l.Tick(2)
	if rd := l.Ready(); rd.Proposal != nil {
		t.Fatalf("a stale follower that caught up was proposed out: %+v", rd.Proposal)
	}
}
