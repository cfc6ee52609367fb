package coordinator

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The coordinator's own timers (time.AfterFunc, one per group) expire
// members whose session ran out, with no request arriving. These tests
// run in a synctest bubble on the bubble's clock, so a 10 s or 45 s
// session passes at once and the expiry is seen to the millisecond.

// bubbleCoordinator is a coordinator on the real clock, which inside a
// synctest bubble is the bubble's fake one.
func bubbleCoordinator(t *testing.T) *Coordinator {
	t.Helper()
	return startCoordinator(t, &memLog{}, time.Now)
}

// sleepThenSettle lets d pass and every goroutine of the bubble (a timer's
// tick included) run until it blocks.
func sleepThenSettle(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func describeClassic(t *testing.T, c *Coordinator, groupID string) kmsg.DescribeGroupsResponseGroup {
	t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{groupID}
	return c.DescribeGroups(req).Groups[0]
}

// A classic member that stops heartbeating leaves the group when its
// session timeout (10 s, as joinSync asks) passes, and not before.
func TestClassicSessionTimeoutFiresOnTheGroupTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleCoordinator(t)
		members, gen := joinSync(t, c, "g", 1)

		sleepThenSettle(10*time.Second - time.Millisecond)
		if g := describeClassic(t, c, "g"); g.State != "Stable" || len(g.Members) != 1 {
			t.Fatalf("before the session ran out: state %s, %d members", g.State, len(g.Members))
		}
		sleepThenSettle(2 * time.Millisecond)
		if g := describeClassic(t, c, "g"); g.State != "Empty" || len(g.Members) != 0 {
			t.Fatalf("after the session ran out: state %s, %d members; want Empty, none", g.State, len(g.Members))
		}
		req := kmsg.NewPtrHeartbeatRequest()
		req.Version, req.Group, req.MemberID, req.Generation = 4, "g", members[0], gen
		if code := c.Heartbeat(req).ErrorCode; code != kerr.UnknownMemberID.Code {
			t.Fatalf("heartbeat of the expired member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(code))
		}
	})
}

// A heartbeat puts the session's end off: a member that heartbeats every
// few seconds stays for longer than one session timeout.
func TestClassicHeartbeatsKeepTheSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleCoordinator(t)
		members, gen := joinSync(t, c, "g", 1)
		req := kmsg.NewPtrHeartbeatRequest()
		req.Version, req.Group, req.MemberID, req.Generation = 4, "g", members[0], gen
		for range 10 { // 30 s in all, three times the session timeout
			sleepThenSettle(3 * time.Second)
			if code := c.Heartbeat(req).ErrorCode; code != 0 {
				t.Fatalf("heartbeat: %v", kerr.ErrorForCode(code))
			}
		}
		if g := describeClassic(t, c, "g"); g.State != "Stable" || len(g.Members) != 1 {
			t.Fatalf("state %s, %d members; want the heartbeating member Stable", g.State, len(g.Members))
		}
	})
}

// A KIP-848 member that stops heartbeating is fenced when its session
// (group.consumer.session.timeout.ms, 45 s by default) passes.
func TestConsumerGroupSessionTimeoutFiresOnTheGroupTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := bubbleCoordinator(t)
		if r := cgHeartbeat(c, "kg", "m1", 0, nil); r.ErrorCode != 0 || r.MemberEpoch != 1 {
			t.Fatalf("join: %v, epoch %d", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch)
		}
		members := func() int {
			req := kmsg.NewPtrConsumerGroupDescribeRequest()
			req.Groups = []string{"kg"}
			return len(c.ConsumerGroupDescribe(req).Groups[0].Members)
		}
		sleepThenSettle(45*time.Second - time.Millisecond)
		if n := members(); n != 1 {
			t.Fatalf("before the session ran out: %d members", n)
		}
		sleepThenSettle(2 * time.Millisecond)
		if n := members(); n != 0 {
			t.Fatalf("after the session ran out: %d members, want none", n)
		}
		if r := cgHeartbeat(c, "kg", "m1", 1, nil); r.ErrorCode != kerr.UnknownMemberID.Code {
			t.Fatalf("heartbeat of the fenced member: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(r.ErrorCode))
		}
	})
}
