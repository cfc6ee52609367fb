package controller

import (
	"errors"
	"testing"
)

// alterPartitionCluster: brokers 1-3 active, 4 fenced, 5 shutting down, 6
// never registered. "t"-0 is led by 1 at epochs 5/10 with ISR [1 2];
// "r"-0 is led by 1, RECOVERING; "m"-0 is being reassigned away from 1.
func alterPartitionCluster(t *testing.T) *State {
	s := replicated(t, 1, 2, 3, 4, 5)
	mustApply(t, s, FenceBrokerRecord{ID: 4, Epoch: 104}, BrokerRegistrationChangeRecord{BrokerID: 5, BrokerEpoch: 105, InControlledShutdown: 1})
	addTopic(t, s, "t", pt(1, ids(1, 2, 3, 4, 5, 6), ids(1, 2)))
	r := pt(1, ids(1, 2, 3), ids(1))
	r.LeaderRecoveryState = Recovering
	addTopic(t, s, "r", r)
	m := pt(1, ids(2, 3, 1), ids(1, 2))
	m.RemovingReplicas, m.AddingReplicas = ids(1), ids(3)
	addTopic(t, s, "m", m)
	return s
}

func members(brokers ...int32) []ISRMember {
	out := make([]ISRMember, len(brokers))
	for i, b := range brokers {
		out[i] = ISRMember{BrokerID: b, BrokerEpoch: 100 + int64(b)}
	}
	return out
}

// TestAlterPartitionValidationOrder has one case per validation step, in
// Kafka's order; the "and" cases also break a later step, and must report
// the earlier one.
func TestAlterPartitionValidationOrder(t *testing.T) {
	ok := func(it *AlterPartitionItem) {}
	for _, tc := range []struct {
		name    string
		broker  int32
		version int16
		edit    func(*AlterPartitionItem)
		want    error
		state   string // the partition in the result, when accepted
	}{
		{"1 stale broker epoch", -1, 3, ok, ErrStaleBrokerEpoch, ""},
		{"2 unknown topic id", 1, 3, func(it *AlterPartitionItem) { it.TopicID = TopicID{9} }, ErrUnknownTopicID, ""},
		{"2 unknown topic name (v1)", 1, 1, func(it *AlterPartitionItem) { it.Topic = "nope" }, ErrUnknownTopicOrPartition, ""},
		{"2 unknown partition", 1, 3, func(it *AlterPartitionItem) { it.Partition = 1; it.LeaderEpoch = 99 }, ErrUnknownTopicOrPartition, ""},
		{"3 newer leader epoch", 1, 3, func(it *AlterPartitionItem) { it.LeaderEpoch = 6 }, ErrNotController, ""},
		{"3 newer partition epoch, and not the leader", 2, 3, func(it *AlterPartitionItem) { it.PartitionEpoch = 11 }, ErrNotController, ""},
		{"4 older leader epoch, and not the leader", 2, 3, func(it *AlterPartitionItem) { it.LeaderEpoch = 4 }, ErrFencedLeaderEpoch, ""},
		{"5 not the leader, and an older partition epoch", 2, 3, func(it *AlterPartitionItem) { it.PartitionEpoch = 9 }, ErrInvalidRequest, ""},
		{"6 older partition epoch, and an ISR without the leader", 1, 3, func(it *AlterPartitionItem) {
			it.PartitionEpoch = 9
			it.NewISR = members(2)
		}, ErrInvalidUpdateVersion, ""},
		{"7 ISR member not a replica", 1, 3, func(it *AlterPartitionItem) { it.NewISR = members(1, 7) }, ErrInvalidRequest, ""},
		{"7 ISR without the leader, and an ineligible member", 1, 3, func(it *AlterPartitionItem) { it.NewISR = members(2, 4) }, ErrInvalidRequest, ""},
		{"8 RECOVERING with two members, one ineligible", 1, 3, func(it *AlterPartitionItem) {
			it.Topic, it.TopicID = "r", TopicID{2, 15: 7}
			it.NewISR = members(1, 4)
			it.LeaderRecoveryState = Recovering
		}, ErrInvalidRequest, ""},
		{"8 RECOVERED to RECOVERING", 1, 3, func(it *AlterPartitionItem) {
			it.NewISR = members(1)
			it.LeaderRecoveryState = Recovering
		}, ErrInvalidRequest, ""},
		{"9 fenced member", 1, 3, func(it *AlterPartitionItem) { it.NewISR = members(1, 4) }, ErrIneligibleReplica, ""},
		{"9 fenced member (v1)", 1, 1, func(it *AlterPartitionItem) { it.NewISR = members(1, 4) }, ErrOperationNotAttempted, ""},
		{"9 member shutting down", 1, 3, func(it *AlterPartitionItem) { it.NewISR = members(1, 5) }, ErrIneligibleReplica, ""},
		{"9 member not registered", 1, 3, func(it *AlterPartitionItem) { it.NewISR = members(1, 6) }, ErrIneligibleReplica, ""},
		{"9 member of another broker epoch", 1, 3, func(it *AlterPartitionItem) { it.NewISR = []ISRMember{{1, 101}, {3, 99}} }, ErrIneligibleReplica, ""},
		{"expand, epoch -1 unchecked", 1, 3, func(it *AlterPartitionItem) { it.NewISR = []ISRMember{{1, 101}, {2, 102}, {3, -1}} }, nil,
			"leader=1 epochs=5/11 replicas=[1 2 3 4 5 6] isr=[1 2 3]"},
		{"shrink", 1, 3, func(it *AlterPartitionItem) { it.NewISR = members(1) }, nil,
			"leader=1 epochs=5/11 replicas=[1 2 3 4 5 6] isr=[1]"},
		{"no change answers the current state", 1, 3, ok, nil, "leader=1 epochs=5/10 replicas=[1 2 3 4 5 6] isr=[1 2]"},
		{"RECOVERING to RECOVERED", 1, 3, func(it *AlterPartitionItem) {
			it.Topic, it.TopicID = "r", TopicID{2, 15: 7}
			it.NewISR = members(1)
		}, nil, "leader=1 epochs=5/11 replicas=[1 2 3] isr=[1]"},
		{"completing a reassignment moves the leader", 1, 3, func(it *AlterPartitionItem) {
			it.Topic, it.TopicID = "m", TopicID{3, 15: 7}
			it.NewISR = members(1, 2, 3)
		}, ErrNewLeaderElected, "leader=2 epochs=6/11 replicas=[2 3] isr=[2 3]"},
		{"completing a reassignment moves the leader (v1)", 1, 1, func(it *AlterPartitionItem) {
			it.Topic, it.TopicID = "m", TopicID{3, 15: 7}
			it.NewISR = members(1, 2, 3)
		}, ErrFencedLeaderEpoch, "leader=2 epochs=6/11 replicas=[2 3] isr=[2 3]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := alterPartitionCluster(t)
			it := AlterPartitionItem{TopicID: s.Topics["t"].ID, Topic: "t", LeaderEpoch: 5, PartitionEpoch: 10, NewISR: members(1, 2)}
			tc.edit(&it)
			epoch := int64(100)
			if tc.broker > 0 {
				epoch += int64(tc.broker)
			} else {
				tc.broker = 1
			}
			results, rs, err := s.PlanAlterPartition(tc.broker, epoch, tc.version, []AlterPartitionItem{it}, Policy{})
			if err == nil {
				err = results[0].Err
			}
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.state == "" {
				if len(rs) != 0 {
					t.Fatalf("a refused request made records %v", rs)
				}
				return
			}
			if got := desc(results[0].Partition); got != tc.state {
				t.Errorf("result:\ngot  %s\nwant %s", got, tc.state)
			}
			mustApply(t, s, rs...)
			topic := s.Topics[it.Topic]
			if got := desc(topic.Partitions[0]); got != tc.state {
				t.Errorf("applied:\ngot  %s\nwant %s", got, tc.state)
			}
		})
	}
}

// TestAlterPartitionManyItems: a request names many partitions (a broker
// batches its leaders' changes); each is decided on its own, and a
// partition named twice is refused the second time, since both would be
// validated against the same state and the second record would silently
// overwrite the first.
func TestAlterPartitionManyItems(t *testing.T) {
	s := alterPartitionCluster(t)
	tID, rID := s.Topics["t"].ID, s.Topics["r"].ID
	items := []AlterPartitionItem{
		{TopicID: tID, Topic: "t", LeaderEpoch: 5, PartitionEpoch: 10, NewISR: members(1, 2, 3)},
		{TopicID: rID, Topic: "r", LeaderEpoch: 5, PartitionEpoch: 10, NewISR: members(1)},
		{TopicID: tID, Topic: "t", LeaderEpoch: 5, PartitionEpoch: 10, NewISR: members(1)},
		{TopicID: TopicID{9}, Partition: 0, LeaderEpoch: 5, PartitionEpoch: 10, NewISR: members(1)},
	}
	results, rs, err := s.PlanAlterPartition(1, 101, 3, items, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	wantErr := []error{nil, nil, ErrInvalidRequest, ErrUnknownTopicID}
	for i, want := range wantErr {
		if got := results[i].Err; !errors.Is(got, want) || (want == nil) != (got == nil) {
			t.Errorf("item %d: got %v, want %v", i, got, want)
		}
	}
	if len(rs) != 2 {
		t.Fatalf("got %d records, want one per accepted change: %v", len(rs), rs)
	}
	mustApply(t, s, rs...)
	if got, want := desc(s.Topics["t"].Partitions[0]), "leader=1 epochs=5/11 replicas=[1 2 3 4 5 6] isr=[1 2 3]"; got != want {
		t.Errorf("t-0: got %s, want %s (the first item's change, not the duplicate's)", got, want)
	}
	if got, want := desc(s.Topics["r"].Partitions[0]), "leader=1 epochs=5/11 replicas=[1 2 3] isr=[1]"; got != want {
		t.Errorf("r-0: got %s, want %s", got, want)
	}
}
