package group

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// simClient is a consumer as franz-go behaves: it owns what the last
// assignment it received gives it, and gives up revoked partitions only
// after it has finished with them (meanwhile it heartbeats with Topics nil),
// then reports what it owns.
type simClient struct {
	id, instance string
	names        []string
	regex        string
	joined       bool
	epoch        int32
	owned        tpSet // what the client uses, including what it is revoking
	assigned     tpSet // the last assignment received
	revokeSeen   time.Time
	lastHB       time.Time
	lostLast     bool
}

type sim struct {
	t       *testing.T
	rng     *rand.Rand
	g       *ConsumerGroup
	now     time.Time
	img     *TopicImage
	clients []*simClient // alive clients
	nextID  int
	snap    []byte
	version uint64
}

const (
	simForce = 15 * time.Second // a client heartbeats at least this often
	simSlow  = 8 * time.Second  // and finishes a revocation within this
)

func (s *sim) newClient(instance string) *simClient {
	s.nextID++
	c := &simClient{id: fmt.Sprintf("m%03d", s.nextID), instance: instance, owned: tpSet{}, assigned: tpSet{}}
	switch s.rng.IntN(3) {
	case 0:
		c.names = []string{"t1", "t2"}
	case 1:
		c.names = []string{"t1", "t2", "t3"}
	default:
		c.regex = "t[13]|new.*"
	}
	c.lastHB = s.now
	s.clients = append(s.clients, c)
	return c
}

func (s *sim) drop(c *simClient) {
	s.clients = slices.DeleteFunc(s.clients, func(o *simClient) bool { return o == c })
}

// heartbeat sends c's next request; forced ones finish revocations and are
// never lost.
func (s *sim) heartbeat(c *simClient, forced bool) {
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version, r.Group, r.MemberID = 1, "g", c.id
	if c.instance != "" {
		r.InstanceID = &c.instance
	}
	full := func() {
		r.RebalanceTimeoutMillis = 120_000
		if c.regex != "" {
			r.SubscribedTopicRegex = &c.regex
		} else {
			r.SubscribedTopicNames = c.names
		}
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		for _, tp := range groupByTopic(c.owned.sorted()) {
			r.Topics = append(r.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: tp.id, Partitions: tp.parts})
		}
	}
	if !c.joined {
		c.owned, c.assigned = tpSet{}, tpSet{}
		full()
	} else {
		r.MemberEpoch = c.epoch
		revoking := false
		for p := range c.owned {
			if !c.assigned.has(p) {
				revoking = true
			}
		}
		if revoking && !forced && s.now.Sub(c.revokeSeen) < simSlow && s.rng.IntN(2) == 0 {
			r.InstanceID = nil // a keepalive while revoking
		} else {
			for p := range c.owned {
				if !c.assigned.has(p) {
					delete(c.owned, p)
				}
			}
			if s.rng.IntN(3) == 0 || revoking || forced {
				full()
			} else {
				r.InstanceID = nil
			}
		}
	}
	c.lastHB = s.now
	resp := s.g.Heartbeat(s.now, r, "sim", "/sim", s.img)
	s.check()
	if !forced && !c.lostLast && s.rng.IntN(8) == 0 {
		c.lostLast = true // the response is lost; the client is as it was
		s.checkOwnership()
		return
	}
	c.lostLast = false
	switch err := kerr.ErrorForCode(resp.ErrorCode); err {
	case nil:
		c.joined, c.epoch = true, resp.MemberEpoch
		if resp.Assignment != nil {
			c.assigned = tpSet{}
			for _, t := range resp.Assignment.Topics {
				for _, p := range t.Partitions {
					k := tpKey{t.TopicID, p}
					c.assigned[k] = struct{}{}
					c.owned[k] = struct{}{}
				}
			}
			if len(c.owned) > len(c.assigned) {
				c.revokeSeen = s.now
			}
		}
	case kerr.FencedMemberEpoch:
		// Abandon everything, rejoin under the same id.
		c.joined, c.owned, c.assigned = false, tpSet{}, tpSet{}
	case kerr.UnknownMemberID:
		c.joined, c.owned, c.assigned = false, tpSet{}, tpSet{}
		s.nextID++
		c.id = fmt.Sprintf("m%03d", s.nextID)
	case kerr.UnreleasedInstanceID:
		c.joined = false // the old incarnation still holds the instance
	default:
		s.t.Fatalf("client %s: %v (%s)", c.id, err, derefString(resp.ErrorMessage))
	}
	s.checkOwnership()
}

// check verifies the group's invariants, and that the version moved when the
// persisted state did.
func (s *sim) check() {
	s.t.Helper()
	checkConsumerInvariants(s.t, s.g)
	snap, _ := json.Marshal(s.g.Snapshot())
	if string(snap) != string(s.snap) && s.g.Version() == s.version {
		s.t.Fatalf("snapshot changed without a version change:\n%s\n%s", s.snap, snap)
	}
	s.snap, s.version = snap, s.g.Version()
}

// checkOwnership verifies that no partition is used by two clients, and that
// the group knows each client holds what it uses.
func (s *sim) checkOwnership() {
	s.t.Helper()
	who := map[tpKey]string{}
	for _, c := range s.clients {
		for p := range c.owned {
			if o, dup := who[p]; dup {
				s.t.Fatalf("partition %v owned by %s and %s", p, o, c.id)
			}
			who[p] = c.id
			if s.g.owners[p] != c.id {
				s.t.Fatalf("client %s owns %v, the group says %q", c.id, p, s.g.owners[p])
			}
		}
	}
}

func (s *sim) advance(d time.Duration) {
	s.now = s.now.Add(d)
	for _, c := range slices.Clone(s.clients) {
		if s.now.Sub(c.lastHB) >= simForce || (len(c.owned) > len(c.assigned) && s.now.Sub(c.revokeSeen) >= simSlow) {
			s.heartbeat(c, true)
		}
	}
	s.g.Tick(s.now, s.img)
	s.check()
	s.checkOwnership()
}

func TestConsumerRandomized(t *testing.T) {
	seeds := uint64(24)
	if testing.Short() {
		seeds = 6
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			runSim(t, seed)
		})
	}
}

func runSim(t *testing.T, seed uint64) {
	s := &sim{t: t, rng: rand.New(rand.NewPCG(seed, 1)), now: time.Unix(2_000_000, 0)}
	topics := map[string]int32{"t1": 5, "t2": 3, "t3": 4}
	s.img = newImage(1, topics)
	cfg := DefaultConsumerConfig()
	if seed%2 == 1 {
		cfg.Assignors = []string{"range", "uniform"}
	}
	s.g = NewConsumerGroup("g", cfg)
	s.snap, _ = json.Marshal(s.g.Snapshot())
	var released []string // instance ids whose process left with -2 or crashed

	for range 1500 {
		switch n := s.rng.IntN(100); {
		case n < 8 && len(s.clients) < 10: // a new process
			inst := ""
			if len(released) > 0 && s.rng.IntN(2) == 0 {
				inst, released = released[0], released[1:]
			} else if s.rng.IntN(4) == 0 {
				inst = fmt.Sprintf("i%d", s.nextID)
			}
			s.heartbeat(s.newClient(inst), false)
		case n < 11 && len(s.clients) > 0: // a clean leave
			c := s.clients[s.rng.IntN(len(s.clients))]
			s.drop(c)
			epoch := int32(-1)
			if c.instance != "" && s.rng.IntN(2) == 0 {
				epoch = -2
				released = append(released, c.instance)
			}
			resp := s.g.Heartbeat(s.now, leaveReq(c.id, epoch), "sim", "/sim", s.img)
			if resp.ErrorCode != 0 && resp.ErrorCode != kerr.UnknownMemberID.Code {
				t.Fatalf("leave: %v", kerr.ErrorForCode(resp.ErrorCode))
			}
			s.check()
		case n < 13 && len(s.clients) > 0: // a crash: the group expires it
			c := s.clients[s.rng.IntN(len(s.clients))]
			s.drop(c)
			if c.instance != "" {
				released = append(released, c.instance)
			}
		case n < 15: // topics change
			if _, ok := topics["new1"]; !ok {
				topics["new1"] = 2
			} else {
				topics["t"+fmt.Sprint(1+s.rng.IntN(3))]++
			}
			s.img = newImage(s.img.Version+1, topics)
		case n < 60 && len(s.clients) > 0:
			s.heartbeat(s.clients[s.rng.IntN(len(s.clients))], false)
		default:
			s.advance(time.Duration(s.rng.IntN(3000)) * time.Millisecond)
		}
	}

	// Calm: everyone heartbeats until the dead have expired and the group
	// settles.
	for range 40 {
		s.now = s.now.Add(3 * time.Second)
		for _, c := range slices.Clone(s.clients) {
			s.heartbeat(c, true)
		}
		s.g.Tick(s.now, s.img)
		s.check()
		s.checkOwnership()
	}
	if st := s.g.State(); st != "Stable" && !(st == "Empty" && len(s.clients) == 0) {
		t.Fatalf("state %s after calm", st)
	}
	if s.g.Len() != len(s.clients) {
		t.Fatalf("%d members, %d clients", s.g.Len(), len(s.clients))
	}
	// Every subscribed partition is assigned exactly once, and each client
	// uses exactly what the group assigned it.
	want := 0
	for _, t := range s.g.meta {
		want += int(t.Partitions)
	}
	got := 0
	for _, c := range s.clients {
		m := s.g.members[c.id]
		if m == nil || !sameTPs(m.assignedSet(), c.owned) || !sameTPs(m.assignedSet(), s.g.target[c.id]) {
			t.Fatalf("client %s owns %v, member %+v", c.id, c.owned, m)
		}
		got += len(c.owned)
	}
	if got != want {
		t.Fatalf("%d partitions assigned, %d subscribed", got, want)
	}
}
