package group

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// harness drives one Group with a fake clock and collects every delivery,
// checking that no parked request is answered twice.
type harness struct {
	t   *testing.T
	g   *Group
	now time.Time
	got map[Ticket]Delivery
}

func testConfig() Config {
	return Config{MinSessionTimeout: 6 * time.Second, MaxSessionTimeout: time.Minute}
}

func newHarness(t *testing.T, cfg Config) *harness {
	n := 0
	cfg.NewMemberID = func(client string) string {
		n++
		return fmt.Sprintf("%s-%d", client, n)
	}
	return &harness{t: t, g: New("g", cfg), now: time.Unix(1_000_000, 0), got: map[Ticket]Delivery{}}
}

func (h *harness) collect() {
	h.t.Helper()
	for _, d := range h.g.Drain() {
		if _, dup := h.got[d.Ticket]; dup || d.Ticket == 0 {
			h.t.Fatalf("ticket %d delivered twice or zero", d.Ticket)
		}
		h.got[d.Ticket] = d
	}
}

func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.now = h.now.Add(d)
	h.g.Tick(h.now)
	h.collect()
}

func req(client, memberID string, protocols ...string) JoinRequest {
	if len(protocols) == 0 {
		protocols = []string{"range"}
	}
	r := JoinRequest{
		MemberID: memberID, ClientID: client, ClientHost: "/127.0.0.1",
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 30 * time.Second,
		ProtocolType: "consumer", RequireKnownMemberID: true,
	}
	for _, p := range protocols {
		r.Protocols = append(r.Protocols, Protocol{Name: p, Metadata: []byte(client + "/" + p)})
	}
	return r
}

func (h *harness) join(r JoinRequest) (*JoinResult, Ticket) {
	h.t.Helper()
	res, tk := h.g.Join(h.now, r)
	if (res == nil) == (tk == 0) {
		h.t.Fatalf("join: want exactly one of result and ticket, got %v, %d", res, tk)
	}
	h.collect()
	return res, tk
}

// joinNew does the KIP-394 dance for a new dynamic member and returns its id
// and the ticket of its real join.
func (h *harness) joinNew(client string, protocols ...string) (string, Ticket) {
	h.t.Helper()
	res, _ := h.join(req(client, "", protocols...))
	if !errors.Is(res.Err, errMemberIDRequired) || res.MemberID == "" {
		h.t.Fatalf("first join: %+v, want MEMBER_ID_REQUIRED with an id", res)
	}
	_, tk := h.join(req(client, res.MemberID, protocols...))
	if tk == 0 {
		h.t.Fatalf("join of %s was not parked", client)
	}
	return res.MemberID, tk
}

func (h *harness) leave(ms []LeaveMember) []error {
	h.t.Helper()
	errs := h.g.Leave(h.now, ms)
	if len(errs) != len(ms) {
		h.t.Fatalf("leave: %d errors for %d members", len(errs), len(ms))
	}
	h.collect()
	return errs
}

func (h *harness) joined(tk Ticket) *JoinResult {
	h.t.Helper()
	d, ok := h.got[tk]
	if !ok || d.Join == nil {
		h.t.Fatalf("join ticket %d not answered", tk)
	}
	delete(h.got, tk)
	return d.Join
}

func (h *harness) synced(tk Ticket) *SyncResult {
	h.t.Helper()
	d, ok := h.got[tk]
	if !ok || d.Sync == nil {
		h.t.Fatalf("sync ticket %d not answered", tk)
	}
	delete(h.got, tk)
	return d.Sync
}

func (h *harness) waiting(tk Ticket) {
	h.t.Helper()
	if _, ok := h.got[tk]; ok {
		h.t.Fatalf("ticket %d answered early", tk)
	}
}

func (h *harness) state(want State) {
	h.t.Helper()
	if got := h.g.State(); got != want {
		h.t.Fatalf("state %v, want %v", got, want)
	}
}

func (h *harness) heartbeat(id string, gen int32, want error) {
	h.t.Helper()
	h.heartbeatStatic(id, "", gen, want)
}

func (h *harness) heartbeatStatic(id, instance string, gen int32, want error) {
	h.t.Helper()
	err := h.g.Heartbeat(h.now, HeartbeatRequest{MemberID: id, InstanceID: instance, Generation: gen})
	if !errors.Is(err, want) || (want == nil && err != nil) {
		h.t.Fatalf("heartbeat %s gen %d: %v, want %v", id, gen, err, want)
	}
}

// stableTwo brings two dynamic members a (leader) and b to Stable at
// generation 1 and returns their ids.
func (h *harness) stableTwo() (a, b string) {
	h.t.Helper()
	a, ta := h.joinNew("a")
	// b joins with a's join parked: without an initial delay the group
	// would already have completed with a alone, so rejoin a to include b.
	if h.g.State() == CompletingRebalance {
		h.joined(ta)
		_, ta = h.join(req("a", a))
	}
	b, tb := h.joinNew("b")
	if h.g.State() != CompletingRebalance {
		_, ta = h.join(req("a", a))
	}
	ja, jb := h.joined(ta), h.joined(tb)
	if ja.Leader != a || len(ja.Members) != 2 || len(jb.Members) != 0 || ja.Generation != jb.Generation {
		h.t.Fatalf("join results: %+v / %+v", ja, jb)
	}
	h.sync(a, b, ja.Generation)
	return a, b
}

// sync has follower f sync first (parked), then leader l with an assignment
// for each.
func (h *harness) sync(l, f string, gen int32) {
	h.t.Helper()
	res, tf := h.g.Sync(h.now, SyncRequest{MemberID: f, Generation: gen})
	if res != nil {
		h.t.Fatalf("follower sync answered early: %+v", res)
	}
	res, _ = h.g.Sync(h.now, SyncRequest{MemberID: l, Generation: gen, ProtocolType: "consumer", Protocol: "range",
		Assignments: map[string][]byte{l: []byte("to " + l), f: []byte("to " + f)}})
	h.collect()
	if res == nil || res.Err != nil || string(res.Assignment) != "to "+l {
		h.t.Fatalf("leader sync: %+v", res)
	}
	if fr := h.synced(tf); fr.Err != nil || string(fr.Assignment) != "to "+f || fr.Protocol != "range" {
		h.t.Fatalf("follower sync: %+v", fr)
	}
	h.state(Stable)
}

func TestScenarios(t *testing.T) {
	delayed := testConfig()
	delayed.InitialRebalanceDelay = 3 * time.Second

	for _, sc := range []struct {
		name string
		cfg  Config
		run  func(h *harness)
	}{
		{"two members join and sync after the initial delay", delayed, func(h *harness) {
			a, ta := h.joinNew("a")
			h.state(PreparingRebalance)
			h.advance(time.Second)
			b, tb := h.joinNew("b")
			h.advance(2 * time.Second) // b joined during the delay: one more
			h.waiting(ta)
			h.advance(3 * time.Second)
			ja, jb := h.joined(ta), h.joined(tb)
			if ja.Generation != 1 || ja.Leader != a || jb.Leader != a || ja.Protocol != "range" || ja.ProtocolType != "consumer" {
				h.t.Fatalf("join a: %+v", ja)
			}
			if len(ja.Members) != 2 || ja.Members[1].MemberID != b || string(ja.Members[1].Metadata) != "b/range" || jb.Members != nil {
				h.t.Fatalf("members: %+v / %+v", ja.Members, jb.Members)
			}
			h.state(CompletingRebalance)
			h.heartbeat(b, 1, nil) // between join and sync is fine
			h.sync(a, b, 1)
			h.heartbeat(a, 1, nil)
			if ms := h.g.Members(); len(ms) != 2 || string(ms[1].Assignment) != "to "+b || string(ms[1].Metadata) != "b/range" {
				h.t.Fatalf("members: %+v", ms)
			}
		}},
		{"a third member forces a rebalance", testConfig(), func(h *harness) {
			a, b := h.stableTwo()
			gen := h.g.Generation()
			c, tc := h.joinNew("c")
			h.state(PreparingRebalance)
			h.heartbeat(a, gen, errRebalanceInProgress)
			h.heartbeat(b, gen, errRebalanceInProgress)
			if res, _ := h.g.Sync(h.now, SyncRequest{MemberID: a, Generation: gen}); !errors.Is(res.Err, errRebalanceInProgress) {
				h.t.Fatalf("sync during rebalance: %+v", res)
			}
			_, ta := h.join(req("a", a))
			h.waiting(tc)
			_, tb := h.join(req("b", b))
			ja, jb, jc := h.joined(ta), h.joined(tb), h.joined(tc)
			if ja.Generation != gen+1 || jb.Generation != gen+1 || jc.Generation != gen+1 || len(ja.Members) != 3 || jc.Leader != a {
				h.t.Fatalf("results: %+v %+v %+v", ja, jb, jc)
			}
			h.heartbeat(c, gen, errIllegalGeneration)
		}},
		{"a silent member expires and the group rebalances", testConfig(), func(h *harness) {
			a, b := h.stableTwo()
			gen := h.g.Generation()
			h.advance(6 * time.Second)
			h.heartbeat(a, gen, nil)
			h.advance(3 * time.Second)
			h.state(Stable) // b has 1s left
			h.advance(time.Second)
			h.state(PreparingRebalance)
			h.heartbeat(b, gen, errUnknownMember)
			h.heartbeat(a, gen, errRebalanceInProgress)
			_, ta := h.join(req("a", a))
			if ja := h.joined(ta); ja.Generation != gen+1 || len(ja.Members) != 1 {
				h.t.Fatalf("join: %+v", ja)
			}
		}},
		{"a member that does not rejoin is dropped at the rebalance deadline", testConfig(), func(h *harness) {
			a, b := h.stableTwo()
			gen := h.g.Generation()
			_, ta := h.join(req("a", a, "range", "roundrobin")) // new metadata: rebalance
			h.advance(9 * time.Second)
			h.heartbeat(b, gen, errRebalanceInProgress) // b stays alive but never rejoins
			h.advance(9 * time.Second)
			h.heartbeat(b, gen, errRebalanceInProgress)
			h.advance(9 * time.Second)
			h.waiting(ta) // a is parked, so it does not expire
			h.advance(3 * time.Second)
			if ja := h.joined(ta); ja.Generation != gen+1 || len(ja.Members) != 1 {
				h.t.Fatalf("join: %+v", ja)
			}
			h.heartbeat(b, gen+1, errUnknownMember)
		}},
		{"leave starts a rebalance and moves the leadership", testConfig(), func(h *harness) {
			a, b := h.stableTwo()
			gen := h.g.Generation()
			errs := h.leave([]LeaveMember{{MemberID: a}, {MemberID: "nobody"}})
			if errs[0] != nil || !errors.Is(errs[1], errUnknownMember) {
				h.t.Fatalf("leave: %v", errs)
			}
			h.state(PreparingRebalance)
			if h.g.Leader() != b {
				h.t.Fatalf("leader %q, want %q", h.g.Leader(), b)
			}
			_, tb := h.join(req("b", b))
			if jb := h.joined(tb); jb.Leader != b || len(jb.Members) != 1 || jb.Generation != gen+1 {
				h.t.Fatalf("join: %+v", jb)
			}
			h.leave([]LeaveMember{{MemberID: b}})
			h.state(Empty)
			if h.g.Generation() != gen+2 || h.g.Leader() != "" || h.g.Protocol() != "" || h.g.ProtocolType() != "consumer" {
				h.t.Fatalf("empty group: gen %d leader %q protocol %q", h.g.Generation(), h.g.Leader(), h.g.Protocol())
			}
			if err := h.g.Delete(); err != nil || h.g.State() != Dead {
				h.t.Fatalf("delete: %v", err)
			}
			if res, _ := h.join(req("a", "")); !errors.Is(res.Err, errCoordinatorNotAvailable) {
				h.t.Fatalf("join dead group: %+v", res)
			}
		}},
		{"stale generation and unknown member", testConfig(), func(h *harness) {
			a, _ := h.stableTwo()
			gen := h.g.Generation()
			h.heartbeat(a, gen-1, errIllegalGeneration)
			if res, _ := h.g.Sync(h.now, SyncRequest{MemberID: a, Generation: 7}); !errors.Is(res.Err, errIllegalGeneration) {
				h.t.Fatalf("sync: %+v", res)
			}
			h.heartbeat("ghost", 1, errUnknownMember)
			if res, _ := h.g.Sync(h.now, SyncRequest{MemberID: "ghost", Generation: 1}); !errors.Is(res.Err, errUnknownMember) {
				h.t.Fatalf("sync: %+v", res)
			}
			if res, _ := h.join(req("x", "ghost")); !errors.Is(res.Err, errUnknownMember) {
				h.t.Fatalf("join: %+v", res)
			}
			if res, _ := h.g.Sync(h.now, SyncRequest{MemberID: a, Generation: gen, Protocol: "sticky"}); !errors.Is(res.Err, errInconsistentProtocol) {
				h.t.Fatalf("sync with another protocol: %+v", res)
			}
			if err := h.g.Delete(); !errors.Is(err, errNonEmptyGroup) {
				h.t.Fatalf("delete: %v", err)
			}
		}},
		{"inconsistent protocols are refused", testConfig(), func(h *harness) {
			empty := req("a", "")
			empty.Protocols = nil
			if res, _ := h.join(empty); !errors.Is(res.Err, errInconsistentProtocol) {
				h.t.Fatalf("no protocols: %+v", res)
			}
			h.stableTwo()
			if res, _ := h.join(req("c", "", "roundrobin")); !errors.Is(res.Err, errInconsistentProtocol) {
				h.t.Fatalf("disjoint protocols: %+v", res)
			}
			other := req("c", "")
			other.ProtocolType = "connect"
			if res, _ := h.join(other); !errors.Is(res.Err, errInconsistentProtocol) {
				h.t.Fatalf("other protocol type: %+v", res)
			}
			h.state(Stable)
		}},
		{"protocol is chosen by the members' votes", testConfig(), func(h *harness) {
			a, ta := h.joinNew("a", "range", "roundrobin", "sticky")
			h.joined(ta)
			h.join(req("a", a, "range", "roundrobin", "sticky"))
			_, tb := h.joinNew("b", "roundrobin", "range")
			h.join(req("a", a, "range", "roundrobin", "sticky"))
			_, tc := h.joinNew("c", "sticky", "roundrobin", "range")
			_, ta = h.join(req("a", a, "range", "roundrobin", "sticky"))
			_, tb = h.join(req("b", h.joined(tb).MemberID, "roundrobin", "range"))
			h.joined(tc)
			// sticky is not supported by b; votes: a range, b roundrobin,
			// c roundrobin.
			if ja := h.joined(ta); ja.Protocol != "roundrobin" || string(ja.Members[0].Metadata) != "a/roundrobin" {
				h.t.Fatalf("join: %+v", ja)
			}
			h.joined(tb)
		}},
		{"a static member restarts without a rebalance", testConfig(), func(h *harness) {
			s := req("s", "")
			s.InstanceID = "s-1"
			res, ts := h.join(s) // static members get their id at once
			if res != nil {
				h.t.Fatalf("static join: %+v", res)
			}
			js := h.joined(ts)
			old := js.MemberID
			b, tb := h.joinNew("b")
			s.MemberID = old
			_, ts = h.join(s)
			h.joined(ts)
			h.joined(tb)
			h.sync(old, b, 2)

			s.MemberID = "" // restart: same instance, no member id
			res, _ = h.join(s)
			if res == nil || res.Err != nil || res.MemberID == old || res.Generation != 2 || res.Leader != res.MemberID || !res.SkipAssignment || len(res.Members) != 2 {
				h.t.Fatalf("static rejoin: %+v", res)
			}
			h.state(Stable)
			h.heartbeatStatic(old, "s-1", 2, errFencedInstance)
			h.heartbeat(old, 2, errUnknownMember)
			if r, _ := h.g.Sync(h.now, SyncRequest{MemberID: old, InstanceID: "s-1", Generation: 2}); !errors.Is(r.Err, errFencedInstance) {
				h.t.Fatalf("fenced sync: %+v", r)
			}
			if r, _ := h.g.Sync(h.now, SyncRequest{MemberID: res.MemberID, InstanceID: "s-1", Generation: 2}); r == nil || string(r.Assignment) != "to "+old {
				h.t.Fatalf("sync after restart: %+v", r)
			}
			s.MemberID = old
			if r, _ := h.join(s); !errors.Is(r.Err, errFencedInstance) {
				h.t.Fatalf("zombie join: %+v", r)
			}
			if errs := h.leave([]LeaveMember{{MemberID: old, InstanceID: "s-1"}}); !errors.Is(errs[0], errFencedInstance) {
				h.t.Fatalf("zombie leave: %v", errs)
			}
			h.state(Stable)
			// A restart with other metadata (clients put their generation
			// and owned partitions there) but the same chosen protocol
			// keeps the assignment too, as in Kafka; a subscription
			// change is the leader's to act on (it gets the members).
			s.MemberID = ""
			s.Protocols = []Protocol{{Name: "range", Metadata: []byte("new topics")}}
			r, _ := h.join(s)
			if r == nil || r.Err != nil || !r.SkipAssignment || r.Generation != 2 {
				h.t.Fatalf("static rejoin with new metadata: %+v", r)
			}
			h.state(Stable)
			// And an admin can remove it by instance id alone.
			if errs := h.leave([]LeaveMember{{InstanceID: "s-1"}}); errs[0] != nil {
				h.t.Fatalf("leave by instance: %v", errs)
			}
		}},
		{"session timeout bounds and group size", func() Config { c := testConfig(); c.MaxSize = 2; return c }(), func(h *harness) {
			for _, d := range []time.Duration{5 * time.Second, 2 * time.Minute} {
				r := req("a", "")
				r.SessionTimeout = d
				if res, _ := h.join(r); !errors.Is(res.Err, errInvalidSessionTimeout) {
					h.t.Fatalf("session %v: %+v", d, res)
				}
			}
			h.stableTwo()
			if res, _ := h.join(req("c", "")); !errors.Is(res.Err, errGroupMaxSize) {
				h.t.Fatalf("third member: %+v", res)
			}
		}},
		{"an unused MEMBER_ID_REQUIRED id holds the rebalance until it lapses", testConfig(), func(h *harness) {
			a, b := h.stableTwo()
			gen := h.g.Generation()
			res, _ := h.join(req("c", "")) // c never comes back
			_, ta := h.join(req("a", a))
			_, tb := h.join(req("b", b))
			h.waiting(ta)
			if errs := h.leave([]LeaveMember{{MemberID: res.MemberID}}); errs[0] != nil {
				h.t.Fatalf("leave pending id: %v", errs)
			}
			if h.joined(ta).Generation != gen+1 || h.joined(tb).Generation != gen+1 {
				h.t.Fatal("generation")
			}
			h.sync(a, b, gen+1)
			h.join(req("d", "")) // d never comes back either
			_, ta = h.join(req("a", a, "roundrobin", "range"))
			_, tb = h.join(req("b", b))
			h.advance(9 * time.Second)
			h.waiting(ta)
			h.advance(time.Second)
			if h.joined(ta).Generation != gen+2 || h.joined(tb).Generation != gen+2 {
				h.t.Fatal("generation")
			}
		}},
		{"a rebalance during CompletingRebalance answers parked syncs", testConfig(), func(h *harness) {
			a, ta := h.joinNew("a")
			h.joined(ta)
			b, tb := h.joinNew("b")
			_, ta = h.join(req("a", a))
			h.joined(ta)
			h.joined(tb)
			_, tsb := h.g.Sync(h.now, SyncRequest{MemberID: b, Generation: 2})
			_, tb2 := h.join(req("b", b, "range", "roundrobin")) // b changes metadata
			if r := h.synced(tsb); !errors.Is(r.Err, errRebalanceInProgress) {
				h.t.Fatalf("parked sync: %+v", r)
			}
			h.state(PreparingRebalance)
			_, ta = h.join(req("a", a))
			if h.joined(ta).Generation != 3 || h.joined(tb2).Generation != 3 {
				h.t.Fatal("generation")
			}
			// A second join while one is parked answers the first.
			_, t1 := h.join(req("b", b))
			_, t2 := h.join(req("b", b))
			if r := h.joined(t1); !errors.Is(r.Err, errRebalanceInProgress) {
				h.t.Fatalf("superseded join: %+v", r)
			}
			h.waiting(t2)
		}},
		{"repeated joins: lost responses are resent, a leader's rejoin rebalances", testConfig(), func(h *harness) {
			a, ta := h.joinNew("a")
			h.joined(ta)
			h.state(CompletingRebalance)
			gen := h.g.Generation()
			// a lost its join response: the same answer comes back.
			if r, _ := h.join(req("a", a)); r == nil || r.Generation != gen || len(r.Members) != 1 {
				h.t.Fatalf("resent join: %+v", r)
			}
			b, tb := h.joinNew("b")
			_, ta = h.join(req("a", a))
			h.joined(ta)
			h.joined(tb)
			gen = h.g.Generation()
			h.sync(a, b, gen)
			if r, _ := h.join(req("b", b)); r == nil || r.Generation != gen || r.Members != nil {
				h.t.Fatalf("follower rejoin in Stable: %+v", r)
			}
			h.state(Stable)
			if r, _ := h.join(req("a", a)); r != nil {
				h.t.Fatalf("leader rejoin answered at once: %+v", r)
			}
			h.state(PreparingRebalance)
		}},
		{"a static member restarting mid-rebalance fences its parked join", testConfig(), func(h *harness) {
			a, b := h.stableTwo()
			s := req("s", "")
			s.InstanceID = "s-1"
			_, ts := h.join(s) // joins the rebalance it starts
			_, ta := h.join(req("a", a))
			_, ts2 := h.join(s) // restarted before the rebalance completed
			if r := h.joined(ts); !errors.Is(r.Err, errFencedInstance) {
				h.t.Fatalf("old incarnation: %+v", r)
			}
			_, tb := h.join(req("b", b))
			js := h.joined(ts2)
			if js.Err != nil || h.joined(ta).Generation != js.Generation || h.joined(tb).Generation != js.Generation {
				h.t.Fatalf("new incarnation: %+v", js)
			}
			if ms := h.g.Members(); len(ms) != 3 || ms[2].MemberID != js.MemberID || ms[2].InstanceID != "s-1" {
				h.t.Fatalf("members: %+v", ms)
			}
		}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			h := newHarness(t, sc.cfg)
			sc.run(h)
		})
	}
}

func TestNextDeadline(t *testing.T) {
	h := newHarness(t, testConfig())
	if !h.g.NextDeadline().IsZero() {
		t.Fatal("empty group has a deadline")
	}
	a, b := h.stableTwo()
	_ = b
	if got, want := h.g.NextDeadline(), h.now.Add(10*time.Second); !got.Equal(want) {
		t.Fatalf("deadline %v, want %v", got, want)
	}
	h.join(req("a", a, "roundrobin", "range"))
	if got, want := h.g.NextDeadline(), h.now.Add(10*time.Second); !got.Equal(want) {
		t.Fatalf("deadline %v, want %v (b's session)", got, want)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Empty: "Empty", PreparingRebalance: "PreparingRebalance",
		CompletingRebalance: "CompletingRebalance", Stable: "Stable", Dead: "Dead"} {
		if s.String() != want {
			t.Errorf("%d: %s", s, s)
		}
	}
}
