package group

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cg drives one ConsumerGroup with a fake clock and a topic image, checking
// the group's invariants after every call.
type cg struct {
	t   *testing.T
	g   *ConsumerGroup
	now time.Time
	img *TopicImage
}

func topicID(name string) [16]byte {
	sum := sha256.Sum256([]byte(name))
	return [16]byte(sum[:16])
}

func newImage(version uint64, topics map[string]int32) *TopicImage {
	im := &TopicImage{Version: version, Topics: map[string]TopicMeta{}}
	for n, p := range topics {
		im.Topics[n] = TopicMeta{Name: n, ID: topicID(n), Partitions: p}
	}
	return im
}

func newCG(t *testing.T, cfg ConsumerConfig, topics map[string]int32) *cg {
	t.Helper()
	n := 0
	cfg.NewMemberID = func() string { n++; return fmt.Sprintf("gen-%d", n) }
	return &cg{t: t, g: NewConsumerGroup("g", cfg), now: time.Unix(1_000_000, 0), img: newImage(1, topics)}
}

// setTopics installs a new image version.
func (h *cg) setTopics(topics map[string]int32) {
	h.img = newImage(h.img.Version+1, topics)
}

func (h *cg) advance(d time.Duration) {
	h.t.Helper()
	h.now = h.now.Add(d)
	h.g.Tick(h.now, h.img)
	checkConsumerInvariants(h.t, h.g)
}

func (h *cg) send(r *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	resp := h.g.Heartbeat(h.now, r, "client", "/10.0.0.1", h.img)
	checkConsumerInvariants(h.t, h.g)
	return resp
}

// ok sends r and fails the test unless it succeeds.
func (h *cg) ok(r *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	resp := h.send(r)
	if resp.ErrorCode != 0 {
		h.t.Fatalf("heartbeat %s@%d: %v (%s)", r.MemberID, r.MemberEpoch, kerr.ErrorForCode(resp.ErrorCode), derefString(resp.ErrorMessage))
	}
	return resp
}

// fails sends r and checks it is refused with want, changing nothing.
func (h *cg) fails(r *kmsg.ConsumerGroupHeartbeatRequest, want *kerr.Error) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	before, v := h.g.Snapshot(), h.g.Version()
	resp := h.send(r)
	if got := kerr.ErrorForCode(resp.ErrorCode); got != want {
		h.t.Fatalf("heartbeat %s@%d: got %v, want %v", r.MemberID, r.MemberEpoch, got, want)
	}
	if resp.ErrorMessage == nil || *resp.ErrorMessage == "" || resp.Assignment != nil {
		h.t.Fatalf("error response without message or with assignment: %+v", resp)
	}
	if !reflect.DeepEqual(before, h.g.Snapshot()) || h.g.Version() != v {
		h.t.Fatalf("refused heartbeat changed the group")
	}
	return resp
}

func (h *cg) state(want string) {
	h.t.Helper()
	if got := h.g.State(); got != want {
		h.t.Fatalf("state %s, want %s", got, want)
	}
}

func (h *cg) epochs(group, assignment int32) {
	h.t.Helper()
	if h.g.Epoch() != group || h.g.AssignmentEpoch() != assignment {
		h.t.Fatalf("epochs %d/%d, want %d/%d", h.g.Epoch(), h.g.AssignmentEpoch(), group, assignment)
	}
}

func joinReq(id string, topics ...string) *kmsg.ConsumerGroupHeartbeatRequest {
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = 1
	r.Group = "g"
	r.MemberID = id
	r.RebalanceTimeoutMillis = 30_000
	r.SubscribedTopicNames = append([]string{}, topics...)
	r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	return r
}

func staticJoin(id, instance string, topics ...string) *kmsg.ConsumerGroupHeartbeatRequest {
	r := joinReq(id, topics...)
	r.InstanceID = &instance
	return r
}

func regexJoin(id, re string) *kmsg.ConsumerGroupHeartbeatRequest {
	r := joinReq(id)
	r.SubscribedTopicNames = nil
	r.SubscribedTopicRegex = &re
	return r
}

// hb is a heartbeat reporting owned (name → partitions); nil owned sends
// Topics nil (unchanged, a keepalive).
func (h *cg) hb(id string, epoch int32, owned map[string][]int32) *kmsg.ConsumerGroupHeartbeatRequest {
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = 1
	r.Group = "g"
	r.MemberID = id
	r.MemberEpoch = epoch
	if owned != nil {
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		for _, n := range sortedNames(owned) {
			r.Topics = append(r.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: topicID(n), Partitions: owned[n]})
		}
	}
	return r
}

func leaveReq(id string, epoch int32) *kmsg.ConsumerGroupHeartbeatRequest {
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version, r.Group, r.MemberID, r.MemberEpoch = 1, "g", id, epoch
	return r
}

// assigned decodes a response's assignment by topic name (nil: none sent).
func (h *cg) assigned(resp *kmsg.ConsumerGroupHeartbeatResponse) map[string][]int32 {
	h.t.Helper()
	if resp.Assignment == nil {
		return nil
	}
	out := map[string][]int32{}
	for _, t := range resp.Assignment.Topics {
		m, ok := h.img.ByID(t.TopicID)
		if !ok {
			h.t.Fatalf("assignment names unknown topic %x", t.TopicID)
		}
		out[m.Name] = t.Partitions
	}
	return out
}

func (h *cg) wantAssignment(resp *kmsg.ConsumerGroupHeartbeatResponse, epoch int32, want map[string][]int32) {
	h.t.Helper()
	if resp.MemberEpoch != epoch {
		h.t.Fatalf("member epoch %d, want %d", resp.MemberEpoch, epoch)
	}
	got := h.assigned(resp)
	if want == nil {
		if got != nil {
			h.t.Fatalf("assignment %v, want none", got)
		}
		return
	}
	if got == nil || !reflect.DeepEqual(got, want) {
		h.t.Fatalf("assignment %v, want %v", got, want)
	}
}

func partsOf(ps ...int32) []int32 { return ps }

// checkConsumerInvariants checks the invariants documented in consumer.go.
func checkConsumerInvariants(t *testing.T, g *ConsumerGroup) {
	t.Helper()
	if g.epoch != g.assignmentEpoch {
		t.Fatalf("epoch %d, assignment epoch %d", g.epoch, g.assignmentEpoch)
	}
	if len(g.target) != len(g.members) {
		t.Fatalf("target has %d members, group %d", len(g.target), len(g.members))
	}
	held := 0
	for id, m := range g.members {
		if m.id != id {
			t.Fatalf("member %s filed under %s", m.id, id)
		}
		if _, ok := g.target[id]; !ok {
			t.Fatalf("member %s has no target", id)
		}
		if m.epoch > g.assignmentEpoch || (m.epoch < 0 && m.epoch != epochLeaveStatic) {
			t.Fatalf("member %s epoch %d, assignment epoch %d", id, m.epoch, g.assignmentEpoch)
		}
		if (m.state == msUnrevoked) != (len(m.revoking) > 0) {
			t.Fatalf("member %s state %v with %d pending revocations", id, m.state, len(m.revoking))
		}
		if m.state == msUnrevoked && m.epoch == g.assignmentEpoch {
			t.Fatalf("member %s unrevoked at the target epoch", id)
		}
		for _, hs := range []map[tpKey]int32{m.assigned, m.revoking} {
			for p, ep := range hs {
				held++
				if g.owners[p] != id {
					t.Fatalf("member %s holds %v, owner %q", id, p, g.owners[p])
				}
				if ep > m.epoch && m.epoch != epochLeaveStatic {
					t.Fatalf("member %s holds %v since epoch %d > its epoch %d", id, p, ep, m.epoch)
				}
			}
		}
		if m.instanceID != "" && g.instances[m.instanceID] != id {
			t.Fatalf("instance %s of %s maps to %q", m.instanceID, id, g.instances[m.instanceID])
		}
	}
	if held != len(g.owners) {
		t.Fatalf("%d partitions held, %d owners", held, len(g.owners))
	}
	for inst, id := range g.instances {
		if m := g.members[id]; m == nil || m.instanceID != inst {
			t.Fatalf("instance %s maps to %s", inst, id)
		}
	}
}

func TestConsumerJoinAndRebalance(t *testing.T) {
	h := newCG(t, DefaultConsumerConfig(), map[string]int32{"foo": 6})
	h.state("Empty")

	// One member gets everything at epoch 1.
	a := h.ok(joinReq("a", "foo"))
	if *a.MemberID != "a" || a.HeartbeatIntervalMillis != 5000 {
		t.Fatalf("join response %+v", a)
	}
	h.wantAssignment(a, 1, map[string][]int32{"foo": partsOf(0, 1, 2, 3, 4, 5)})
	h.epochs(1, 1)
	h.state("Stable")
	all := map[string][]int32{"foo": partsOf(0, 1, 2, 3, 4, 5)}
	// Nothing changed: no assignment in the response.
	h.wantAssignment(h.ok(h.hb("a", 1, nil)), 1, nil)
	h.wantAssignment(h.ok(h.hb("a", 1, all)), 1, nil)

	// A second member: the new target splits the topic, but b only gets
	// its half once a has revoked it.
	b := h.ok(joinReq("b", "foo"))
	h.epochs(2, 2)
	h.wantAssignment(b, 2, map[string][]int32{})
	h.state("Reconciling")
	if got := h.g.Members()[1].Target; !reflect.DeepEqual(got, map[string][]int32{"foo": partsOf(3, 4, 5)}) {
		t.Fatalf("b's target %v", got)
	}
	// a must revoke 3,4,5 and stays at epoch 1 meanwhile.
	h.wantAssignment(h.ok(h.hb("a", 1, all)), 1, map[string][]int32{"foo": partsOf(0, 1, 2)})
	// A keepalive (Topics nil) does not confirm the revocation.
	h.wantAssignment(h.ok(h.hb("a", 1, nil)), 1, nil)
	// Still withheld from b.
	h.wantAssignment(h.ok(h.hb("b", 2, map[string][]int32{})), 2, nil)
	if err := h.g.ValidateCommit("a", 1, "foo", 4); err != nil {
		t.Fatalf("commit of a partition pending revocation: %v", err)
	}
	// a confirms by no longer reporting them, and advances.
	h.wantAssignment(h.ok(h.hb("a", 1, map[string][]int32{"foo": partsOf(0, 1, 2)})), 2, nil)
	if err := h.g.ValidateCommit("a", 2, "foo", 4); !errors.Is(err, kerr.StaleMemberEpoch) {
		t.Fatalf("commit of a revoked partition: %v", err)
	}
	h.state("Reconciling")
	h.wantAssignment(h.ok(h.hb("b", 2, nil)), 2, map[string][]int32{"foo": partsOf(3, 4, 5)})
	h.state("Stable")

	// a leaves: b's target becomes everything, at once free.
	l := h.ok(leaveReq("a", -1))
	if l.MemberEpoch != -1 || *l.MemberID != "a" {
		t.Fatalf("leave response %+v", l)
	}
	h.epochs(3, 3)
	h.wantAssignment(h.ok(h.hb("b", 2, map[string][]int32{"foo": partsOf(3, 4, 5)})), 3, all)
	h.fails(h.hb("a", 2, nil), kerr.UnknownMemberID)
	h.fails(leaveReq("a", -1), kerr.UnknownMemberID)

	// b's session expires.
	h.advance(44 * time.Second)
	if h.g.Len() != 1 {
		t.Fatal("expired early")
	}
	if d := h.g.NextDeadline(); !d.Equal(h.now.Add(time.Second)) {
		t.Fatalf("next deadline %v", d)
	}
	h.advance(time.Second)
	h.state("Empty")
	h.epochs(4, 4)
	if !h.g.NextDeadline().IsZero() {
		t.Fatal("deadline with no members")
	}
	if err := h.g.Delete(); err != nil {
		t.Fatal(err)
	}
	h.state("Dead")
	if err := h.g.Delete(); !errors.Is(err, kerr.CoordinatorNotAvailable) {
		t.Fatal(err)
	}
	h.fails(joinReq("c", "foo"), kerr.CoordinatorNotAvailable)
	if d := h.g.Describe(h.img, false); d.ErrorCode != kerr.GroupIDNotFound.Code || d.State != "Dead" {
		t.Fatalf("describe dead: %+v", d)
	}
}

func TestConsumerRebalanceTimeoutFences(t *testing.T) {
	h := newCG(t, DefaultConsumerConfig(), map[string]int32{"foo": 4})
	h.ok(joinReq("a", "foo"))
	h.ok(joinReq("b", "foo"))
	all := map[string][]int32{"foo": partsOf(0, 1, 2, 3)}
	h.wantAssignment(h.ok(h.hb("a", 1, all)), 1, map[string][]int32{"foo": partsOf(0, 1)})
	if d := h.g.NextDeadline(); !d.Equal(h.now.Add(30 * time.Second)) {
		t.Fatalf("next deadline %v, want the revocation deadline", d)
	}
	// a keeps its session alive but never revokes.
	for range 5 {
		h.advance(5 * time.Second)
		h.ok(h.hb("a", 1, nil))
		h.ok(h.hb("b", 2, nil))
	}
	h.advance(4 * time.Second)
	if h.g.Len() != 2 {
		t.Fatal("fenced before the rebalance timeout")
	}
	h.ok(h.hb("b", 2, nil))
	h.advance(time.Second)
	if h.g.Len() != 1 || h.g.Epoch() != 3 {
		t.Fatalf("a not fenced: %d members, epoch %d", h.g.Len(), h.g.Epoch())
	}
	h.fails(h.hb("a", 1, nil), kerr.UnknownMemberID)
	h.wantAssignment(h.ok(h.hb("b", 2, map[string][]int32{})), 3, all)
}

func TestConsumerStaticMembers(t *testing.T) {
	h := newCG(t, DefaultConsumerConfig(), map[string]int32{"foo": 4})
	h.ok(staticJoin("a1", "ia", "foo"))
	h.ok(joinReq("b", "foo"))
	h.ok(h.hb("a1", 1, map[string][]int32{"foo": partsOf(0, 1, 2, 3)}))
	h.ok(h.hb("a1", 1, map[string][]int32{"foo": partsOf(0, 1)}))
	h.wantAssignment(h.ok(h.hb("b", 2, map[string][]int32{})), 2, map[string][]int32{"foo": partsOf(2, 3)})
	h.state("Stable")

	// Another process with the same instance id while a1 is active.
	h.fails(staticJoin("a2", "ia", "foo"), kerr.UnreleasedInstanceID)
	inst := "ia"
	other := h.hb("a2", 2, nil)
	other.InstanceID = &inst
	h.fails(other, kerr.FencedInstanceID)

	// a1 leaves temporarily: no epoch bump, its partitions stay reserved.
	l := h.ok(leaveReq("a1", -2))
	if l.MemberEpoch != -2 {
		t.Fatalf("static leave echoed epoch %d", l.MemberEpoch)
	}
	h.epochs(2, 2)
	h.state("Reconciling")
	h.fails(h.hb("a1", 2, nil), kerr.FencedMemberEpoch)
	h.wantAssignment(h.ok(h.hb("b", 2, nil)), 2, nil)

	// Its replacement takes over without a rebalance.
	v := h.g.Version()
	a2 := h.ok(staticJoin("a2", "ia", "foo"))
	h.wantAssignment(a2, 2, map[string][]int32{"foo": partsOf(0, 1)})
	h.epochs(2, 2)
	h.state("Stable")
	if h.g.Version() == v || h.g.Len() != 2 {
		t.Fatal("replacement not recorded")
	}
	h.fails(h.hb("a1", 2, nil), kerr.UnknownMemberID)
	if err := h.g.ValidateCommit("a2", 2, "foo", 1); err != nil {
		t.Fatal(err)
	}

	// A temporary leave that is not followed by a return expires after the
	// session timeout, and only then are the partitions reassigned.
	h.ok(leaveReq("a2", -2))
	h.advance(30 * time.Second)
	h.ok(h.hb("b", 2, nil))
	h.epochs(2, 2)
	h.advance(15 * time.Second)
	h.epochs(3, 3)
	h.wantAssignment(h.ok(h.hb("b", 2, nil)), 3, map[string][]int32{"foo": partsOf(0, 1, 2, 3)})

	// A static member that leaves with -1 is gone at once.
	h.ok(staticJoin("c", "ic", "foo"))
	h.epochs(4, 4)
	h.ok(leaveReq("c", -1))
	h.epochs(5, 5)
	// franz-go sends -2 without the instance id: the member id resolves
	// the static member.
	h.ok(staticJoin("d", "id", "foo"))
	h.ok(leaveReq("d", -2))
	h.epochs(6, 6)
	if h.g.Len() != 2 || h.g.members["d"].epoch != -2 {
		t.Fatalf("%d members", h.g.Len())
	}
	// -2 from a dynamic member is a plain leave.
	h.ok(leaveReq("b", -2))
	h.epochs(7, 7)
	lv := leaveReq("x", -2)
	lv.InstanceID = &inst
	h.fails(lv, kerr.UnknownMemberID)
	lv = leaveReq("x", -1)
	id := "id"
	lv.InstanceID = &id
	h.fails(lv, kerr.FencedInstanceID)
}

func TestConsumerStaticReplacementWithNewSubscription(t *testing.T) {
	h := newCG(t, DefaultConsumerConfig(), map[string]int32{"foo": 2, "bar": 2})
	h.ok(staticJoin("a1", "ia", "foo"))
	h.ok(leaveReq("a1", -2))
	h.epochs(1, 1)
	a2 := h.ok(staticJoin("a2", "ia", "bar"))
	h.epochs(2, 2)
	// The old partitions are given up at once: the new process never had
	// them.
	h.wantAssignment(a2, 2, map[string][]int32{"bar": partsOf(0, 1)})
	h.state("Stable")
}

func TestConsumerEpochFencing(t *testing.T) {
	h := newCG(t, DefaultConsumerConfig(), map[string]int32{"foo": 2})
	h.ok(joinReq("a", "foo", "bar"))
	foo := map[string][]int32{"foo": partsOf(0, 1)}
	// bar appears: the subscribed metadata changed, so the epoch bumps.
	h.setTopics(map[string]int32{"foo": 2, "bar": 1})
	r := h.ok(h.hb("a", 1, foo))
	h.epochs(2, 2)
	both := map[string][]int32{"foo": partsOf(0, 1), "bar": partsOf(0)}
	h.wantAssignment(r, 2, both)
	// That response was lost: the previous epoch is accepted while what
	// the member reports is still assigned to it, and the response carries
	// the assignment again.
	h.wantAssignment(h.ok(h.hb("a", 1, foo)), 2, both)
	h.wantAssignment(h.ok(h.hb("a", 1, nil)), 2, nil)
	v := h.g.Version()
	h.fails(h.hb("a", 1, map[string][]int32{"foo": partsOf(0, 1, 2)}), kerr.FencedMemberEpoch)
	h.fails(h.hb("a", 3, nil), kerr.FencedMemberEpoch)
	h.fails(h.hb("a", 0+5, both), kerr.FencedMemberEpoch)
	h.fails(h.hb("zz", 2, nil), kerr.UnknownMemberID)
	if h.g.Version() != v {
		t.Fatal("fenced heartbeats changed the version")
	}
	// A rejoin with the same id: the member owns nothing and is assigned
	// again, with no epoch bump.
	h.wantAssignment(h.ok(joinReq("a", "foo", "bar")), 2, both)
	h.epochs(2, 2)
	h.fails(h.hb("a", 1, foo), kerr.FencedMemberEpoch)
	// Deleting a topic drops it from the subscription and the assignment.
	h.setTopics(map[string]int32{"bar": 1})
	h.wantAssignment(h.ok(h.hb("a", 2, both)), 3, map[string][]int32{"bar": partsOf(0)})
	// Partitions growing bump the epoch.
	h.setTopics(map[string]int32{"bar": 3})
	h.wantAssignment(h.ok(h.hb("a", 3, nil)), 4, map[string][]int32{"bar": partsOf(0, 1, 2)})
	// A new version that changes nothing subscribed does not.
	h.setTopics(map[string]int32{"bar": 3, "other": 9})
	h.wantAssignment(h.ok(h.hb("a", 4, nil)), 4, nil)
}

func TestConsumerRegex(t *testing.T) {
	h := newCG(t, DefaultConsumerConfig(), map[string]int32{"foo": 2, "bar": 1, "foobar": 1, "__consumer_offsets": 3, "baz": 1})
	// franz-go's form of the regexes foo and offsets: matched against the
	// whole name, including internal topics.
	re := ".*(?:(?:foo)|(?:offsets)).*"
	r := h.ok(regexJoin("a", re))
	h.wantAssignment(r, 1, map[string][]int32{"foo": partsOf(0, 1), "foobar": partsOf(0), "__consumer_offsets": partsOf(0, 1, 2)})
	// A plain regex must match the whole name: "ba" matches no topic, "ba."
	// two of them.
	h.ok(regexJoin("b", "ba"))
	if got := h.g.Members()[1].Target; len(got) != 0 {
		t.Fatalf("b's target %v", got)
	}
	bre := "ba."
	upd := h.hb("b", 2, nil)
	upd.SubscribedTopicRegex = &bre
	h.wantAssignment(h.ok(upd), 3, map[string][]int32{"bar": partsOf(0), "baz": partsOf(0)})
	// A new topic matching a's regex is picked up when the image changes.
	h.setTopics(map[string]int32{"foo": 2, "bar": 1, "foobar": 1, "__consumer_offsets": 3, "baz": 1, "new-foo": 2})
	h.advance(time.Second)
	h.epochs(4, 4)
	r = h.ok(h.hb("a", 1, nil))
	h.wantAssignment(r, 4, map[string][]int32{"foo": partsOf(0, 1), "foobar": partsOf(0), "__consumer_offsets": partsOf(0, 1, 2), "new-foo": partsOf(0, 1)})
	d := h.g.Describe(h.img, false)
	if d.Members[0].SubscribedTopicRegex == nil || *d.Members[0].SubscribedTopicRegex != re || len(d.Members[0].SubscribedTopics) != 0 {
		t.Fatalf("describe: %+v", d.Members[0])
	}
	// Switching to names.
	upd = h.hb("a", 4, nil)
	upd.SubscribedTopicNames = []string{"foo"}
	empty := ""
	upd.SubscribedTopicRegex = &empty
	h.ok(upd)
	h.epochs(5, 5)
	if got := h.g.Members()[0].Target; !reflect.DeepEqual(got, map[string][]int32{"foo": partsOf(0, 1)}) {
		t.Fatalf("a's target %v", got)
	}
}

func TestConsumerRequestErrors(t *testing.T) {
	cfg := DefaultConsumerConfig()
	cfg.MaxSize = 1
	h := newCG(t, cfg, map[string]int32{"foo": 1})
	bad := func(mod func(r *kmsg.ConsumerGroupHeartbeatRequest)) *kmsg.ConsumerGroupHeartbeatRequest {
		r := joinReq("a", "foo")
		mod(r)
		return r
	}
	str := func(s string) *string { return &s }
	h.fails(bad(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RebalanceTimeoutMillis = -1 }), kerr.InvalidRequest)
	h.fails(bad(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicNames = nil }), kerr.InvalidRequest)
	h.fails(bad(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicRegex = str("f.*") }), kerr.InvalidRequest)
	h.fails(bad(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }), kerr.InvalidRequest)
	h.fails(bad(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Group = "" }), kerr.InvalidRequest)
	h.fails(bad(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -3 }), kerr.InvalidRequest)
	h.fails(bad(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.InstanceID = str("") }), kerr.InvalidRequest)
	h.fails(bad(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RackID = str("") }), kerr.InvalidRequest)
	h.fails(bad(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RebalanceTimeoutMillis = -5 }), kerr.InvalidRequest)
	h.fails(bad(func(r *kmsg.ConsumerGroupHeartbeatRequest) {
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: topicID("foo"), Partitions: []int32{0}}}
	}), kerr.InvalidRequest)
	h.fails(bad(func(r *kmsg.ConsumerGroupHeartbeatRequest) {
		r.SubscribedTopicNames, r.SubscribedTopicRegex = nil, str("(foo")
	}), kerr.InvalidRegularExpression)
	h.fails(bad(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.ServerAssignor = str("sticky") }), kerr.UnsupportedAssignor)
	h.fails(h.hb("", 3, nil), kerr.InvalidRequest)

	// The regex field does not exist in v0: a v0 join with only a regex
	// has no subscription.
	v0 := regexJoin("a", "foo")
	v0.Version = 0
	h.fails(v0, kerr.InvalidRequest)

	r := bad(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.ServerAssignor = str("range") })
	h.ok(r)
	h.fails(joinReq("b", "foo"), kerr.GroupMaxSizeReached)
	// The full group still takes a rejoin.
	h.ok(joinReq("a", "foo"))
	if d := h.g.Describe(nil, false); d.AssignorName != "uniform" {
		t.Fatalf("assignor %s", d.AssignorName)
	}
}

func TestConsumerV0GeneratesMemberID(t *testing.T) {
	h := newCG(t, DefaultConsumerConfig(), map[string]int32{"foo": 1})
	r := joinReq("", "foo")
	r.Version = 0
	resp := h.ok(r)
	if *resp.MemberID != "gen-1" || resp.MemberEpoch != 1 {
		t.Fatalf("v0 join: %+v", resp)
	}
	g := NewConsumerGroup("x", ConsumerConfig{})
	if id := g.newMemberID(); len(id) != 22 {
		t.Fatalf("generated member id %q", id)
	}
	if g.cfg.SessionTimeout != 45*time.Second || g.cfg.HeartbeatInterval != 5*time.Second || !slices.Equal(g.cfg.Assignors, []string{"uniform", "range"}) {
		t.Fatalf("defaults %+v", g.cfg)
	}
}
