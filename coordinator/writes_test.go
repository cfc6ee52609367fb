package coordinator

import (
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// gatedLog is a memLog whose appends, while the gate is shut, announce
// themselves and wait: a slow fsync, made to order.
type gatedLog struct {
	*memLog
	gate    chan struct{} // closed: appends go through
	entered chan struct{}
}

// shut makes the next appends wait; the test's cleanup opens the gate again
// so that a failed test ends instead of hanging.
func (l *gatedLog) shut(t *testing.T) {
	gate := make(chan struct{})
	l.gate = gate
	t.Cleanup(func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	})
}

func (l *gatedLog) open() { close(l.gate) }

func (l *gatedLog) Append(p int32, recs []Record) error {
	select {
	case <-l.gate:
	default:
		l.entered <- struct{}{}
		<-l.gate
	}
	return l.memLog.Append(p, recs)
}

func newGatedCoordinator(t *testing.T) (*Coordinator, *gatedLog) {
	t.Helper()
	log := &gatedLog{memLog: &memLog{}, gate: make(chan struct{}), entered: make(chan struct{}, 16)}
	log.open()
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	return startCoordinator(t, log, clk.now), log
}

// within runs fn and fails the test if it has not returned in ten seconds
// (it would block for ever if the group's lock were held across an append).
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s blocked behind another operation's append", what)
	}
}

// While a commit's append is stuck, the same group's heartbeats, offset
// fetches and descriptions are answered; the commit is answered, and seen,
// only once its append returns.
//
// It runs in a synctest bubble: within's ten seconds pass at once when
// everything is blocked, and synctest.Wait lets the commit go as far as
// it can before the test asserts that it has not been answered.
func TestCommitAppendDoesNotHoldTheGroupLock(t *testing.T) {
	synctest.Test(t, testCommitAppendDoesNotHoldTheGroupLock)
}

func testCommitAppendDoesNotHoldTheGroupLock(t *testing.T) {
	c, log := newGatedCoordinator(t)
	members, gen := joinSync(t, c, "g", 1)
	if code := commitCode(c.OffsetCommit(commitReq(8, "g", members[0], gen, "orders", 0, 5, ""))); code != 0 {
		t.Fatalf("first commit: %v", kerr.ErrorForCode(code))
	}

	log.shut(t)
	committed := make(chan int16, 1)
	go func() {
		committed <- commitCode(c.OffsetCommit(commitReq(8, "g", members[0], gen, "orders", 0, 9, "")))
	}()
	<-log.entered

	within(t, "Heartbeat", func() {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Version, req.Group, req.MemberID, req.Generation = 4, "g", members[0], gen
		if code := c.Heartbeat(req).ErrorCode; code != 0 {
			t.Errorf("heartbeat: %v", kerr.ErrorForCode(code))
		}
	})
	within(t, "OffsetFetch", func() {
		if got := fetchAll(c, "g")["orders"][0]; got != 5 {
			t.Errorf("offset %d visible before its append returned, want 5", got)
		}
	})
	within(t, "DescribeGroups", func() {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{"g"}
		if resp := c.DescribeGroups(req); resp.Groups[0].State != "Stable" {
			t.Errorf("describe: state %q", resp.Groups[0].State)
		}
	})
	synctest.Wait()
	select {
	case code := <-committed:
		t.Fatalf("commit answered (%v) before its append returned", kerr.ErrorForCode(code))
	default:
	}
	log.open()
	if code := <-committed; code != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(code))
	}
	if got := fetchAll(c, "g")["orders"][0]; got != 9 {
		t.Fatalf("offset %d after the commit, want 9", got)
	}
}

// Commits of one partition queued behind a stuck append land in the log,
// and in memory, in the order they were decided. In a synctest bubble, so
// "the second commit has queued" is waited for, not polled.
func TestQueuedCommitsKeepTheirOrder(t *testing.T) {
	synctest.Test(t, testQueuedCommitsKeepTheirOrder)
}

func testQueuedCommitsKeepTheirOrder(t *testing.T) {
	c, log := newGatedCoordinator(t)
	log.shut(t)
	first := make(chan int16, 1)
	go func() { first <- commitCode(c.OffsetCommit(commitReq(2, "g", "", -1, "orders", 1, 100, ""))) }()
	<-log.entered
	second := make(chan int16, 1)
	go func() { second <- commitCode(c.OffsetCommit(commitReq(2, "g", "", -1, "orders", 1, 200, ""))) }()
	queued := func() int {
		c.mu.Lock()
		e := c.groups["g"]
		c.mu.Unlock()
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.queue)
	}
	synctest.Wait()
	if n := queued(); n != 1 {
		t.Fatalf("%d writes queued behind the stuck append, want the second commit", n)
	}
	log.open()
	if a, b := <-first, <-second; a != 0 || b != 0 {
		t.Fatalf("commits: %v, %v", kerr.ErrorForCode(a), kerr.ErrorForCode(b))
	}
	if got := fetchAll(c, "g")["orders"][1]; got != 200 {
		t.Fatalf("in memory: offset %d, want the later commit's 200", got)
	}
	reloaded := New(testConfig(), log.memLog, testImage, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := reloaded.Load(); err != nil {
		t.Fatal(err)
	}
	defer reloaded.Close()
	if got := fetchAll(reloaded, "g")["orders"][1]; got != 200 {
		t.Fatalf("after replay: offset %d, want the later commit's 200", got)
	}
}

// A group being deleted is not found again until its tombstones are in:
// a commit that arrives meanwhile starts a new group after them, so replay
// keeps it. In a synctest bubble, so the commit has surely reached the
// lookup (and waits there) before the deletion's append goes through.
func TestCommitDuringDeleteLandsAfterTheTombstones(t *testing.T) {
	synctest.Test(t, testCommitDuringDeleteLandsAfterTheTombstones)
}

func testCommitDuringDeleteLandsAfterTheTombstones(t *testing.T) {
	c, log := newGatedCoordinator(t)
	if code := commitCode(c.OffsetCommit(commitReq(2, "g", "", -1, "orders", 0, 7, ""))); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	log.shut(t)
	deleted := make(chan int16, 1)
	go func() {
		req := kmsg.NewPtrDeleteGroupsRequest()
		req.Groups = []string{"g"}
		deleted <- c.DeleteGroups(req).Groups[0].ErrorCode
	}()
	<-log.entered
	committed := make(chan int16, 1)
	go func() { committed <- commitCode(c.OffsetCommit(commitReq(2, "g", "", -1, "orders", 0, 8, ""))) }()
	synctest.Wait() // the commit is as far as it can get: if the lookup let it past, it has committed
	log.open()
	if a, b := <-deleted, <-committed; a != 0 || b != 0 {
		t.Fatalf("delete %v, commit %v", kerr.ErrorForCode(a), kerr.ErrorForCode(b))
	}
	reloaded := New(testConfig(), log.memLog, testImage, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := reloaded.Load(); err != nil {
		t.Fatal(err)
	}
	defer reloaded.Close()
	if mem, replayed := fetchAll(c, "g")["orders"][0], fetchAll(reloaded, "g")["orders"][0]; mem != 8 || replayed != 8 {
		t.Fatalf("offset in memory %d, after replay %d; want 8 for both", mem, replayed)
	}
}
