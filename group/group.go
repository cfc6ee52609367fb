// Package group is the I/O-free state machine of one consumer group under
// Kafka's classic group protocol: the one JoinGroup, SyncGroup, Heartbeat and
// LeaveGroup drive.
//
// A Group owns no goroutine, timer, socket or file. Every operation takes the
// current time, and time only moves when the caller says so (Tick), so a test
// can drive a rebalance step by step with a fake clock. The caller (the broker)
// serialises calls on one Group, answers immediate results at once, and parks
// the others: a JoinGroup or SyncGroup that must wait for the rest of the group
// is given a Ticket, and its answer later appears in Drain under that Ticket.
// Any call, including Tick, may complete parked requests, so the caller drains
// after every call.
//
// # States
//
//	Empty ──join──► PreparingRebalance ──all joined / deadline──► CompletingRebalance
//	  ▲                 ▲        │ (no member left)                     │ leader syncs
//	  └─────────────────┼────────┘                                      ▼
//	                    └──── join with new metadata, leave, expiry ── Stable
//	Empty ──Delete──► Dead (final)
//
// # Invariants
//
//   - Leader is a member id in Members whenever the group has members, and ""
//     otherwise. A new leader is the longest-standing remaining member.
//   - Every member in Members has passed the session-timeout bounds and its
//     protocols are consistent with every other member's (same protocol type,
//     at least one protocol name that all of them support).
//   - A static member's group.instance.id maps to exactly one member id; a
//     request naming that instance id with another member id is fenced.
//   - A member has at most one parked request (a join or a sync), and every
//     parked request is answered exactly once: with a result, or with an error
//     when it is superseded, fenced, or its member is removed.
//   - The generation grows by one each time a PreparingRebalance completes,
//     including when it completes with no member left (the group goes Empty).
//   - A member with a parked request is never expired, and answering the
//     request restarts its session. A parked join waits at most until the
//     rebalance deadline; a parked sync until the leader syncs or the group
//     rebalances, which the leader's own session bounds.
//   - ProtocolType is set whenever the group has members, and kept when the
//     group empties (ListGroups reports an empty consumer group as
//     "consumer", as Kafka does); the next lone member sets it anew.
//     Protocol is chosen when a rebalance completes, so it is "" until the
//     first one does, and reset when one completes with no member left.
//
// Persisting the group (its generation, protocol, leader, members and
// assignments go to __consumer_offsets in Kafka) is the caller's job; the
// natural moment is after a SyncGroup moves the group to Stable and before the
// deliveries are sent.
package group

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
	"time"
)

// State is one of the classic group states, named as in Kafka.
type State int8

// The group states. Their String forms are Kafka's, as DescribeGroups reports them.
const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	case Dead:
		return "Dead"
	}
	return "Unknown"
}

// Config holds the broker settings the coordinator enforces.
type Config struct {
	// MinSessionTimeout and MaxSessionTimeout bound a member's session
	// timeout (group.min.session.timeout.ms, group.max.session.timeout.ms).
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is how long the first rebalance of an Empty group
	// waits for more members (group.initial.rebalance.delay.ms), so a
	// consumer fleet starting together does not rebalance once per member.
	InitialRebalanceDelay time.Duration
	// MaxSize caps the number of members (group.max.size); 0 means no cap.
	MaxSize int
	// NewMemberID makes a member id for a joining client. Nil means
	// clientID + "-" + 32 random hex digits, as Kafka's ids look; tests
	// inject a deterministic one.
	NewMemberID func(clientID string) string
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		MinSessionTimeout:     6 * time.Second,
		MaxSessionTimeout:     30 * time.Minute,
		InitialRebalanceDelay: 3 * time.Second,
	}
}

// Protocol is one assignment protocol a member supports, with the member's
// metadata for it (opaque to the coordinator).
type Protocol struct {
	Name     string
	Metadata []byte
}

// Ticket names a parked JoinGroup or SyncGroup; its answer appears in Drain.
type Ticket uint64

// Delivery is the answer to a parked request. Exactly one of Join and Sync is set.
type Delivery struct {
	Ticket   Ticket
	MemberID string
	Join     *JoinResult
	Sync     *SyncResult
}

// MemberInfo describes one member, as DescribeGroups reports it.
type MemberInfo struct {
	MemberID         string
	InstanceID       string
	ClientID         string
	ClientHost       string
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// Metadata is the member's metadata for the chosen protocol (nil before
	// the first rebalance completes).
	Metadata   []byte
	Assignment []byte
}

type member struct {
	id, instanceID       string
	clientID, clientHost string
	seq                  uint64 // join order: the leader is the lowest
	sessionTimeout       time.Duration
	rebalanceTimeout     time.Duration
	protocols            []Protocol
	assignment           []byte
	lastSeen             time.Time
	joinTicket           Ticket // parked JoinGroup, 0 if none
	syncTicket           Ticket // parked SyncGroup, 0 if none
	// synced is set once the member has sent SyncGroup in the current
	// generation; members still unsynced at the sync deadline are removed.
	synced bool
}

// Group is one consumer group. The zero value is not usable; use New.
type Group struct {
	id    string
	cfg   Config
	state State

	generation   int32
	protocolType string
	protocol     string
	leader       string

	members   map[string]*member
	instances map[string]string // group.instance.id → member id
	// pendingIDs are ids handed out with MEMBER_ID_REQUIRED (KIP-394) and
	// not yet used; the rebalance waits for them, and they lapse after the
	// session timeout of the join that asked for them.
	pendingIDs map[string]time.Time

	// joinDeadline is when a PreparingRebalance completes even if some
	// members have not rejoined.
	joinDeadline time.Time
	// syncDeadline is when CompletingRebalance gives up on members that
	// have not sent SyncGroup (the leader included): they are removed and
	// the group rebalances, so a leader that died between its join and sync
	// responses cannot stall the group for longer than a rebalance timeout.
	syncDeadline time.Time
	// version counts changes worth persisting (see Version).
	version uint64
	// During the initial delay the rebalance never completes early; each
	// delay that saw a new member is followed by another, up to initialMax.
	initialDelay  bool
	initialMax    time.Time
	joinedInDelay bool

	seq        uint64
	nextTicket Ticket
	outbox     []Delivery
}

// New returns an Empty group at generation 0.
func New(id string, cfg Config) *Group {
	return &Group{
		id:         id,
		cfg:        cfg,
		members:    map[string]*member{},
		instances:  map[string]string{},
		pendingIDs: map[string]time.Time{},
	}
}

// ID returns the group id.
func (g *Group) ID() string { return g.id }

// State returns the current state.
func (g *Group) State() State { return g.state }

// Generation returns the generation id of the last completed rebalance.
func (g *Group) Generation() int32 { return g.generation }

// ProtocolType returns the protocol type shared by the members ("consumer"
// for consumers), or "" for a group without members.
func (g *Group) ProtocolType() string { return g.protocolType }

// Protocol returns the protocol chosen at the last completed rebalance.
func (g *Group) Protocol() string { return g.protocol }

// Leader returns the leader's member id, or "" for a group without members.
func (g *Group) Leader() string { return g.leader }

// Members returns the members in join order.
func (g *Group) Members() []MemberInfo {
	out := make([]MemberInfo, 0, len(g.members))
	for _, m := range g.ordered() {
		out = append(out, MemberInfo{
			MemberID:         m.id,
			InstanceID:       m.instanceID,
			ClientID:         m.clientID,
			ClientHost:       m.clientHost,
			SessionTimeout:   m.sessionTimeout,
			RebalanceTimeout: m.rebalanceTimeout,
			Metadata:         metadataFor(m.protocols, g.protocol),
			Assignment:       m.assignment,
		})
	}
	return out
}

// Drain returns the answers to parked requests completed since the last
// Drain, in the order they were completed.
func (g *Group) Drain() []Delivery {
	out := g.outbox
	g.outbox = nil
	return out
}

// NextDeadline returns the earliest time at which Tick has work to do, or
// the zero time if nothing is scheduled. The caller arms one timer with it.
func (g *Group) NextDeadline() time.Time {
	var next time.Time
	if g.state == PreparingRebalance {
		next = earliest(next, g.joinDeadline)
	}
	if g.state == CompletingRebalance {
		next = earliest(next, g.syncDeadline)
	}
	for _, m := range g.members {
		if m.joinTicket == 0 && m.syncTicket == 0 {
			next = earliest(next, m.lastSeen.Add(m.sessionTimeout))
		}
	}
	for _, t := range g.pendingIDs {
		next = earliest(next, t)
	}
	return next
}

// Tick advances the group's clock: it completes a rebalance whose deadline
// has passed, drops MEMBER_ID_REQUIRED ids that were never used, and expires
// members whose session timed out (which starts a rebalance).
func (g *Group) Tick(now time.Time) {
	if g.state == Dead {
		return
	}
	for id, t := range g.pendingIDs {
		if !now.Before(t) {
			delete(g.pendingIDs, id)
		}
	}
	for _, m := range g.ordered() {
		if g.members[m.id] != m {
			continue // removed by an earlier expiry's rebalance
		}
		if m.joinTicket == 0 && m.syncTicket == 0 && !now.Before(m.lastSeen.Add(m.sessionTimeout)) {
			g.removeMember(now, m)
		}
	}
	if g.state == CompletingRebalance && !now.Before(g.syncDeadline) {
		for _, m := range g.ordered() {
			if !m.synced && g.members[m.id] == m {
				g.removeMember(now, m)
			}
		}
	}
	if g.state == PreparingRebalance && !now.Before(g.joinDeadline) {
		if g.initialDelay && g.joinedInDelay && g.joinDeadline.Before(g.initialMax) {
			// More members arrived during the delay: wait one more delay
			// for their peers, never past the rebalance timeout.
			g.joinedInDelay = false
			g.joinDeadline = minTime(g.joinDeadline.Add(g.cfg.InitialRebalanceDelay), g.initialMax)
			return
		}
		g.completeJoin(now)
		return
	}
	g.maybeCompleteJoin(now)
}

// Delete marks an Empty group Dead (DeleteGroups). It fails with
// NON_EMPTY_GROUP while the group has members.
func (g *Group) Delete() error {
	switch g.state {
	case Dead:
		return errCoordinatorNotAvailable
	case Empty:
		g.state = Dead
		g.version++
		return nil
	}
	return errNonEmptyGroup
}

// Version counts the changes a coordinator persists: a generation settling
// (Stable with the leader's assignment, or Empty), a static member taking
// its old place under a new id, deletion. The caller compares it before and
// after a call and writes Snapshot when it moved.
func (g *Group) Version() uint64 { return g.version }

// IsEmpty reports whether the group has no members (pending KIP-394 ids do
// not count).
func (g *Group) IsEmpty() bool { return len(g.members) == 0 }

// ordered returns the members in join order, so every decision that walks
// the members is deterministic.
func (g *Group) ordered() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].seq < ms[j].seq })
	return ms
}

func (g *Group) ticket() Ticket {
	g.nextTicket++
	return g.nextTicket
}

func (g *Group) newMemberID(clientID string) string {
	if g.cfg.NewMemberID != nil {
		return g.cfg.NewMemberID(clientID)
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return clientID + "-" + hex.EncodeToString(b[:])
}

func metadataFor(ps []Protocol, name string) []byte {
	for _, p := range ps {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

// earliest returns the earlier of next and t, where a zero next means none
// yet; NextDeadline folds every pending deadline through it.
func earliest(next, t time.Time) time.Time {
	if next.IsZero() || t.Before(next) {
		return t
	}
	return next
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
