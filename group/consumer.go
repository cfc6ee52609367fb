package group

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// This file holds the consumer group of KIP-848, the "next generation"
// rebalance protocol that ConsumerGroupHeartbeat (API key 68) drives and
// ConsumerGroupDescribe (key 69) reports. It shares the package's rules with
// the classic Group: a ConsumerGroup owns no goroutine, timer, socket or
// file; time only moves when the caller passes it in; the caller serialises
// calls on one group; errors are kerr values so their codes go on the wire
// unchanged. Unlike the classic protocol nothing is ever parked: every
// heartbeat is answered at once.
//
// # The protocol in brief
//
// The coordinator owns the assignment. Whenever the group epoch grows (a
// member joins or leaves or is removed, a subscription changes, or the
// subscribed topics change), the target assignment is recomputed at once
// with a server-side assignor and stamped with the new epoch (the assignment
// epoch). Each member then reconciles from its current assignment to its
// target, one heartbeat at a time:
//
//	         new target epoch, nothing to give up
//	stable ────────────────────────────────────────► stable / unreleased (at the target epoch)
//	   │  must give up partitions it owns
//	   ▼
//	unrevoked (epoch unchanged) ──heartbeat without them──► stable / unreleased
//	   │  rebalance timeout passes
//	   ▼
//	removed by Tick
//
// A partition the target gives to a member while another member still holds
// it (assigned or pending revocation) is withheld: the member advances to the
// target epoch in state unreleased and receives the partition on a later
// heartbeat, once the holder has let go.
//
// # Invariants
//
//   - Every partition is held (assigned or pending revocation) by at most one
//     member; owners indexes exactly the partitions the members hold. So a
//     partition is never given to a member while another may still use it.
//   - AssignmentEpoch == Epoch after every call (the assignor runs
//     synchronously), and target has an entry for every member and no other.
//   - A member's epoch is at most the assignment epoch; it equals it unless
//     the member is unrevoked (then it is older) or a static member that left
//     temporarily (then it is -2 and the member is fenced from heartbeating).
//   - A member that is not unrevoked has no partitions pending revocation, and
//     an unrevoked member has a revocation deadline.
//   - instances maps each group.instance.id to the one member holding it.
//   - Requests that fail (fenced, unknown member, invalid) change nothing.

// TopicMeta is one topic as the coordinator sees it.
type TopicMeta struct {
	Name       string
	ID         [16]byte
	Partitions int32
}

// TopicImage is a snapshot of all topics. Version grows whenever any topic is
// created, deleted or gains partitions; a group recomputes its subscriptions'
// metadata when the Version differs from the last one it saw. An image must
// not be modified once handed to a group (groups only read it, possibly from
// several goroutines under different group locks).
type TopicImage struct {
	Version uint64
	Topics  map[string]TopicMeta // keyed by name
}

// ByID looks a topic up by id. It scans the topics, so it is safe on an image
// shared by concurrently used groups.
func (im *TopicImage) ByID(id [16]byte) (TopicMeta, bool) {
	if im == nil {
		return TopicMeta{}, false
	}
	for name, t := range im.Topics {
		if t.ID == id {
			t.Name = name
			return t, true
		}
	}
	return TopicMeta{}, false
}

// ConsumerConfig holds the broker settings of consumer groups.
type ConsumerConfig struct {
	// SessionTimeout is group.consumer.session.timeout.ms (Kafka: 45s).
	SessionTimeout time.Duration
	// HeartbeatInterval is group.consumer.heartbeat.interval.ms (Kafka: 5s).
	HeartbeatInterval time.Duration
	// MaxSize is group.consumer.max.size; 0 means no cap.
	MaxSize int
	// Assignors is group.consumer.assignors; the first is used when no
	// member names one. Names other than "uniform" and "range" are accepted
	// from members but run as "uniform".
	Assignors []string
	// NewMemberID makes a member id for a ConsumerGroupHeartbeat v0 join
	// without one. Nil means a random base64url UUID (22 characters).
	NewMemberID func() string
}

// DefaultConsumerConfig returns Kafka's defaults.
func DefaultConsumerConfig() ConsumerConfig {
	return ConsumerConfig{
		SessionTimeout:    45 * time.Second,
		HeartbeatInterval: 5 * time.Second,
		Assignors:         []string{"uniform", "range"},
	}
}

// tpKey is one partition of one topic, by topic id as the protocol names it.
type tpKey struct {
	id [16]byte
	p  int32
}

func (a tpKey) less(b tpKey) bool {
	if c := compareIDs(a.id, b.id); c != 0 {
		return c < 0
	}
	return a.p < b.p
}

func compareIDs(a, b [16]byte) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// tpSet is a set of partitions.
type tpSet map[tpKey]struct{}

func (s tpSet) has(p tpKey) bool { _, ok := s[p]; return ok }

func (s tpSet) sorted() []tpKey {
	out := make([]tpKey, 0, len(s))
	for p := range s {
		out = append(out, p)
	}
	sortTPs(out)
	return out
}

func sortTPs(ps []tpKey) { sort.Slice(ps, func(i, j int) bool { return ps[i].less(ps[j]) }) }

func sameTPs(a, b tpSet) bool {
	if len(a) != len(b) {
		return false
	}
	for p := range a {
		if !b.has(p) {
			return false
		}
	}
	return true
}

// topicParts groups sorted partitions by topic, topics in id order.
type topicParts struct {
	id    [16]byte
	parts []int32
}

func groupByTopic(ps []tpKey) []topicParts {
	var out []topicParts
	for _, p := range ps {
		if n := len(out); n == 0 || out[n-1].id != p.id {
			out = append(out, topicParts{id: p.id})
		}
		out[len(out)-1].parts = append(out[len(out)-1].parts, p.p)
	}
	return out
}

// memberState is a member's reconciliation state, as Kafka names them.
type memberState int8

const (
	msStable     memberState = iota // at its target epoch with everything it may have
	msUnrevoked                     // must give up partitions before it advances
	msUnreleased                    // at its target epoch, waiting for partitions others hold
)

func (s memberState) String() string {
	switch s {
	case msUnrevoked:
		return "unrevoked_partitions"
	case msUnreleased:
		return "unreleased_partitions"
	}
	return "stable"
}

func parseMemberState(s string) memberState {
	switch s {
	case "unrevoked_partitions":
		return msUnrevoked
	case "unreleased_partitions":
		return msUnreleased
	}
	return msStable
}

// Member epochs with a meaning of their own.
const (
	epochLeave       = -1 // leave the group
	epochLeaveStatic = -2 // a static member leaves for now, keeping its partitions
)

type cmember struct {
	id, instanceID, rackID string
	clientID, clientHost   string

	epoch, prevEpoch int32
	state            memberState

	names            []string // subscribed topic names, sorted, no duplicates
	regex            string   // subscribed topic regex, "" for none
	assignor         string   // the server assignor it names, "" for none
	rebalanceTimeout time.Duration

	// assigned and revoking map each partition the member holds to the
	// epoch at which it was assigned to the member (KIP-1251).
	assigned map[tpKey]int32
	revoking map[tpKey]int32

	subscribed map[[16]byte]bool // topic ids its names and regex resolve to
	lastSeen   time.Time         // last accepted heartbeat (session start)
	revokeBy   time.Time         // deadline to revoke, when unrevoked

	// sent is the assignment the last response told the member (when
	// sentOK); a response carries the assignment again when it differs.
	sent   tpSet
	sentOK bool
}

func newCMember(id string) *cmember {
	return &cmember{id: id, assigned: map[tpKey]int32{}, revoking: map[tpKey]int32{}}
}

func (m *cmember) setEpoch(e int32) {
	if e != m.epoch {
		m.prevEpoch, m.epoch = m.epoch, e
	}
}

func (m *cmember) assignedSet() tpSet {
	s := make(tpSet, len(m.assigned))
	for p := range m.assigned {
		s[p] = struct{}{}
	}
	return s
}

// ConsumerGroup is one consumer group under the KIP-848 protocol. The zero
// value is not usable; use NewConsumerGroup or RestoreConsumerGroup.
type ConsumerGroup struct {
	id   string
	cfg  ConsumerConfig
	dead bool

	epoch, assignmentEpoch int32

	members   map[string]*cmember
	instances map[string]string // group.instance.id → member id
	target    map[string]tpSet  // member id → target assignment
	owners    map[tpKey]string  // partition → member holding it

	// meta is every topic some member subscribes to (by name or regex), as
	// last resolved; a change in it bumps the group epoch.
	meta         map[string]TopicMeta
	names        map[[16]byte]string // topic id → name, for display
	imageVersion uint64
	imageSeen    bool
	subsDirty    bool // a subscription changed since meta was resolved
	regexes      map[string]*regexp.Regexp

	version uint64
}

// NewConsumerGroup returns an Empty group at epoch 0. Zero durations and an
// empty assignor list in cfg take Kafka's defaults.
func NewConsumerGroup(id string, cfg ConsumerConfig) *ConsumerGroup {
	def := DefaultConsumerConfig()
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = def.SessionTimeout
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = def.HeartbeatInterval
	}
	if len(cfg.Assignors) == 0 {
		cfg.Assignors = def.Assignors
	}
	return &ConsumerGroup{
		id:        id,
		cfg:       cfg,
		members:   map[string]*cmember{},
		instances: map[string]string{},
		target:    map[string]tpSet{},
		owners:    map[tpKey]string{},
		meta:      map[string]TopicMeta{},
		names:     map[[16]byte]string{},
		regexes:   map[string]*regexp.Regexp{},
	}
}

// ID returns the group id.
func (g *ConsumerGroup) ID() string { return g.id }

// Epoch returns the group epoch.
func (g *ConsumerGroup) Epoch() int32 { return g.epoch }

// AssignmentEpoch returns the epoch of the target assignment.
func (g *ConsumerGroup) AssignmentEpoch() int32 { return g.assignmentEpoch }

// Len returns the number of members, including static members that left
// temporarily and still hold their partitions.
func (g *ConsumerGroup) Len() int { return len(g.members) }

// Version grows on every change that must be persisted: members,
// subscriptions, epochs, assignments, the target and the subscribed topics'
// metadata. Session refreshes do not count.
func (g *ConsumerGroup) Version() uint64 { return g.version }

func (g *ConsumerGroup) touch() { g.version++ }

// State returns the group state under Kafka's names: Empty, Assigning,
// Reconciling, Stable or Dead.
func (g *ConsumerGroup) State() string {
	switch {
	case g.dead:
		return "Dead"
	case len(g.members) == 0:
		return "Empty"
	case g.epoch > g.assignmentEpoch:
		return "Assigning"
	}
	for _, m := range g.members {
		if m.state != msStable || m.epoch != g.assignmentEpoch {
			return "Reconciling"
		}
	}
	return "Stable"
}

// Delete marks an empty group Dead (DeleteGroups). It fails with
// NON_EMPTY_GROUP while the group has members, and, like the classic group,
// with COORDINATOR_NOT_AVAILABLE when the group is already Dead.
func (g *ConsumerGroup) Delete() error {
	if g.dead {
		return errCoordinatorNotAvailable
	}
	if len(g.members) > 0 {
		return errNonEmptyGroup
	}
	g.dead = true
	g.touch()
	return nil
}

// NextDeadline returns the earliest time at which Tick has work to do (a
// session to expire or a revocation deadline), or the zero time.
func (g *ConsumerGroup) NextDeadline() time.Time {
	var next time.Time
	if g.dead {
		return next
	}
	for _, m := range g.members {
		next = earliest(next, m.lastSeen.Add(g.cfg.SessionTimeout))
		if m.state == msUnrevoked {
			next = earliest(next, m.revokeBy)
		}
	}
	return next
}

// Tick expires members whose session timed out and fences members that did
// not revoke within their rebalance timeout; each removal bumps the group
// epoch and recomputes the target assignment. It also notices topic changes
// (a new TopicImage version) that affect the subscriptions.
func (g *ConsumerGroup) Tick(now time.Time, topics *TopicImage) {
	if g.dead {
		return
	}
	for _, m := range g.sortedMembers() {
		expired := !now.Before(m.lastSeen.Add(g.cfg.SessionTimeout))
		fenced := m.state == msUnrevoked && !now.Before(m.revokeBy)
		if expired || fenced {
			g.removeMember(m)
			g.refresh(topics)
			g.bump()
		}
	}
	if g.refresh(topics) {
		g.bump()
	}
}

// ConsumerMemberInfo describes one member.
type ConsumerMemberInfo struct {
	MemberID, InstanceID, ClientID, ClientHost string
	MemberEpoch                                int32
	// Assigned is what the member may use now (partitions pending
	// revocation excluded) and Target what the assignor gave it; both map a
	// topic name (the hex topic id when the name is unknown) to sorted
	// partitions.
	Assigned map[string][]int32
	Target   map[string][]int32
}

// Members returns the members sorted by member id.
func (g *ConsumerGroup) Members() []ConsumerMemberInfo {
	out := make([]ConsumerMemberInfo, 0, len(g.members))
	for _, m := range g.sortedMembers() {
		out = append(out, ConsumerMemberInfo{
			MemberID:    m.id,
			InstanceID:  m.instanceID,
			ClientID:    m.clientID,
			ClientHost:  m.clientHost,
			MemberEpoch: m.epoch,
			Assigned:    g.byName(m.assignedSet()),
			Target:      g.byName(g.target[m.id]),
		})
	}
	return out
}

func (g *ConsumerGroup) byName(s tpSet) map[string][]int32 {
	out := map[string][]int32{}
	for _, tp := range groupByTopic(s.sorted()) {
		out[g.topicName(tp.id)] = tp.parts
	}
	return out
}

// topicName names a topic id from what the group has seen of the topics.
func (g *ConsumerGroup) topicName(id [16]byte) string {
	if n, ok := g.names[id]; ok {
		return n
	}
	return hex.EncodeToString(id[:])
}

func (g *ConsumerGroup) sortedMembers() []*cmember {
	ms := make([]*cmember, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].id < ms[j].id })
	return ms
}

// removeMember takes m out of the group, releasing everything it holds. The
// caller bumps the epoch.
func (g *ConsumerGroup) removeMember(m *cmember) {
	g.release(m)
	delete(g.members, m.id)
	delete(g.target, m.id)
	if m.instanceID != "" && g.instances[m.instanceID] == m.id {
		delete(g.instances, m.instanceID)
	}
	g.subsDirty = true
	g.touch()
}

// release drops every partition m holds.
func (g *ConsumerGroup) release(m *cmember) {
	if len(m.assigned) == 0 && len(m.revoking) == 0 {
		return
	}
	for p := range m.assigned {
		g.disown(p, m)
	}
	for p := range m.revoking {
		g.disown(p, m)
	}
	clear(m.assigned)
	clear(m.revoking)
	g.touch()
}

func (g *ConsumerGroup) disown(p tpKey, m *cmember) {
	if g.owners[p] == m.id {
		delete(g.owners, p)
	}
}

// preferredAssignor is the assignor most members name, ties going to the
// one listed first in the config; the config's first when none is named.
func (g *ConsumerGroup) preferredAssignor() string {
	counts := map[string]int{}
	for _, m := range g.members {
		if m.assignor != "" {
			counts[m.assignor]++
		}
	}
	best := g.cfg.Assignors[0]
	for _, a := range g.cfg.Assignors {
		if counts[a] > counts[best] {
			best = a
		}
	}
	return best
}

func (g *ConsumerGroup) supportsAssignor(name string) bool {
	return slices.Contains(g.cfg.Assignors, name)
}

func (g *ConsumerGroup) newMemberID() string {
	if g.cfg.NewMemberID != nil {
		return g.cfg.NewMemberID()
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// The errors of the consumer protocol, as kerr values.
var (
	errFencedMemberEpoch  = kerr.FencedMemberEpoch
	errStaleMemberEpoch   = kerr.StaleMemberEpoch
	errUnreleasedInstance = kerr.UnreleasedInstanceID
	errUnsupportedAssign  = kerr.UnsupportedAssignor
	errInvalidRegex       = kerr.InvalidRegularExpression
	errInvalidRequest     = kerr.InvalidRequest
)
