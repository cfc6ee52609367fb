package coordinator

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func cgHeartbeat(c *Coordinator, groupID, member string, epoch int32, owned []int32) *kmsg.ConsumerGroupHeartbeatResponse {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version, req.Group, req.MemberID, req.MemberEpoch = 1, groupID, member, epoch
	if epoch == 0 {
		req.RebalanceTimeoutMillis = 30000
		req.SubscribedTopicNames = []string{"orders"}
	}
	if owned != nil {
		t := kmsg.NewConsumerGroupHeartbeatRequestTopic()
		t.TopicID, t.Partitions = topicID, owned
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{t}
	}
	return c.ConsumerGroupHeartbeat(req, Client{ID: "cl", Host: "/127.0.0.1"})
}

func TestConsumerGroupThroughCoordinator(t *testing.T) {
	log, clk := &memLog{}, &testClock{t: time.Unix(1_700_000_000, 0)}
	c := newTestCoordinator(t, log, clk)
	r := cgHeartbeat(c, "kg", "m1", 0, nil)
	if r.ErrorCode != 0 || r.MemberEpoch != 1 || r.Assignment == nil || len(r.Assignment.Topics) != 1 || len(r.Assignment.Topics[0].Partitions) != 3 {
		t.Fatalf("join: %+v", r)
	}
	// The classic protocol cannot take over a KIP-848 group with members.
	jreq := kmsg.NewPtrJoinGroupRequest()
	jreq.Version, jreq.Group, jreq.ProtocolType = 9, "kg", "consumer"
	jreq.SessionTimeoutMillis, jreq.RebalanceTimeoutMillis = 10000, 10000
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	jreq.Protocols = append(jreq.Protocols, p)
	if jr := c.JoinGroup(jreq, Client{}); jr.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("classic join of a consumer group: %v", kerr.ErrorForCode(jr.ErrorCode))
	}
	// Commits are checked against the member's epoch (KIP-848).
	if code := commitCode(c.OffsetCommit(commitReq(9, "kg", "m1", 1, "orders", 2, 11, ""))); code != 0 {
		t.Fatalf("member commit: %v", kerr.ErrorForCode(code))
	}
	if code := commitCode(c.OffsetCommit(commitReq(9, "kg", "m1", 2, "orders", 2, 12, ""))); code != kerr.StaleMemberEpoch.Code {
		t.Fatalf("commit from the future: %v", kerr.ErrorForCode(code))
	}
	if code := commitCode(c.OffsetCommit(commitReq(9, "kg", "m9", 1, "orders", 2, 12, ""))); code != kerr.UnknownMemberID.Code {
		t.Fatalf("commit from a stranger: %v", kerr.ErrorForCode(code))
	}
	if r := cgHeartbeat(c, "kg", "m9", 3, nil); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat from a stranger: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	c.Close()

	c2 := newTestCoordinator(t, log, clk)
	dreq := kmsg.NewPtrConsumerGroupDescribeRequest()
	dreq.Groups = []string{"kg", "nope"}
	d := c2.ConsumerGroupDescribe(dreq)
	if g := d.Groups[0]; g.ErrorCode != 0 || g.Epoch != 1 || len(g.Members) != 1 || g.Members[0].MemberID != "m1" || len(g.Members[0].Assignment.TopicPartitions) != 1 {
		t.Fatalf("reloaded group: %+v", g)
	}
	if d.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("missing group: %+v", d.Groups[1])
	}
	if r := cgHeartbeat(c2, "kg", "m1", 1, []int32{0, 1, 2}); r.ErrorCode != 0 || r.MemberEpoch != 1 {
		t.Fatalf("heartbeat after reload: %+v", r)
	}
	if got := fetchAll(c2, "kg"); got["orders"][2] != 11 {
		t.Fatalf("offsets after reload: %v", got)
	}
	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.Version, lreq.TypesFilter = 5, []string{"consumer"}
	if l := c2.ListGroups(lreq); len(l.Groups) != 1 || l.Groups[0].GroupType != "consumer" || l.Groups[0].GroupState != "Stable" {
		t.Fatalf("list consumer groups: %+v", l.Groups)
	}
	// Once its last member leaves, the group may become classic.
	if r := cgHeartbeat(c2, "kg", "m1", -1, nil); r.ErrorCode != 0 || r.MemberEpoch != -1 {
		t.Fatalf("leave: %+v", r)
	}
	jreq.MemberID = "" // KIP-394 round trip
	jr := c2.JoinGroup(jreq, Client{})
	if jr.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("classic join after the consumer group emptied: %v", kerr.ErrorForCode(jr.ErrorCode))
	}
	if got := fetchAll(c2, "kg"); got["orders"][2] != 11 {
		t.Fatalf("offsets lost in the conversion: %v", got)
	}
}
