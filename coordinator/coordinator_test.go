package coordinator

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/group"
)

// memLog is an in-memory __consumer_offsets whose appends can be made to fail.
type memLog struct {
	mu      sync.Mutex
	parts   map[int32][]Record
	n       int32
	failErr error
	appends int
}

// Leads is true: one node leads every partition.
func (l *memLog) Leads(int32) bool { return true }

func (l *memLog) Open(create bool, partitions int32) (int32, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 && create {
		l.n = partitions
		l.parts = map[int32][]Record{}
	}
	return l.n, nil
}

func (l *memLog) Append(p int32, recs []Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failErr != nil {
		return l.failErr
	}
	if p < 0 || p >= l.n {
		return errors.New("no such partition")
	}
	l.appends++
	for _, r := range recs {
		l.parts[p] = append(l.parts[p], Record{Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value)})
	}
	return nil
}

func (l *memLog) Replay(p int32, fn func(Record) error) error {
	l.mu.Lock()
	recs := append([]Record(nil), l.parts[p]...)
	l.mu.Unlock()
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

var topicID = [16]byte{1, 2, 3}

func testImage() *group.TopicImage {
	return &group.TopicImage{Version: 1, Topics: map[string]group.TopicMeta{
		"orders": {Name: "orders", ID: topicID, Partitions: 3},
		"audit":  {Name: "audit", ID: [16]byte{9}, Partitions: 1},
	}}
}

func testConfig() Config {
	return Config{
		Classic:          group.Config{MinSessionTimeout: time.Second, MaxSessionTimeout: time.Minute},
		Consumer:         group.DefaultConsumerConfig(),
		Partitions:       4,
		Retention:        time.Hour,
		MaxMetadataBytes: 16,
	}
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

// nowClock is a clock.Clock that reads the time from a function and arms
// real timers (time.AfterFunc: the fake time of a synctest bubble).
type nowClock func() time.Time

func (n nowClock) Now() time.Time { return n() }
func (nowClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestCoordinator(t *testing.T, log *memLog, clk *testClock) *Coordinator {
	t.Helper()
	return startCoordinator(t, log, clk.now)
}

// startCoordinator loads a coordinator of testConfig on log, reading the
// time from now, and closes it when the test ends.
func startCoordinator(t *testing.T, log Log, now func() time.Time) *Coordinator {
	t.Helper()
	c := New(testConfig(), log, testImage, nowClock(now), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := c.Load(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func commitReq(version int16, groupID, member string, gen int32, topic string, part int32, off int64, md string) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.MemberID, req.Generation = version, groupID, member, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	if version >= 10 {
		rt.TopicID = testImage().Topics[topic].ID
	}
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = part, off, 4, kmsg.StringPtr(md)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func commitCode(resp *kmsg.OffsetCommitResponse) int16 { return resp.Topics[0].Partitions[0].ErrorCode }

func fetchAll(c *Coordinator, groupID string) map[string]map[int32]int64 {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = groupID
	req.Groups = append(req.Groups, g)
	out := map[string]map[int32]int64{}
	for _, t := range c.OffsetFetch(req).Groups[0].Topics {
		for _, p := range t.Partitions {
			if out[t.Topic] == nil {
				out[t.Topic] = map[int32]int64{}
			}
			out[t.Topic][p.Partition] = p.Offset
		}
	}
	return out
}

func TestCommitFetchSurvivesRestart(t *testing.T) {
	log, clk := &memLog{}, &testClock{t: time.Unix(1_700_000_000, 0)}
	c := newTestCoordinator(t, log, clk)
	for _, v := range []int16{0, 2, 7, 9} {
		if code := commitCode(c.OffsetCommit(commitReq(v, "g1", "", -1, "orders", 1, 100+int64(v), "m"))); code != 0 {
			t.Fatalf("v%d standalone commit: %s", v, kerr.ErrorForCode(code))
		}
	}
	if code := commitCode(c.OffsetCommit(commitReq(10, "g1", "", -1, "orders", 2, 7, ""))); code != 0 {
		t.Fatalf("v10 commit by topic id: %s", kerr.ErrorForCode(code))
	}
	want := map[string]map[int32]int64{"orders": {1: 109, 2: 7}}
	if got := fetchAll(c, "g1"); !equalOffsets(got, want) {
		t.Fatalf("fetch %v, want %v", got, want)
	}
	c.Close()
	c2 := newTestCoordinator(t, log, clk)
	if got := fetchAll(c2, "g1"); !equalOffsets(got, want) {
		t.Fatalf("after restart %v, want %v", got, want)
	}
	// Old-style fetch of named partitions, including one never committed.
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.Group = 5, "g1"
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = "orders", []int32{1, 0}
	req.Topics = append(req.Topics, rt)
	resp := c2.OffsetFetch(req)
	ps := resp.Topics[0].Partitions
	if ps[0].Offset != 109 || ps[0].LeaderEpoch != 4 || *ps[0].Metadata != "m" || ps[1].Offset != -1 {
		t.Fatalf("v5 fetch: %+v", ps)
	}
}

func equalOffsets(a, b map[string]map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for t, ps := range a {
		if len(ps) != len(b[t]) {
			return false
		}
		for p, o := range ps {
			if b[t][p] != o {
				return false
			}
		}
	}
	return true
}

func TestCommitBadInput(t *testing.T) {
	log, clk := &memLog{}, &testClock{t: time.Unix(1_700_000_000, 0)}
	c := newTestCoordinator(t, log, clk)
	for _, tc := range []struct {
		name string
		req  *kmsg.OffsetCommitRequest
		want *kerr.Error
	}{
		{"unknown topic", commitReq(8, "g", "", -1, "nope", 0, 1, ""), kerr.UnknownTopicOrPartition},
		{"partition out of range", commitReq(8, "g", "", -1, "orders", 3, 1, ""), kerr.UnknownTopicOrPartition},
		{"negative partition", commitReq(8, "g", "", -1, "orders", -1, 1, ""), kerr.UnknownTopicOrPartition},
		{"metadata too large", commitReq(8, "g", "", -1, "orders", 0, 1, strings.Repeat("x", 17)), kerr.OffsetMetadataTooLarge},
		{"empty group id", commitReq(8, "", "", -1, "orders", 0, 1, ""), kerr.InvalidGroupID},
		{"member of unknown group", commitReq(8, "ghost", "m-1", 3, "orders", 0, 1, ""), kerr.IllegalGeneration},
		{"member of unknown group v9", commitReq(9, "ghost", "m-1", 3, "orders", 0, 1, ""), kerr.GroupIDNotFound},
	} {
		if code := commitCode(c.OffsetCommit(tc.req)); code != tc.want.Code {
			t.Errorf("%s: %v, want %v", tc.name, kerr.ErrorForCode(code), tc.want)
		}
	}
	if got := fetchAll(c, "g"); len(got) != 0 {
		t.Fatalf("rejected commits left offsets: %v", got)
	}
	// A failed append answers a retriable error and changes nothing.
	log.failErr = errors.New("disk on fire")
	if code := commitCode(c.OffsetCommit(commitReq(8, "g", "", -1, "orders", 0, 5, ""))); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("failed append: %v", kerr.ErrorForCode(code))
	}
	log.failErr = kerr.MessageTooLarge
	if code := commitCode(c.OffsetCommit(commitReq(8, "g", "", -1, "orders", 0, 5, ""))); code != kerr.InvalidCommitOffsetSize.Code {
		t.Fatalf("too large: %v", kerr.ErrorForCode(code))
	}
	log.failErr = nil
	if got := fetchAll(c, "g"); len(got) != 0 {
		t.Fatalf("failed commits left offsets: %v", got)
	}
}

// joinSync brings n classic members to Stable through the coordinator's
// blocking JoinGroup/SyncGroup and returns their member ids (leader first).
func joinSync(t *testing.T, c *Coordinator, groupID string, n int) ([]string, int32) {
	t.Helper()
	results := make(chan *kmsg.JoinGroupResponse, n)
	for i := 0; i < n; i++ {
		go func() {
			req := kmsg.NewPtrJoinGroupRequest()
			req.Version, req.Group, req.ProtocolType = 9, groupID, "consumer"
			req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 2000
			md := kmsg.ConsumerMemberMetadata{Topics: []string{"orders"}}
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name, p.Metadata = "range", md.AppendTo(nil)
			req.Protocols = append(req.Protocols, p)
			resp := c.JoinGroup(req, Client{ID: "cl", Host: "/127.0.0.1"})
			if resp.ErrorCode == kerr.MemberIDRequired.Code {
				req.MemberID = resp.MemberID
				resp = c.JoinGroup(req, Client{ID: "cl", Host: "/127.0.0.1"})
			}
			results <- resp
		}()
	}
	var leader string
	var members []string
	var gen int32
	for i := 0; i < n; i++ {
		r := <-results
		if r.ErrorCode != 0 {
			t.Fatalf("join: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		gen, leader = r.Generation, r.LeaderID
		if r.MemberID == r.LeaderID {
			if len(r.Members) != n {
				t.Fatalf("leader sees %d members, want %d", len(r.Members), n)
			}
			for _, m := range r.Members {
				members = append(members, m.MemberID)
			}
		}
	}
	if len(members) != n {
		// Stragglers joined a later generation than the first ones: the
		// rebalance completed early. Callers use n=1 or tolerate it.
		t.Fatalf("got %d members from the leader's response", len(members))
	}
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := kmsg.NewPtrSyncGroupRequest()
			req.Version, req.Group, req.MemberID, req.Generation = 5, groupID, m, gen
			req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
			if m == leader {
				for _, o := range members {
					a := kmsg.NewSyncGroupRequestGroupAssignment()
					a.MemberID, a.MemberAssignment = o, []byte("assigned-"+o)
					req.GroupAssignment = append(req.GroupAssignment, a)
				}
			}
			resp := c.SyncGroup(req)
			if resp.ErrorCode != 0 || string(resp.MemberAssignment) != "assigned-"+m {
				t.Errorf("sync %s: %v %q", m, kerr.ErrorForCode(resp.ErrorCode), resp.MemberAssignment)
			}
		}()
	}
	wg.Wait()
	return members, gen
}

func TestClassicGroupPersistsAndReloads(t *testing.T) {
	log, clk := &memLog{}, &testClock{t: time.Unix(1_700_000_000, 0)}
	c := newTestCoordinator(t, log, clk)
	members, gen := joinSync(t, c, "cg", 1)
	if code := commitCode(c.OffsetCommit(commitReq(8, "cg", members[0], gen, "orders", 0, 42, ""))); code != 0 {
		t.Fatalf("member commit: %v", kerr.ErrorForCode(code))
	}
	if code := commitCode(c.OffsetCommit(commitReq(8, "cg", members[0], gen+1, "orders", 0, 43, ""))); code != kerr.IllegalGeneration.Code {
		t.Fatalf("stale generation commit: %v", kerr.ErrorForCode(code))
	}
	if code := commitCode(c.OffsetCommit(commitReq(8, "cg", "", -1, "orders", 0, 43, ""))); code != kerr.UnknownMemberID.Code {
		t.Fatalf("standalone commit to a live group: %v", kerr.ErrorForCode(code))
	}
	c.Close()

	c2 := newTestCoordinator(t, log, clk)
	dreq := kmsg.NewPtrDescribeGroupsRequest()
	dreq.Version, dreq.Groups = 5, []string{"cg", "missing"}
	d := c2.DescribeGroups(dreq)
	g := d.Groups[0]
	if g.ErrorCode != 0 || g.State != "Stable" || g.Protocol != "range" || len(g.Members) != 1 || g.Members[0].MemberID != members[0] || string(g.Members[0].MemberAssignment) != "assigned-"+members[0] {
		t.Fatalf("reloaded group: %+v", g)
	}
	if d.Groups[1].State != "Dead" {
		t.Fatalf("missing group: %+v", d.Groups[1])
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version, hb.Group, hb.MemberID, hb.Generation = 4, "cg", members[0], gen
	if r := c2.Heartbeat(hb); r.ErrorCode != 0 {
		t.Fatalf("heartbeat after reload: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	hb.MemberID = "stranger"
	if r := c2.Heartbeat(hb); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member heartbeat: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if got := fetchAll(c2, "cg"); got["orders"][0] != 42 {
		t.Fatalf("offsets after reload: %v", got)
	}

	// A non-empty group cannot be deleted; once its member leaves it can,
	// and the deletion survives a restart.
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Version, del.Groups = 2, []string{"cg"}
	if r := c2.DeleteGroups(del); r.Groups[0].ErrorCode != kerr.NonEmptyGroup.Code {
		t.Fatalf("delete non-empty: %v", kerr.ErrorForCode(r.Groups[0].ErrorCode))
	}
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Version, lv.Group = 5, "cg"
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = members[0]
	lv.Members = append(lv.Members, m)
	if r := c2.LeaveGroup(lv); r.ErrorCode != 0 || r.Members[0].ErrorCode != 0 {
		t.Fatalf("leave: %+v", r)
	}
	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.Version, lreq.StatesFilter = 5, []string{"empty"}
	if r := c2.ListGroups(lreq); len(r.Groups) != 1 || r.Groups[0].Group != "cg" || r.Groups[0].GroupType != "classic" {
		t.Fatalf("list empty groups: %+v", r.Groups)
	}
	if r := c2.DeleteGroups(del); r.Groups[0].ErrorCode != 0 {
		t.Fatalf("delete: %v", kerr.ErrorForCode(r.Groups[0].ErrorCode))
	}
	if r := c2.DeleteGroups(del); r.Groups[0].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete again: %v", kerr.ErrorForCode(r.Groups[0].ErrorCode))
	}
	c2.Close()
	c3 := newTestCoordinator(t, log, clk)
	if got := fetchAll(c3, "cg"); len(got) != 0 {
		t.Fatalf("deleted group's offsets came back: %v", got)
	}
	if r := c3.ListGroups(kmsg.NewPtrListGroupsRequest()); len(r.Groups) != 0 {
		t.Fatalf("deleted group listed: %+v", r.Groups)
	}
}

func TestOffsetsRetention(t *testing.T) {
	log, clk := &memLog{}, &testClock{t: time.Unix(1_700_000_000, 0)}
	c := newTestCoordinator(t, log, clk)
	c.OffsetCommit(commitReq(8, "old", "", -1, "orders", 0, 1, ""))
	clk.add(50 * time.Minute)
	c.OffsetCommit(commitReq(8, "old", "", -1, "orders", 1, 2, ""))
	c.ExpireOffsets()
	if got := fetchAll(c, "old"); len(got["orders"]) != 2 {
		t.Fatalf("expired too early: %v", got)
	}
	clk.add(20 * time.Minute) // partition 0 is 70 min old, partition 1 is 20
	c.ExpireOffsets()
	if got := fetchAll(c, "old"); len(got["orders"]) != 1 || got["orders"][1] != 2 {
		t.Fatalf("after first expiry: %v", got)
	}
	clk.add(time.Hour)
	c.ExpireOffsets()
	if r := c.ListGroups(kmsg.NewPtrListGroupsRequest()); len(r.Groups) != 0 {
		t.Fatalf("group without offsets or members still listed: %+v", r.Groups)
	}
	c.Close()
	c = newTestCoordinator(t, log, clk)
	if got := fetchAll(c, "old"); len(got) != 0 {
		t.Fatalf("expired offsets came back after restart: %v", got)
	}

	// A group with members keeps its offsets however old they are.
	members, gen := joinSync(t, c, "live", 1)
	c.OffsetCommit(commitReq(8, "live", members[0], gen, "orders", 0, 9, ""))
	clk.add(3 * time.Hour)
	c.ExpireOffsets()
	if got := fetchAll(c, "live"); got["orders"][0] != 9 {
		t.Fatalf("live group's offsets expired: %v", got)
	}
}

func TestOffsetDelete(t *testing.T) {
	log, clk := &memLog{}, &testClock{t: time.Unix(1_700_000_000, 0)}
	c := newTestCoordinator(t, log, clk)
	members, gen := joinSync(t, c, "od", 1)
	c.OffsetCommit(commitReq(8, "od", members[0], gen, "orders", 0, 5, ""))
	c.OffsetCommit(commitReq(8, "od", members[0], gen, "audit", 0, 6, ""))
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = "od"
	for _, name := range []string{"orders", "audit"} {
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = name
		rp := kmsg.NewOffsetDeleteRequestTopicPartition()
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp := c.OffsetDelete(req)
	if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code || resp.Topics[1].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete: %+v", resp)
	}
	if got := fetchAll(c, "od"); len(got["audit"]) != 0 || got["orders"][0] != 5 {
		t.Fatalf("after offset delete: %v", got)
	}
	req.Group = "nobody"
	if r := c.OffsetDelete(req); r.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("unknown group: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

func TestPartitionForMatchesKafka(t *testing.T) {
	// Expected values printed by Java: (s.hashCode() & 0x7fffffff) % 50,
	// which is Kafka's Utils.abs(hashCode) % partitions.
	for _, tc := range []struct {
		group string
		want  int32
	}{
		{"my-group", 36},
		{"console-consumer-12345", 6},
		{"groupé", 42},
		{"g\U0001F600x", 12}, // a surrogate pair in Java
		{"", 0},
	} {
		if got := PartitionFor(tc.group, 50); got != tc.want {
			t.Errorf("%q: %d, want %d", tc.group, got, tc.want)
		}
	}
}
