package controller

import (
	"testing"
	"time"

	"github.com/sluice-io/sluice/segment"
)

// TestReplicationThroughTheStore walks a three-broker cluster through the
// Store as the broker's handlers will: registration (the epoch read from
// the committed image), heartbeats that unfence, a topic, a session that
// expires and fences its broker, a controlled shutdown; then a crash and a
// replay, which must give the same metadata from the log's new records.
func TestReplicationThroughTheStore(t *testing.T) {
	fsys := segment.NewMemFS()
	st, err := Create(fsys, "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	pol := Policy{MinInsyncReplicas: 2}
	hb := NewHeartbeats(9 * time.Second)
	now := time.Unix(1000, 0)
	epochs := map[int32]int64{}
	for _, id := range []int32{1, 2, 3} {
		img := mustCommit(t, st, func(s *State) ([]Record, error) {
			return s.PlanRegisterBroker(BrokerRegistration{ID: id, ClusterID: s.ClusterID, Incarnation: incarnation(id, 1), PreviousBrokerEpoch: -1,
				Endpoints: []Endpoint{{"PLAINTEXT", "h", 9000 + id}}}, hb.HasValidSession(id, now), pol)
		})
		b, _ := img.Broker(id)
		if !b.Fenced || b.Epoch != img.Offset()-1 {
			t.Fatalf("broker %d registered as %+v at offset %d", id, b, img.Offset())
		}
		epochs[id] = b.Epoch
		hb.Register(id, b.Epoch, true, now)
	}
	heartbeat := func(id int32, req Heartbeat) HeartbeatReply {
		t.Helper()
		req.BrokerID, req.BrokerEpoch, req.MetadataOffset = id, epochs[id], st.Image().Offset()-1
		var reply HeartbeatReply
		img := mustCommit(t, st, func(s *State) ([]Record, error) {
			r, rs, err := s.PlanBrokerHeartbeat(req, hb, pol)
			reply = r
			return rs, err
		})
		hb.Touch(req, reply, img.Offset()-1, now)
		return reply
	}
	for _, id := range []int32{1, 2, 3} {
		if r := heartbeat(id, Heartbeat{}); r.IsFenced || !r.IsCaughtUp {
			t.Fatalf("broker %d: %+v", id, r)
		}
	}
	if n := st.Image().LiveBrokerCount(); n != 3 {
		t.Fatalf("live brokers %d", n)
	}
	mustCommit(t, st, func(s *State) ([]Record, error) {
		return s.PlanCreateTopic(NewTopic{Name: "t", ID: TopicID{1, 15: 1}, Partitions: 3, ReplicationFactor: 3}, noLimit)
	})
	// Broker 3 goes silent; 1 and 2 keep heartbeating.
	now = now.Add(10 * time.Second)
	heartbeat(1, Heartbeat{})
	heartbeat(2, Heartbeat{})
	expired := hb.Expired(now)
	if len(expired) != 1 || expired[0] != 3 {
		t.Fatalf("expired %v", expired)
	}
	mustCommit(t, st, func(s *State) ([]Record, error) { return s.PlanFenceBroker(3, pol) })
	hb.Fenced(3)
	// Broker 1 shuts down: its leaderships move, then it may go.
	if r := heartbeat(1, Heartbeat{WantShutDown: true}); !r.InControlledShutdown || r.ShouldShutDown {
		t.Fatalf("entering controlled shutdown: %+v", r)
	}
	heartbeat(2, Heartbeat{})
	if r := heartbeat(1, Heartbeat{WantShutDown: true}); !r.ShouldShutDown {
		t.Fatalf("after every broker applied the shutdown: %+v", r)
	}
	img := st.Image()
	tp, _ := img.Topic("t")
	// Broker 3 left the ISR while it was at min ISR (2), so the HW may
	// have moved on without it: only 1, which left below min ISR, is
	// eligible.
	for _, p := range tp.Partitions {
		if p.Leader != 2 || len(p.ISR) != 1 || len(p.ELR) != 1 || p.ELR[0] != 1 {
			t.Errorf("partition %d: %s", p.Index, desc(p))
		}
	}
	want := encodeState(t, img.st)
	fsys.Crash()
	st2, err := Load(fsys, "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if got := encodeState(t, st2.Image().st); got != want || st2.Image().Offset() != img.Offset() {
		t.Fatalf("replayed:\n%s\nwant\n%s", got, want)
	}
}
