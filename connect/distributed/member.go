package distributed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's worker defaults (DistributedConfig).
const (
	DefaultGroupID           = "connect-cluster"
	DefaultSessionTimeout    = 10 * time.Second
	DefaultHeartbeatInterval = 3 * time.Second
	DefaultRebalanceTimeout  = 60 * time.Second
)

// Config configures a Member.
type Config struct {
	Client  *kgo.Client // any client of the cluster; the member sends raw group requests
	GroupID string      // group.id; "" = DefaultGroupID
	URL     string      // this worker's advertised REST URL

	SessionTimeout    time.Duration // session.timeout.ms; 0 = default
	HeartbeatInterval time.Duration // heartbeat.interval.ms; 0 = default
	RebalanceTimeout  time.Duration // rebalance.timeout.ms; 0 = default
	// MaxDelay is scheduled.rebalance.max.delay.ms; 0 = DefaultMaxDelay,
	// negative = reassign a departed worker's work at once.
	MaxDelay time.Duration

	// Sessioned advertises the "sessioned" protocol ahead of
	// "compatible". Only set it once the worker distributes and checks
	// session keys (KIP-507): a group that agrees on sessioned expects
	// signed internal requests. Without it the group runs "compatible"
	// (same assignor, no session keys), which Kafka workers also speak.
	Sessioned bool

	// Snapshot returns the worker's config snapshot: its offset goes in
	// the join metadata, and the leader assigns from it. Required.
	Snapshot func() ConfigSnapshot
	// OnAssignment is called from Run's goroutine after every rebalance,
	// and when the member drops its work because it lost its session. It
	// must have stopped everything in Event.Revoked when it returns (the
	// member then rejoins so the leader can hand that work on); it may
	// start Event.Assigned asynchronously. It may call RequestRejoin.
	// Required.
	OnAssignment func(Event)
	Logger       *slog.Logger // nil = slog.Default()
}

// Event is one change of a member's work.
type Event struct {
	Generation   int32
	MemberID     string
	Leader       string // member ID of the leader
	LeaderURL    string
	IsLeader     bool
	Protocol     string
	ConfigOffset int64 // do not start Assigned before the config topic is read this far
	// Error is ConfigMismatch when the leader could not assign because its
	// config was behind: read the config topic to the end; the member
	// rejoins by itself.
	Error    int16
	Assigned []ID // newly this member's
	Revoked  []ID // stop these before returning
	Owned    []ID // everything this member runs after the change
	Delay    time.Duration
	// SessionLost says the member could not reach the coordinator for a
	// session timeout: the group may have given its work away, so it is
	// all in Revoked.
	SessionLost bool
}

// Member keeps one worker in a connect group: it joins with protocol type
// "connect", runs the incremental cooperative assignor when it is leader,
// heartbeats, honours Kafka's two-round protocol (revoked work stopped
// before rejoining) and rejoins on a rebalance, on a scheduled delay and on
// request.
type Member struct {
	cfg      Config
	log      *slog.Logger
	assignor *Assignor
	rejoinCh chan struct{}

	mu            sync.Mutex
	memberID      string
	generation    int32
	lastCompleted int32
	leader        string
	leaderURL     string
	owned         idSet
	last          *Assignment // the last assignment, for the allocation
	owners        map[ID]string
	leave         bool // LeaveGroup when Run returns; tests turn it off to "die"
}

// NewMember checks cfg and returns a member; Run joins the group.
func NewMember(cfg Config) (*Member, error) {
	if cfg.Client == nil || cfg.Snapshot == nil || cfg.OnAssignment == nil {
		return nil, errors.New("connect group member: Client, Snapshot and OnAssignment are required")
	}
	if cfg.GroupID == "" {
		cfg.GroupID = DefaultGroupID
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.RebalanceTimeout <= 0 {
		cfg.RebalanceTimeout = DefaultRebalanceTimeout
	}
	switch {
	case cfg.MaxDelay == 0:
		cfg.MaxDelay = DefaultMaxDelay
	case cfg.MaxDelay < 0:
		cfg.MaxDelay = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Member{
		cfg: cfg, log: cfg.Logger.With("group", cfg.GroupID), assignor: NewAssignor(cfg.MaxDelay),
		rejoinCh: make(chan struct{}, 1), generation: -1, lastCompleted: -1, owned: idSet{}, leave: true,
	}, nil
}

// RequestRejoin makes the member rejoin the group soon, for instance because
// the config topic changed and the leader should assign anew. It does not
// block.
func (m *Member) RequestRejoin() {
	select {
	case m.rejoinCh <- struct{}{}:
	default:
	}
}

// LeaderURL is the REST URL of the group's leader as of the last assignment,
// where followers forward writes; "" before the first.
func (m *Member) LeaderURL() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leaderURL
}

// IsLeader says whether this member was the leader of the last assignment.
func (m *Member) IsLeader() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.memberID != "" && m.leader == m.memberID
}

// MemberID is this member's group member ID ("" when not in the group).
func (m *Member) MemberID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.memberID
}

// Owned is what this member runs now.
func (m *Member) Owned() []ID {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owned.sorted()
}

// OwnerURL is, at the leader, the REST URL of the worker the last
// assignment gave id to; ok is false elsewhere or when nobody has it.
func (m *Member) OwnerURL(id ID) (url string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	url, ok = m.owners[id]
	return url, ok
}

// Run keeps the member in the group until ctx ends, then leaves the group
// (LeaveGroup) and returns ctx's error. The caller stops its own work after
// Run returns: leaving does not call OnAssignment.
func (m *Member) Run(ctx context.Context) error {
	defer m.leaveGroup()
	lastAlive := time.Now()
	backoff := 100 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := m.joinAndSync(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			m.log.Warn("connect group join failed; retrying", "err", err, "backoff", backoff)
			m.maybeLoseSession(lastAlive)
			if !sleep(ctx, backoff) {
				return ctx.Err()
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		lastAlive = res.alive
		switch {
		case res.retry, res.rejoinNow:
			continue
		case res.rejoinSoon:
			if !sleep(ctx, 250*time.Millisecond) {
				return ctx.Err()
			}
			continue
		}
		var rejoinAt time.Time
		if res.delay > 0 {
			rejoinAt = time.Now().Add(res.delay)
		}
		lastAlive, err = m.heartbeat(ctx, lastAlive, rejoinAt)
		if err != nil {
			return err
		}
	}
}

// syncResult tells Run what to do after a join attempt.
type syncResult struct {
	alive      time.Time // when the coordinator last accepted this member
	retry      bool      // the join did not complete (rebalance restarted, member ID changed); join again
	rejoinNow  bool      // work was revoked: the second round of the two-round protocol
	rejoinSoon bool      // the assignment failed; let the worker catch up, then join again
	delay      time.Duration
}

// joinAndSync runs one JoinGroup + SyncGroup and hands the assignment to
// the callback.
func (m *Member) joinAndSync(ctx context.Context) (syncResult, error) {
	m.mu.Lock()
	memberID := m.memberID
	owned := m.owned.sorted()
	last := m.last
	m.mu.Unlock()
	snap := m.cfg.Snapshot()

	var alloc *Assignment
	if len(owned) > 0 {
		alloc = &Assignment{Assigned: owned}
		if last != nil {
			alloc.Leader, alloc.LeaderURL, alloc.ConfigOffset = last.Leader, last.LeaderURL, last.ConfigOffset
		}
	}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group = m.cfg.GroupID
	join.SessionTimeoutMillis = int32(m.cfg.SessionTimeout / time.Millisecond)
	join.RebalanceTimeoutMillis = int32(m.cfg.RebalanceTimeout / time.Millisecond)
	join.MemberID = memberID
	join.ProtocolType = ProtocolType
	join.Reason = kmsg.StringPtr("connect worker joining")
	for _, p := range m.protocols() {
		md := Metadata{Version: protocolVersion(p), URL: m.cfg.URL, ConfigOffset: snap.Offset, Allocation: alloc}
		jp := kmsg.NewJoinGroupRequestProtocol()
		jp.Name, jp.Metadata = p, md.Encode()
		join.Protocols = append(join.Protocols, jp)
	}
	jresp, err := join.RequestWith(ctx, m.cfg.Client)
	if err != nil {
		return syncResult{}, fmt.Errorf("JoinGroup %s: %w", m.cfg.GroupID, err)
	}
	switch err := kerr.ErrorForCode(jresp.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.MemberIDRequired):
		m.setMemberID(jresp.MemberID)
		return syncResult{alive: time.Now(), retry: true}, nil
	case errors.Is(err, kerr.UnknownMemberID):
		m.setMemberID("")
		return syncResult{alive: time.Now(), retry: true}, nil
	case errors.Is(err, kerr.RebalanceInProgress), errors.Is(err, kerr.IllegalGeneration):
		return syncResult{alive: time.Now(), retry: true}, nil
	default:
		return syncResult{}, fmt.Errorf("JoinGroup %s: %w", m.cfg.GroupID, err)
	}
	protocol := ""
	if jresp.Protocol != nil {
		protocol = *jresp.Protocol
	}
	if protocolVersion(protocol) < V1 {
		return syncResult{}, fmt.Errorf("JoinGroup %s: the group chose protocol %q; this worker speaks only %v", m.cfg.GroupID, protocol, m.protocols())
	}
	m.setMemberID(jresp.MemberID)

	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group = m.cfg.GroupID
	sync.Generation = jresp.Generation
	sync.MemberID = jresp.MemberID
	sync.ProtocolType = kmsg.StringPtr(ProtocolType)
	sync.Protocol = kmsg.StringPtr(protocol)
	var owners map[ID]string
	if jresp.LeaderID == jresp.MemberID {
		sync.GroupAssignment, owners = m.assign(jresp, protocol)
	}
	sresp, err := sync.RequestWith(ctx, m.cfg.Client)
	if err != nil {
		return syncResult{}, fmt.Errorf("SyncGroup %s: %w", m.cfg.GroupID, err)
	}
	switch err := kerr.ErrorForCode(sresp.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.UnknownMemberID):
		m.setMemberID("")
		return syncResult{alive: time.Now(), retry: true}, nil
	case errors.Is(err, kerr.RebalanceInProgress), errors.Is(err, kerr.IllegalGeneration):
		return syncResult{alive: time.Now(), retry: true}, nil
	default:
		return syncResult{}, fmt.Errorf("SyncGroup %s: %w", m.cfg.GroupID, err)
	}
	asg, err := DecodeAssignment(sresp.MemberAssignment)
	if err != nil {
		return syncResult{}, fmt.Errorf("SyncGroup %s: %w", m.cfg.GroupID, err)
	}
	return m.apply(ctx, jresp.Generation, jresp.MemberID, protocol, asg, owners), nil
}

// assign runs the assignor at the leader and encodes everyone's
// assignment; it also returns who will own what, for OwnerURL.
func (m *Member) assign(jresp *kmsg.JoinGroupResponse, protocol string) ([]kmsg.SyncGroupRequestGroupAssignment, map[ID]string) {
	m.mu.Lock()
	lastCompleted := m.lastCompleted
	m.mu.Unlock()
	round := Round{Now: time.Now(), Generation: jresp.Generation, LastCompleted: lastCompleted,
		Leader: jresp.LeaderID, Version: protocolVersion(protocol), Config: m.cfg.Snapshot()}
	urls := map[string]string{}
	for _, jm := range jresp.Members {
		ws := WorkerState{ID: jm.MemberID, ConfigOffset: -1}
		md, err := DecodeMetadata(jm.ProtocolMetadata)
		if err != nil {
			m.log.Warn("connect group member metadata unreadable; treating it as empty", "member", jm.MemberID, "err", err)
		} else {
			ws.URL, ws.ConfigOffset = md.URL, md.ConfigOffset
			if md.Allocation != nil {
				ws.Owned = md.Allocation.Assigned
			}
		}
		urls[jm.MemberID] = ws.URL
		round.Members = append(round.Members, ws)
	}
	out := m.assignor.Assign(round)
	owners := map[ID]string{}
	for _, ws := range round.Members {
		a := out[ws.ID]
		revoked := idSet{}
		for _, id := range a.Revoked {
			revoked.add(id)
		}
		for _, id := range append(ws.Owned, a.Assigned...) {
			if !revoked.has(id) {
				owners[id] = urls[ws.ID]
			}
		}
	}
	var ga []kmsg.SyncGroupRequestGroupAssignment
	for _, ws := range round.Members {
		g := kmsg.NewSyncGroupRequestGroupAssignment()
		g.MemberID, g.MemberAssignment = ws.ID, out[ws.ID].Encode()
		ga = append(ga, g)
	}
	return ga, owners
}

// apply folds an assignment into what the member owns and tells the worker.
func (m *Member) apply(ctx context.Context, gen int32, memberID, protocol string, asg *Assignment, owners map[ID]string) syncResult {
	synced := time.Now()
	m.mu.Lock()
	ev := Event{Generation: gen, MemberID: memberID, Leader: asg.Leader, LeaderURL: asg.LeaderURL,
		IsLeader: asg.Leader == memberID, Protocol: protocol, ConfigOffset: asg.ConfigOffset, Error: asg.Error,
		Delay: time.Duration(asg.Delay) * time.Millisecond}
	m.generation, m.leader, m.leaderURL = gen, asg.Leader, asg.LeaderURL
	m.owners = nil
	if ev.IsLeader {
		m.owners = owners
	}
	if asg.Error == NoError {
		m.lastCompleted = gen
		for _, id := range asg.Revoked {
			if m.owned.has(id) {
				delete(m.owned, id)
				ev.Revoked = append(ev.Revoked, id)
			}
		}
		for _, id := range asg.Assigned {
			if !m.owned.has(id) {
				m.owned.add(id)
				ev.Assigned = append(ev.Assigned, id)
			}
		}
		m.last = asg
	}
	ev.Owned = m.owned.sorted()
	m.mu.Unlock()

	m.log.Info("connect group assignment", "generation", gen, "leader", asg.Leader, "error", asg.Error,
		"assigned", len(ev.Assigned), "revoked", len(ev.Revoked), "owned", len(ev.Owned), "delay", ev.Delay)
	// Stopping revoked work can take longer than a session timeout; the
	// member must stay in the group meanwhile, as Kafka's background
	// heartbeat thread keeps it.
	alive, rebalance := m.heartbeatWhile(ctx, synced, func() { m.cfg.OnAssignment(ev) })
	res := syncResult{alive: alive, delay: ev.Delay}
	switch {
	case asg.Error != NoError:
		res.rejoinSoon = true
	case len(ev.Revoked) > 0 || rebalance:
		res.rejoinNow = true
	}
	return res
}

func (m *Member) leaveGroup() {
	m.mu.Lock()
	id, leave := m.memberID, m.leave
	m.memberID, m.owners = "", nil
	m.mu.Unlock()
	if id == "" || !leave {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group, req.MemberID = m.cfg.GroupID, id
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = id
	lm.Reason = kmsg.StringPtr("connect worker stopping")
	req.Members = append(req.Members, lm)
	resp, err := req.RequestWith(ctx, m.cfg.Client)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		m.log.Warn("connect group leave failed", "err", err)
	}
}

func (m *Member) setMemberID(id string) {
	m.mu.Lock()
	m.memberID = id
	m.mu.Unlock()
}

func (m *Member) protocols() []string {
	if m.cfg.Sessioned {
		return []string{ProtocolSessioned, ProtocolCompatible}
	}
	return []string{ProtocolCompatible}
}

func protocolVersion(p string) int16 {
	switch p {
	case ProtocolSessioned:
		return V2
	case ProtocolCompatible:
		return V1
	}
	return V0
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
