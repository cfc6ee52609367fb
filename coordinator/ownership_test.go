package coordinator

import (
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partLog is a memLog whose partitions are led here or not, as the test
// says.
type partLog struct {
	*memLog
	mu    sync.Mutex
	leads map[int32]bool
}

func (l *partLog) Leads(p int32) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.leads[p]
}

func (l *partLog) set(p int32, leads bool) {
	l.mu.Lock()
	l.leads[p] = leads
	l.mu.Unlock()
}

// A coordinator serves the groups of the partitions it leads: another
// partition's group gets NOT_COORDINATOR; when leadership arrives, Sync
// loads what another node committed there; when it leaves, the groups are
// dropped and their requests answer NOT_COORDINATOR again.
func TestCoordinatorFollowsPartitionLeadership(t *testing.T) {
	shared := &memLog{}
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	// Node A leads everything and commits for group g.
	a := startCoordinator(t, shared, clk.now)
	if code := commitCode(a.OffsetCommit(commitReq(7, "g", "", -1, "orders", 1, 42, ""))); code != 0 {
		t.Fatalf("commit on the leader: %s", kerr.ErrorForCode(code))
	}
	p := PartitionFor("g", shared.n)
	// Node B shares the log but leads nothing yet.
	bl := &partLog{memLog: shared, leads: map[int32]bool{}}
	b := startCoordinator(t, bl, clk.now)
	if code := commitCode(b.OffsetCommit(commitReq(7, "g", "", -1, "orders", 1, 43, ""))); code != kerr.NotCoordinator.Code {
		t.Fatalf("commit for a group of a partition led elsewhere: %s, want NOT_COORDINATOR", kerr.ErrorForCode(code))
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = "g"
	req.Groups = append(req.Groups, g)
	if code := b.OffsetFetch(req).Groups[0].ErrorCode; code != kerr.NotCoordinator.Code {
		t.Fatalf("offset fetch on a non-coordinator: %s, want NOT_COORDINATOR", kerr.ErrorForCode(code))
	}
	// Leadership moves to B: it loads g's offsets.
	bl.set(p, true)
	b.Sync(p)
	if got := fetchAll(b, "g"); got["orders"][1] != 42 {
		t.Fatalf("after taking leadership, g's offsets are %v, want orders/1 = 42", got)
	}
	b.Sync(p) // idempotent
	if code := commitCode(b.OffsetCommit(commitReq(7, "g", "", -1, "orders", 1, 44, ""))); code != 0 {
		t.Fatalf("commit on the new coordinator: %s", kerr.ErrorForCode(code))
	}
	// A parked JoinGroup is answered when leadership leaves.
	join := kmsg.NewPtrJoinGroupRequest()
	join.Version, join.Group, join.ProtocolType = 3, "waiting", "consumer"
	join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 30000, 60000
	proto := kmsg.NewJoinGroupRequestProtocol()
	proto.Name = "range"
	join.Protocols = append(join.Protocols, proto)
	wp := PartitionFor("waiting", shared.n)
	bl.set(wp, true)
	b.Sync(wp)
	if first := b.JoinGroup(join, Client{ID: "c1"}); first.ErrorCode != 0 {
		t.Fatalf("first join: %s", kerr.ErrorForCode(first.ErrorCode))
	}
	// A second member's join parks until the first rejoins.
	done := make(chan int16, 1)
	go func() { done <- b.JoinGroup(join, Client{ID: "c2"}).ErrorCode }()
	time.Sleep(50 * time.Millisecond)
	select {
	case code := <-done:
		t.Fatalf("a second member's join was answered (%s) before the first rejoined", kerr.ErrorForCode(code))
	default:
	}
	bl.set(wp, false)
	b.Sync(wp)
	select {
	case code := <-done:
		if code != kerr.NotCoordinator.Code {
			t.Fatalf("parked join after leadership left: %s, want NOT_COORDINATOR", kerr.ErrorForCode(code))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("parked join not answered after leadership left")
	}
	bl.set(p, false)
	b.Sync(p)
	if code := commitCode(b.OffsetCommit(commitReq(7, "g", "", -1, "orders", 1, 45, ""))); code != kerr.NotCoordinator.Code {
		t.Fatalf("commit after leadership left: %s, want NOT_COORDINATOR", kerr.ErrorForCode(code))
	}
}
