package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testkit"
)

// Followers fetch in incremental sessions (KIP-227): each follower's
// fetcher holds one session on the leader, whose epoch keeps counting up
// while records replicate, and replication still delivers every record
// and the high watermark.
func TestFollowersFetchInSessions(t *testing.T) {
	bs := threeBrokers(t)
	createAssigned(t, bs[0], "fs", 2, 3, 1)
	leader := bs[1]
	testkit.Eventually(t, 10*time.Second, "broker 2 to lead fs", func() bool {
		return leader.topics.get("fs").replication(0) != nil
	})
	cl := leader.client(t, kgo.DefaultProduceTopic("fs"), kgo.RequiredAcks(kgo.AllISRAcks()))
	const n = 50
	for i := range n {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatalf("acks=all produce %d: %v", i, err)
		}
	}
	testkit.EventuallyNil(t, 10*time.Second, func() error {
		for _, tb := range bs {
			if leo, hw, ok := replicaState(tb, "fs"); !ok || leo != n || hw != n {
				return fmt.Errorf("broker %d: replica %v, LEO %d, HW %d; want %d and %d", tb.cfg.NodeID, ok, leo, hw, n, n)
			}
		}
		return nil
	})
	// Every acks=all produce needed both followers to fetch past it, so
	// each follower's session went through many incremental epochs.
	c := leader.sessions
	c.mu.Lock()
	var incremental int
	for _, s := range c.byID {
		if _, ok := s.parts[sessionKey{"fs", 0}]; ok && s.epoch > n/2 {
			incremental++
		}
	}
	c.mu.Unlock()
	if incremental != 2 {
		sessions, parts := c.stats()
		t.Fatalf("%d follower sessions past epoch %d on the leader (%d sessions, %d partitions cached), want one per follower", incremental, n/2, sessions, parts)
	}
}
