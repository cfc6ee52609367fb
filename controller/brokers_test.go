package controller

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestPlanFenceBroker(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pol    Policy
		before Partition
		want   string
	}{
		{"leader moves to the next ISR member in replica order", Policy{}, pt(1, ids(1, 2, 3), ids(1, 3, 2)),
			"leader=2 epochs=6/11 replicas=[1 2 3] isr=[3 2]"},
		{"a follower leaves the ISR, the leader epoch stays", Policy{}, pt(2, ids(1, 2, 3), ids(1, 2, 3)),
			"leader=2 epochs=5/11 replicas=[1 2 3] isr=[2 3]"},
		{"the last ISR member leaves the partition leaderless, eligible", Policy{}, pt(1, ids(1, 2), ids(1)),
			"leader=-1 epochs=6/11 replicas=[1 2] isr=[] elr=[1]"},
		{"below min ISR the removed member stays eligible", Policy{MinInsyncReplicas: 2}, pt(1, ids(1, 2, 3), ids(1, 2)),
			"leader=2 epochs=6/11 replicas=[1 2 3] isr=[2] elr=[1]"},
		{"an ISR member that is fenced already is not elected", Policy{}, pt(1, ids(1, 3, 2), ids(1, 3, 2)),
			"leader=2 epochs=6/11 replicas=[1 3 2] isr=[3 2]"},
		{"a partition without the broker is left alone", Policy{}, pt(2, ids(2, 3), ids(2, 3)),
			"leader=2 epochs=5/10 replicas=[2 3] isr=[2 3]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := replicated(t, 1, 2, 3)
			if tc.name == "an ISR member that is fenced already is not elected" {
				mustApply(t, s, FenceBrokerRecord{ID: 3, Epoch: 103})
			}
			addTopic(t, s, "t", tc.before)
			rs, err := s.PlanFenceBroker(1, tc.pol)
			if err != nil {
				t.Fatal(err)
			}
			mustApply(t, s, rs...)
			if got := descPart(s, "t", 0); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if !s.Brokers[1].Fenced || s.Leads(1) {
				t.Errorf("broker 1 %s, leads %v", brokerDesc(s.Brokers[1]), s.Leads(1))
			}
			if again, _ := s.PlanFenceBroker(1, tc.pol); again != nil {
				t.Errorf("fencing twice: %v", again)
			}
		})
	}
	if _, err := NewState("c").PlanFenceBroker(9, Policy{}); !errors.Is(err, ErrBrokerNotRegistered) {
		t.Errorf("unknown broker: %v", err)
	}
}

func TestPlanRegisterBroker(t *testing.T) {
	setup := func(t *testing.T) *State {
		s := replicated(t, 1, 2, 3)
		addTopic(t, s, "t", pt(1, ids(1, 2, 3), ids(1, 2, 3)), pt(1, ids(1, 2), ids(1)), pt(2, ids(2, 1), ids(2)))
		// Partition 2 is leaderless history: broker 1 is its ELR.
		mustApply(t, s, PartitionChangeRecord{TopicID: s.Topics["t"].ID, Partition: 2, Leader: NoLeader, ISR: []int32{}, ELR: ids(1, 2)})
		return s
	}
	register := func(t *testing.T, s *State, req BrokerRegistration, live bool) error {
		rs, err := s.PlanRegisterBroker(req, live, Policy{})
		if err == nil {
			err = applyBatch(s, 500, rs)
		}
		return err
	}
	t.Run("a new incarnation is an unclean shutdown", func(t *testing.T) {
		s := setup(t)
		if err := register(t, s, BrokerRegistration{ID: 1, Incarnation: incarnation(1, 1), PreviousBrokerEpoch: -1}, false); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"leader=2 epochs=6/11 replicas=[1 2 3] isr=[2 3]",
			"leader=-1 epochs=6/11 replicas=[1 2] isr=[] lke=[1]",
			"leader=2 epochs=7/12 replicas=[2 1] isr=[2] lke=[1]", // elected from the ELR
		}
		for i, w := range want {
			if got := descPart(s, "t", int32(i)); got != w {
				t.Errorf("partition %d: got  %s\nwant %s", i, got, w)
			}
		}
		// The registration is the batch's last record: offset 503.
		if got := brokerDesc(s.Brokers[1]); got != "epoch=503 fenced" {
			t.Errorf("broker 1: %s", got)
		}
	})
	t.Run("a clean restart keeps its places", func(t *testing.T) {
		s := setup(t)
		// A clean shutdown ends fenced.
		mustApply(t, s, FenceBrokerRecord{ID: 1, Epoch: 101})
		var before []string
		for i := range 3 {
			before = append(before, descPart(s, "t", int32(i)))
		}
		if err := register(t, s, BrokerRegistration{ID: 1, Incarnation: incarnation(1, 1), PreviousBrokerEpoch: 101}, false); err != nil {
			t.Fatal(err)
		}
		for i, want := range before {
			if got := descPart(s, "t", int32(i)); got != want {
				t.Errorf("partition %d: got %s, want it unchanged", i, got)
			}
		}
		if got := brokerDesc(s.Brokers[1]); got != "epoch=500 fenced" {
			t.Errorf("broker 1: %s", got)
		}
	})
	t.Run("a clean restart the controller did not see end moves leaders first", func(t *testing.T) {
		s := setup(t)
		if err := register(t, s, BrokerRegistration{ID: 1, Incarnation: incarnation(1, 1), PreviousBrokerEpoch: 101}, false); err != nil {
			t.Fatal(err)
		}
		if got := descPart(s, "t", 0); got != "leader=2 epochs=6/11 replicas=[1 2 3] isr=[2 3]" {
			t.Errorf("partition 0: %s", got)
		}
		// Unlike an unclean shutdown, it stays eligible where it was.
		if got := descPart(s, "t", 1); got != "leader=-1 epochs=6/11 replicas=[1 2] isr=[] elr=[1]" {
			t.Errorf("partition 1: %s", got)
		}
	})
	t.Run("the same incarnation amends and keeps its epoch", func(t *testing.T) {
		s := setup(t)
		rack := "r1"
		if err := register(t, s, BrokerRegistration{ID: 1, Incarnation: incarnation(1, 0), Rack: &rack}, true); err != nil {
			t.Fatal(err)
		}
		if b := s.Brokers[1]; brokerDesc(b) != "epoch=101" || *b.Rack != "r1" {
			t.Errorf("broker 1: %s rack %v", brokerDesc(b), b.Rack)
		}
	})
	t.Run("another incarnation while the session lives is refused", func(t *testing.T) {
		err := register(t, setup(t), BrokerRegistration{ID: 1, Incarnation: incarnation(1, 1)}, true)
		if !errors.Is(err, ErrDuplicateBrokerRegistration) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("another cluster is refused", func(t *testing.T) {
		err := register(t, setup(t), BrokerRegistration{ID: 4, ClusterID: "other", Incarnation: incarnation(4, 0)}, false)
		if !errors.Is(err, ErrInconsistentClusterID) {
			t.Errorf("got %v", err)
		}
	})
}

func TestPlanBrokerHeartbeat(t *testing.T) {
	type state int
	const (
		unfenced state = iota
		fenced
		shuttingDown
		shutDown // fenced at the end of a controlled shutdown
	)
	for _, tc := range []struct {
		name    string
		from    state
		leads   bool // broker 1 leads partition 0
		req     Heartbeat
		hbReach bool // every active broker applied the shutdown records
		want    HeartbeatReply
		broker  string // broker 1 afterwards
		part    string // partition 0 afterwards
		err     error
	}{
		{name: "stale epoch", req: Heartbeat{BrokerEpoch: 99}, err: ErrStaleBrokerEpoch},
		{name: "fenced, behind its registration: stays fenced", from: fenced, req: Heartbeat{MetadataOffset: 100},
			want: HeartbeatReply{IsFenced: true}, broker: "epoch=101 fenced", part: "leader=-1 epochs=6/11 replicas=[1 2] isr=[] elr=[1]"},
		{name: "fenced, caught up: unfenced and elected where leaderless", from: fenced, req: Heartbeat{MetadataOffset: 101},
			want: HeartbeatReply{IsCaughtUp: true}, broker: "epoch=101", part: "leader=1 epochs=7/12 replicas=[1 2] isr=[1]"},
		{name: "fenced, wants fence: stays fenced", from: fenced, req: Heartbeat{MetadataOffset: 101, WantFence: true},
			want: HeartbeatReply{IsCaughtUp: true, IsFenced: true}, broker: "epoch=101 fenced", part: "leader=-1 epochs=6/11 replicas=[1 2] isr=[] elr=[1]"},
		{name: "fenced, wants shutdown: at once", from: fenced, req: Heartbeat{MetadataOffset: 101, WantShutDown: true},
			want: HeartbeatReply{IsCaughtUp: true, IsFenced: true, ShouldShutDown: true}, broker: "epoch=101 fenced", part: "leader=-1 epochs=6/11 replicas=[1 2] isr=[] elr=[1]"},
		{name: "shut down, still heartbeating: not unfenced", from: shutDown, req: Heartbeat{MetadataOffset: 101},
			want: HeartbeatReply{IsCaughtUp: true, IsFenced: true, ShouldShutDown: true}, broker: "epoch=101 fenced shutting-down", part: "leader=-1 epochs=6/11 replicas=[1 2] isr=[] elr=[1]"},
		{name: "unfenced: nothing changes", req: Heartbeat{MetadataOffset: 200}, leads: true,
			want: HeartbeatReply{IsCaughtUp: true}, broker: "epoch=101", part: "leader=1 epochs=5/10 replicas=[1 2] isr=[1 2]"},
		{name: "unfenced, wants fence: fenced, leadership moves", req: Heartbeat{MetadataOffset: 200, WantFence: true}, leads: true,
			want: HeartbeatReply{IsCaughtUp: true, IsFenced: true}, broker: "epoch=101 fenced", part: "leader=2 epochs=6/11 replicas=[1 2] isr=[2]"},
		{name: "unfenced leader wants shutdown: controlled shutdown", req: Heartbeat{MetadataOffset: 200, WantShutDown: true}, leads: true,
			want: HeartbeatReply{IsCaughtUp: true, InControlledShutdown: true}, broker: "epoch=101 shutting-down", part: "leader=2 epochs=6/11 replicas=[1 2] isr=[2]"},
		{name: "unfenced follower wants shutdown: at once", req: Heartbeat{MetadataOffset: 200, WantShutDown: true},
			want: HeartbeatReply{IsCaughtUp: true, IsFenced: true, ShouldShutDown: true}, broker: "epoch=101 fenced", part: "leader=2 epochs=5/11 replicas=[1 2] isr=[2]"},
		{name: "shutting down, offsets not reached: waits", from: shuttingDown, req: Heartbeat{MetadataOffset: 200, WantShutDown: true},
			want: HeartbeatReply{IsCaughtUp: true, InControlledShutdown: true}, broker: "epoch=101 shutting-down", part: "leader=2 epochs=5/10 replicas=[1 2] isr=[2 1]"},
		{name: "shutting down, offsets reached: may shut down", from: shuttingDown, req: Heartbeat{MetadataOffset: 200, WantShutDown: true}, hbReach: true,
			want: HeartbeatReply{IsCaughtUp: true, IsFenced: true, ShouldShutDown: true}, broker: "epoch=101 fenced shutting-down", part: "leader=2 epochs=5/11 replicas=[1 2] isr=[2]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := replicated(t, 1, 2)
			p := pt(2, ids(1, 2), ids(2, 1))
			switch {
			case tc.from == fenced || tc.from == shutDown:
				mustApply(t, s, FenceBrokerRecord{ID: 1, Epoch: 101})
				if tc.from == shutDown {
					mustApply(t, s, BrokerRegistrationChangeRecord{BrokerID: 1, BrokerEpoch: 101, InControlledShutdown: 1})
				}
				p = Partition{Leader: NoLeader, Replicas: ids(1, 2), ISR: []int32{}, ELR: ids(1), LeaderEpoch: 6, PartitionEpoch: 11}
			case tc.from == shuttingDown:
				mustApply(t, s, BrokerRegistrationChangeRecord{BrokerID: 1, BrokerEpoch: 101, InControlledShutdown: 1})
			case tc.leads:
				p = pt(1, ids(1, 2), ids(1, 2))
			}
			addTopic(t, s, "t", p)
			hb := NewHeartbeats(time.Second)
			now := time.Unix(1000, 0)
			hb.Register(2, 102, false, now)
			if tc.from == shuttingDown {
				hb.Touch(Heartbeat{BrokerID: 1, BrokerEpoch: 101, MetadataOffset: 150}, HeartbeatReply{InControlledShutdown: true}, 190, now)
				hb.Touch(Heartbeat{BrokerID: 2, BrokerEpoch: 102, MetadataOffset: 180}, HeartbeatReply{}, 190, now)
				if tc.hbReach {
					hb.Touch(Heartbeat{BrokerID: 2, BrokerEpoch: 102, MetadataOffset: 190}, HeartbeatReply{}, 190, now)
					hb.Touch(Heartbeat{BrokerID: 1, BrokerEpoch: 101, MetadataOffset: 195}, HeartbeatReply{InControlledShutdown: true}, 195, now)
				}
			}
			tc.req.BrokerID = 1
			if tc.req.BrokerEpoch == 0 {
				tc.req.BrokerEpoch = 101
			}
			reply, rs, err := s.PlanBrokerHeartbeat(tc.req, hb, Policy{})
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("got %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			mustApply(t, s, rs...)
			if reply != tc.want {
				t.Errorf("reply %+v, want %+v", reply, tc.want)
			}
			if got := brokerDesc(s.Brokers[1]); got != tc.broker {
				t.Errorf("broker 1: %s, want %s", got, tc.broker)
			}
			if got := descPart(s, "t", 0); got != tc.part {
				t.Errorf("partition:\ngot  %s\nwant %s", got, tc.part)
			}
		})
	}
}

func TestHeartbeatsExpireSessions(t *testing.T) {
	hb := NewHeartbeats(9 * time.Second)
	t0 := time.Unix(0, 0)
	hb.Register(1, 10, false, t0)
	hb.Register(2, 20, false, t0)
	hb.Register(3, 30, true, t0) // fenced brokers are not fenced again
	hb.Touch(Heartbeat{BrokerID: 2, BrokerEpoch: 20}, HeartbeatReply{}, 0, t0.Add(5*time.Second))
	if got := hb.Expired(t0.Add(9 * time.Second)); len(got) != 0 {
		t.Fatalf("at exactly the timeout: %v", got)
	}
	if got := hb.Expired(t0.Add(9*time.Second + 1)); !slices.Equal(got, []int32{1}) {
		t.Fatalf("just past broker 1's timeout: %v", got)
	}
	if hb.HasValidSession(1, t0.Add(10*time.Second)) || !hb.HasValidSession(2, t0.Add(10*time.Second)) {
		t.Fatal("sessions at 10s")
	}
	hb.Fenced(1)
	if got := hb.Expired(t0.Add(15 * time.Second)); !slices.Equal(got, []int32{2}) {
		t.Fatalf("after fencing 1, at 15s: %v", got)
	}
	hb.Remove(2)
	if got := hb.Expired(t0.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("after removing 2: %v", got)
	}
}
