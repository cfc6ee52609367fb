package replicamgr

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/isr"
)

// A proposal the leader makes while another is out is sent once that one
// returns. Here the first (an expansion) loses its compare-and-set to a
// change committed by another path (after an unclean election, the
// leader's RECOVERED step), whose metadata arrives while it is out; the
// follower's next fetch then makes a second expansion. Sending only when
// nothing was out lost that one: the leader, pending on it, never
// proposed again and the follower never rejoined the ISR.
func TestProposalMadeWhileAnotherIsOutIsSent(t *testing.T) {
	c := newCluster(t)
	var (
		mu       sync.Mutex
		sent     []isr.Proposal
		release  = make(chan struct{})
		answered = make(chan struct{}, 8)
	)
	c.m.alter = func(ctx context.Context, _ controller.TopicID, _ int32, p isr.Proposal) isr.AlterResult {
		mu.Lock()
		sent = append(sent, p)
		first := len(sent) == 1
		mu.Unlock()
		defer func() { answered <- struct{}{} }()
		if first {
			<-release
			return isr.AlterResult{Err: kerr.InvalidUpdateVersion}
		}
		return isr.AlterResult{LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch + 1, ISR: idsOf(p.ISR)}
	}
	id := c.createTopic("exp", nil, []int32{1, 2})
	c.commit(controller.PartitionChangeRecord{TopicID: id, Partition: 0, Leader: controller.NoLeaderChange, ISR: []int32{1}})
	c.apply()
	c.produce("exp", 0, "a", "b")
	repl := replicationOf(t, c, "exp")
	fetch := func(offset int64) {
		t.Helper()
		p, _ := c.meta.Image().Partition("exp", 0)
		if _, err := repl.FollowerFetch(isr.FollowerFetch{ReplicaID: 2, BrokerEpoch: -1, CurrentLeaderEpoch: p.LeaderEpoch,
			FetchOffset: offset, LastFetchedEpoch: -1, LeaderLogEndOffset: 2}); err != nil {
			t.Fatalf("fetch at %d: %v", offset, err)
		}
	}
	fetch(2) // caught up: the first expansion goes out and hangs
	waitSent(t, &mu, &sent, 1)
	// Another path changes the partition meanwhile (same ISR, new
	// partition epoch); the leader applies it and drops its proposal.
	c.commit(controller.PartitionChangeRecord{TopicID: id, Partition: 0, Leader: controller.NoLeaderChange, ISR: []int32{1}})
	c.apply()
	fetch(2) // a second expansion, made while the first is out
	close(release)
	<-answered
	waitSent(t, &mu, &sent, 2)
	mu.Lock()
	second := sent[1]
	mu.Unlock()
	if got := idsOf(second.ISR); !slices.Equal(got, []int32{1, 2}) {
		t.Fatalf("second proposal ISR %v, want [1 2]", got)
	}
	if p, _ := c.meta.Image().Partition("exp", 0); second.PartitionEpoch != p.PartitionEpoch {
		t.Fatalf("second proposal at partition epoch %d, want the controller's %d", second.PartitionEpoch, p.PartitionEpoch)
	}
}

func idsOf(bs []isr.BrokerState) []int32 {
	ids := make([]int32, len(bs))
	for i, b := range bs {
		ids[i] = b.ID
	}
	slices.Sort(ids)
	return ids
}

func replicationOf(t *testing.T, c *cluster, topic string) *Replication {
	t.Helper()
	tp := c.m.Topic(topic)
	if tp == nil || tp.Partitions[0].Repl == nil {
		t.Fatalf("%s-0 is not led here with replication", topic)
	}
	return tp.Partitions[0].Repl
}

func waitSent(t *testing.T, mu *sync.Mutex, sent *[]isr.Proposal, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := len(*sent)
		mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d AlterPartition proposals sent after 5s, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// An image applies only the topics that changed since the last one (the
// controller copies topics on write), unless the brokers changed, which
// every role reads.
func TestApplyImageSkipsUnchangedTopics(t *testing.T) {
	c := newCluster(t)
	a := c.createTopic("a", nil, []int32{1, 2}, []int32{1, 2})
	c.createTopic("b", nil, []int32{1, 2})
	c.createTopic("c", nil, []int32{2, 1})
	c.apply()
	before := c.m.topicApplies
	c.commit(controller.PartitionChangeRecord{TopicID: a, Partition: 1, Leader: controller.NoLeaderChange, ISR: []int32{1}})
	c.apply()
	if got := c.m.topicApplies - before; got != 1 {
		t.Fatalf("a change to one topic of three applied %d topics", got)
	}
	if p := c.m.Topic("a").Partitions[1]; p.Repl == nil || !p.Repl.Stats().UnderReplicated {
		t.Fatalf("the changed partition's leader did not take the new ISR")
	}
	before = c.m.topicApplies
	c.commit(controller.FenceBrokerRecord{ID: 2, Epoch: c.meta.Image().Brokers()[1].Epoch})
	c.apply()
	if got := c.m.topicApplies - before; got != 3 {
		t.Fatalf("a broker change applied %d topics of 3", got)
	}
}
