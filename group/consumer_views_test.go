package group

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestConsumerValidateCommitAndFetch(t *testing.T) {
	h := newCG(t, DefaultConsumerConfig(), map[string]int32{"foo": 4, "bar": 1})
	if err := h.g.ValidateCommit("", -1, "foo", 0); err != nil {
		t.Fatalf("admin commit to an empty group: %v", err)
	}
	h.ok(joinReq("a", "foo"))
	// a holds foo 0-3 since epoch 1. b joins (epoch 2), a revokes 2,3 and
	// advances to 2; then bar appears (epoch 3) and a gets bar-0 at epoch 3.
	h.ok(joinReq("b", "foo"))
	h.ok(h.hb("a", 1, map[string][]int32{"foo": partsOf(0, 1, 2, 3)}))
	h.ok(h.hb("a", 1, map[string][]int32{"foo": partsOf(0, 1)}))
	h.ok(h.hb("b", 2, nil))
	upd := h.hb("a", 2, nil)
	upd.SubscribedTopicNames = []string{"foo", "bar"}
	h.ok(upd)
	h.epochs(3, 3)
	ma := h.g.members["a"]
	if ma.epoch != 3 || ma.assigned[tpKey{topicID("bar"), 0}] != 3 || ma.assigned[tpKey{topicID("foo"), 0}] != 1 {
		t.Fatalf("a: epoch %d, assigned %v", ma.epoch, ma.assigned)
	}
	for _, c := range []struct {
		member string
		epoch  int32
		topic  string
		p      int32
		want   error
	}{
		{"", -1, "foo", 0, kerr.UnknownMemberID},   // the group has members
		{"", 3, "foo", 0, kerr.UnknownMemberID},    // no member id
		{"zz", 3, "foo", 0, kerr.UnknownMemberID},  // unknown member
		{"a", 4, "foo", 0, kerr.StaleMemberEpoch},  // newer than the member
		{"a", -1, "foo", 0, kerr.StaleMemberEpoch}, // negative epoch of a member
		{"a", 3, "foo", 0, nil},                    // current epoch
		{"a", 1, "foo", 0, nil},                    // held since epoch 1 (KIP-1251)
		{"a", 2, "bar", 0, kerr.StaleMemberEpoch},  // assigned at 3, after 2
		{"a", 3, "bar", 0, nil},                    //
		{"a", 3, "foo", 2, kerr.StaleMemberEpoch},  // revoked, now b's
		{"a", 3, "nope", 0, kerr.StaleMemberEpoch}, // unknown topic
		{"b", 2, "foo", 2, nil},                    // b's, at epoch 2
		{"b", 1, "foo", 2, kerr.StaleMemberEpoch},  // before b had it
		{"b", 2, "foo", 0, kerr.StaleMemberEpoch},  // a's
	} {
		if err := h.g.ValidateCommit(c.member, c.epoch, c.topic, c.p); !errors.Is(err, c.want) && err != c.want {
			t.Errorf("commit %s@%d %s-%d: %v, want %v", c.member, c.epoch, c.topic, c.p, err, c.want)
		}
	}
	// A topic the member holds but no longer subscribes to is still found
	// by name.
	upd = h.hb("b", 2, nil)
	upd.SubscribedTopicNames = []string{"bar"}
	h.ok(upd) // b must now revoke foo 2,3
	if err := h.g.ValidateCommit("b", 2, "foo", 3); err != nil {
		t.Fatalf("commit of a partition pending revocation of an unsubscribed topic: %v", err)
	}

	for _, c := range []struct {
		member string
		epoch  int32
		want   error
	}{{"", -1, nil}, {"zz", 1, kerr.UnknownMemberID}, {"a", 3, nil}, {"a", 2, kerr.StaleMemberEpoch}} {
		if err := h.g.ValidateFetch(c.member, c.epoch); !errors.Is(err, c.want) && err != c.want {
			t.Errorf("fetch %s@%d: %v, want %v", c.member, c.epoch, err, c.want)
		}
	}
	if err := h.g.Delete(); !errors.Is(err, kerr.NonEmptyGroup) {
		t.Fatal(err)
	}
}

func TestConsumerDescribeAndMembers(t *testing.T) {
	h := newCG(t, DefaultConsumerConfig(), map[string]int32{"foo": 2, "bar": 2})
	r := staticJoin("a", "ia", "foo", "bar")
	rack := "r1"
	r.RackID = &rack
	assignor := "range"
	r.ServerAssignor = &assignor
	h.ok(r)
	h.ok(joinReq("b", "foo"))
	d := h.g.Describe(h.img, true)
	if d.Group != "g" || d.State != "Reconciling" || d.Epoch != 2 || d.AssignmentEpoch != 2 || d.AssignorName != "range" || d.AuthorizedOperations != authorizedGroupOps {
		t.Fatalf("describe: %+v", d)
	}
	if len(d.Members) != 2 {
		t.Fatalf("members %+v", d.Members)
	}
	a := d.Members[0]
	if a.MemberID != "a" || *a.InstanceID != "ia" || *a.RackID != "r1" || a.MemberEpoch != 1 || a.ClientID != "client" || a.ClientHost != "/10.0.0.1" || !slices.Equal(a.SubscribedTopics, []string{"bar", "foo"}) || a.SubscribedTopicRegex != nil || a.MemberType != 1 {
		t.Fatalf("member a: %+v", a)
	}
	if got := a.Assignment.TopicPartitions; len(got) != 2 || got[0].Topic != "bar" || got[1].Topic != "foo" || got[1].TopicID != topicID("foo") || !slices.Equal(got[1].Partitions, partsOf(0, 1)) {
		t.Fatalf("a's assignment %+v", got)
	}
	// range: a gets foo-0 and bar-0,1; b foo-1.
	if got := a.TargetAssignment.TopicPartitions; len(got) != 2 || !slices.Equal(got[0].Partitions, partsOf(0, 1)) || !slices.Equal(got[1].Partitions, partsOf(0)) {
		t.Fatalf("a's target %+v", got)
	}
	if d := h.g.Describe(h.img, false); d.AuthorizedOperations != -2147483648 {
		t.Fatalf("authorized operations %d", d.AuthorizedOperations)
	}
	ms := h.g.Members()
	want := []ConsumerMemberInfo{
		{MemberID: "a", InstanceID: "ia", ClientID: "client", ClientHost: "/10.0.0.1", MemberEpoch: 1,
			Assigned: map[string][]int32{"foo": partsOf(0, 1), "bar": partsOf(0, 1)},
			Target:   map[string][]int32{"foo": partsOf(0), "bar": partsOf(0, 1)}},
		{MemberID: "b", ClientID: "client", ClientHost: "/10.0.0.1", MemberEpoch: 2,
			Assigned: map[string][]int32{},
			Target:   map[string][]int32{"foo": partsOf(1)}},
	}
	if !reflect.DeepEqual(ms, want) {
		t.Fatalf("members\n%+v\nwant\n%+v", ms, want)
	}
}

func TestConsumerSnapshotRoundTrip(t *testing.T) {
	h := newCG(t, DefaultConsumerConfig(), map[string]int32{"foo": 4, "bar": 2, "baz": 1})
	h.ok(staticJoin("a", "ia", "foo", "bar"))
	h.ok(joinReq("b", "foo"))
	h.ok(regexJoin("c", "ba."))
	h.ok(h.hb("a", 1, nil)) // a is now revoking
	h.ok(staticJoin("s", "is", "baz"))
	h.ok(leaveReq("s", -2))
	h.now = h.now.Add(10 * time.Second)
	snap := h.g.Snapshot()
	raw, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	var back ConsumerSnapshot
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, snap) {
		t.Fatalf("json round trip\n%+v\n%+v", back, snap)
	}
	g := RestoreConsumerGroup("g", DefaultConsumerConfig(), back, h.now)
	checkConsumerInvariants(t, g)
	if got := g.Snapshot(); !reflect.DeepEqual(got, snap) {
		t.Fatalf("restored\n%+v\nwant\n%+v", got, snap)
	}
	if g.State() != h.g.State() || g.Epoch() != h.g.Epoch() || !reflect.DeepEqual(g.Members(), h.g.Members()) {
		t.Fatal("restored group differs")
	}
	// Sessions restart at the restore; a is still revoking.
	if d := g.NextDeadline(); !d.Equal(h.now.Add(30 * time.Second)) {
		t.Fatalf("next deadline %v", d)
	}
	// The restored group carries on; the first heartbeat resends the
	// assignment, and an unchanged image bumps nothing.
	h.g = g
	r := h.ok(h.hb("a", 1, nil))
	if r.Assignment == nil || g.Epoch() != snap.Epoch {
		t.Fatalf("after restore: %+v, epoch %d", r, g.Epoch())
	}
	h.ok(h.hb("a", 1, map[string][]int32{"bar": partsOf(0, 1), "foo": partsOf(0, 1)}))
	h.advance(45 * time.Second)
	h.state("Empty")
}

func TestConsumerTickWithoutImage(t *testing.T) {
	h := newCG(t, DefaultConsumerConfig(), map[string]int32{"foo": 2, "bar": 1})
	h.ok(joinReq("a", "foo"))
	h.ok(joinReq("b", "bar"))
	// Without an image the group keeps the metadata it saw.
	h.now = h.now.Add(46 * time.Second)
	r := h.g.Heartbeat(h.now, h.hb("a", 1, nil), "c", "h", nil)
	if r.ErrorCode != 0 {
		t.Fatal(r.ErrorCode)
	}
	h.g.Tick(h.now, nil)
	checkConsumerInvariants(t, h.g)
	if h.g.Len() != 1 || h.g.Epoch() != 3 || len(h.g.meta) != 1 {
		t.Fatalf("%d members, epoch %d, meta %v", h.g.Len(), h.g.Epoch(), h.g.meta)
	}
	h.g.Tick(h.now, nil)
	if h.g.Epoch() != 3 {
		t.Fatal("idle tick bumped")
	}
}

func TestConsumerEdgeCases(t *testing.T) {
	var nilImage *TopicImage
	if _, ok := nilImage.ByID(topicID("x")); ok {
		t.Fatal("nil image found a topic")
	}
	cfg := DefaultConsumerConfig()
	cfg.Assignors = []string{"custom"} // unknown assignors run as uniform
	h := newCG(t, cfg, map[string]int32{"foo": 2, "bar": 2})
	if h.g.ID() != "g" {
		t.Fatal(h.g.ID())
	}
	if _, ok := h.img.ByID(topicID("nope")); ok {
		t.Fatal("found a missing topic")
	}

	// A static member changes its instance id on a rejoin, then leaves and
	// comes back under a join without Topics and with a new subscription:
	// it owns nothing, so it is not left revoking at epoch 0.
	h.ok(staticJoin("a", "x", "foo"))
	h.ok(staticJoin("a", "y", "foo"))
	if _, ok := h.g.instances["x"]; ok || h.g.instances["y"] != "a" {
		t.Fatalf("instances %v", h.g.instances)
	}
	unknown := h.hb("a", 1, nil)
	x := "x"
	unknown.InstanceID = &x
	h.fails(unknown, kerr.UnknownMemberID)
	lv := leaveReq("a", -2)
	y := "y"
	lv.InstanceID = &y
	h.ok(lv)
	r := staticJoin("a2", "y", "bar")
	r.Topics = nil
	h.wantAssignment(h.ok(r), 2, map[string][]int32{"bar": partsOf(0, 1)})

	// A member switching topics revokes the old one, which it can still
	// commit by name though nobody subscribes to it any more.
	h.ok(joinReq("b", "foo"))
	h.ok(h.hb("b", 3, nil))
	upd := h.hb("b", 3, nil)
	upd.SubscribedTopicNames = []string{"bar"}
	h.ok(upd)
	if h.g.members["b"].state != msUnrevoked {
		t.Fatal("b is not revoking foo")
	}
	if err := h.g.ValidateCommit("b", 3, "foo", 1); err != nil {
		t.Fatal(err)
	}
	// A restored group no longer knows foo's name: the id stands in.
	rg := RestoreConsumerGroup("g", cfg, h.g.Snapshot(), h.now)
	if got := rg.Members()[1].Assigned; len(got) != 0 {
		t.Fatalf("b assigned %v", got)
	}
	if _, ok := rg.byName(tpSetOf([]tpKey{{topicID("foo"), 0}}))[hexID("foo")]; !ok {
		t.Fatal("no hex name")
	}
	// Deleting foo while b revokes it ends the revocation.
	h.setTopics(map[string]int32{"bar": 2})
	h.advance(time.Second)
	if m := h.g.members["b"]; m.state != msStable || len(m.revoking) != 0 {
		t.Fatalf("b still revoking: %v", m.revoking)
	}

	// A dead group ignores time.
	h.ok(leaveReq("a2", -1))
	h.ok(leaveReq("b", -1))
	if err := h.g.Delete(); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Hour)
	if !h.g.NextDeadline().IsZero() || h.g.State() != "Dead" {
		t.Fatal("dead group scheduled work")
	}
}

func hexID(name string) string {
	id := topicID(name)
	return hex.EncodeToString(id[:])
}
