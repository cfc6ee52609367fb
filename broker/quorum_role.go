package broker

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/ctrlquorum"
	"github.com/sluice-io/sluice/metalog"
	"github.com/sluice-io/sluice/metarepl"
	"github.com/sluice-io/sluice/quorumnet"
	"github.com/sluice-io/sluice/segment"
	"github.com/sluice-io/sluice/voter"
)

// quorumRole is the controller role of a voter in a controller quorum
// (controller.quorum.voters lists two or more voters): its voter (the
// CASPaxos register and the takeover), its copy of the metadata log
// (metarepl), the quorum's transport, and, while this voter is the active
// controller, the Store on the replicated log that the controller's APIs
// commit to.
//
// The broker side of the same node does not read that Store directly
// except through quorumSource: it follows the metadata through a
// controllerlink.Link like any broker, so that the node's broker and
// controller roles fail and move independently.
type quorumRole struct {
	cfg    *config.Broker
	logger *slog.Logger
	self   caspaxos.Voter
	voters []caspaxos.Member
	// ready is set once start has set every field below: the CONTROLLER
	// listener serves (the voters' identity requests) before that, so
	// request handlers and metrics check it before reading them.
	ready atomic.Bool

	v   *voter.Voter
	log *metarepl.Log
	rep *metarepl.Replica
	net *quorumnet.Client

	transitions chan ctrlquorum.Transition
	stop        chan struct{}
	done        sync.WaitGroup

	mu       sync.Mutex
	store    *controller.Store // the active controller's Store; nil when not active
	epoch    int32             // store's epoch
	onActive func(*controller.Store)
	// prevImage is the last image of a Store dropped on a step-down.
	prevImage *controller.Image
	settled   settledQuorum // for ChannelIdentity; follows the register (syncMembership)
	fsys      segment.FS
	syncMu    sync.Mutex // one syncMembership at a time
	changing  sync.Mutex // one AddRaftVoter or RemoveRaftVoter at a time
	// leadVoters are the voters the metadata log's leader tracks, as of
	// the register it last got (lead, syncMembership).
	leadVoters []caspaxos.Voter
}

// The quorum's other timers: the metadata log drops a dead voter from its
// ISR after 1 s (commits wait for every ISR voter until then). The lease
// and the takeover come from controller.quorum.fetch.timeout.ms
// (quorumTimers).
const (
	quorumMetaLagMaxMs = 1000
	quorumOpenTimeout  = 30 * time.Second
)

// quorumTimers are the takeover timeout (controller.quorum.fetch.timeout.ms)
// and the lease, two thirds of it, renewed every third of itself: the
// active controller stops acting before any voter may take over, with a
// third of the lease to spare for clock-rate differences.
// quorumRetryTicks is how many voter ticks (10ms) a phase of a register
// round gets before it is retried: a third of the lease (440ms with the
// default 1.33s lease), at least the voter's default 200ms and at most
// 500ms. A retry makes the round indeterminate, and under a disk busy
// with logs an acceptor's fsync took over 200ms, so takeovers failed for
// no reason (half a second added to a failover). A message is lost only
// with its TCP connection, and a renewal that waits out one retry still
// ends within the lease.
func quorumRetryTicks(lease time.Duration) int {
	return min(50, max(20, int(lease/3/(10*time.Millisecond))))
}

// metaTrimMinBytes is how much of the metadata log must lie below a
// committed checkpoint before a voter drops it: 1 MiB (the rewrite of the
// log's tail is not worth less), or less when checkpoints are set closer
// than that, so that each one still trims.
func metaTrimMinBytes(cfg *config.Broker) int64 {
	return max(1, min(cfg.MetadataCheckpointBytes, 1<<20))
}

func quorumTimers(cfg *config.Broker) (lease, takeover time.Duration) {
	takeover = time.Duration(cfg.QuorumFetchTimeoutMs) * time.Millisecond
	return takeover * 2 / 3, takeover
}

// openQuorumRole opens the voter's directories in the first log dir and
// answers ChannelIdentity; start gathers the voter set and runs the rest.
func openQuorumRole(cfg *config.Broker, nodeID int32, fsys segment.FS, logger *slog.Logger) (*quorumRole, error) {
	base := cfg.LogDirs[0]
	self, err := voter.Identity(fsys, filepath.Join(base, quorumVoterDir), nodeID)
	if err != nil {
		return nil, fmt.Errorf("broker: controller voter identity: %w", err)
	}
	return &quorumRole{cfg: cfg, logger: logger.With("role", "controller"), self: self,
		transitions: make(chan ctrlquorum.Transition, 64), stop: make(chan struct{})}, nil
}

// identity answers ChannelIdentity.
func (q *quorumRole) identity() []byte {
	q.mu.Lock()
	settled := q.settled
	q.mu.Unlock()
	id := quorumIdentity{NodeID: q.self.ID, Incarnation: hex.EncodeToString(q.self.Incarnation[:]),
		Voters: encodeVoters(settled.Voters), ClusterID: settled.ClusterID}
	raw, _ := json.Marshal(id)
	return raw
}

// start gathers the voter set (waiting for the other voters on a new
// cluster), then starts the voter, the metadata log and the transport.
// The broker serves this node's CONTROLLER listener before it: the other
// voters gather through it too.
func (q *quorumRole) start(ctx context.Context, fsys segment.FS, setHandlers func(quorumHandlers)) error {
	base := q.cfg.LogDirs[0]
	vdir := filepath.Join(base, quorumVoterDir)
	q.fsys = fsys
	setHandlers(quorumHandlers{identity: q.identity})
	listener := q.cfg.ControllerListenerName()
	sq, err := gatherVoters(ctx, fsys, vdir, q.self, q.cfg.Voters, listener, func(sq settledQuorum) {
		q.mu.Lock()
		q.settled = sq
		q.mu.Unlock()
	}, q.logger)
	if err != nil {
		return err
	}
	vs := memberVoters(sq.Voters)
	peers := map[int32]string{}
	for _, m := range sq.Voters {
		v := m.Voter
		if cv, ok := q.cfg.Voter(v.ID); ok {
			m.Endpoints = []caspaxos.Endpoint{{Name: listener, Host: cv.Host, Port: uint16(cv.Port)}}
		} else if len(m.Endpoints) == 0 {
			return fmt.Errorf("broker: the settled controller voters name node %d with no endpoint, and controller.quorum.voters does not list it", v.ID)
		}
		q.voters = append(q.voters, m)
		peers[v.ID] = net.JoinHostPort(m.Endpoints[0].Host, strconv.Itoa(int(m.Endpoints[0].Port)))
	}
	if q.net, err = quorumnet.New(quorumnet.Config{NodeID: q.self.ID, Peers: peers, Logger: q.logger}); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	minISR := int32(len(vs)/2 + 1)
	lease, takeover := quorumTimers(q.cfg)
	// A node the settled set does not name (a controller to be added with
	// AddRaftVoter, or one RemoveRaftVoter removed) joins: it proposes
	// nothing until a membership change's step names it.
	join := !slices.ContainsFunc(vs, func(v caspaxos.Voter) bool { return v.ID == q.self.ID })
	if join {
		q.logger.Warn("this controller is not a voter of the quorum: it runs as a non-member until AddRaftVoter adds it",
			"voters", fmt.Sprint(vs), "self", q.self.String())
	}
	if q.v, err = voter.New(voter.Config{NodeID: q.self.ID, Voters: q.voters, Bootstrap: !join, Join: join,
		ClusterID: sq.clusterID(), MetaMinISR: minISR, FS: fsys, Dir: vdir, Transport: q.net,
		Logger: q.logger, OnTransition: q.transition, Lease: lease, TakeoverTimeout: takeover,
		RetryTicks: quorumRetryTicks(lease)}); err != nil {
		_ = q.net.Close()
		return fmt.Errorf("broker: %w", err)
	}
	if q.log, err = metarepl.OpenLog(fsys, filepath.Join(base, quorumMetaLog)); err != nil {
		_ = q.v.Close()
		_ = q.net.Close()
		return fmt.Errorf("broker: the metadata log: %w", err)
	}
	if q.rep, err = metarepl.Start(metarepl.Config{Self: q.v.Self(), Log: q.log, Transport: q.net,
		Register: q.v.MetaLogRegister(), LagTimeMaxMs: quorumMetaLagMaxMs, Logger: q.logger,
		TrimMinBytes: metaTrimMinBytes(q.cfg)}); err != nil {
		_ = q.v.Close()
		_ = q.net.Close()
		return fmt.Errorf("broker: the metadata log: %w", err)
	}
	setHandlers(quorumHandlers{identity: q.identity, deliver: q.v.Deliver, fetch: quorumnet.FetchHandler(q.rep.HandleFetch)})
	q.done.Add(2)
	go q.runTransitions()
	go q.follow()
	q.v.Start()
	q.ready.Store(true) // after every field above: readers check it first
	return nil
}

// transition is the voter's OnTransition: queued for runTransitions, in
// order.
func (q *quorumRole) transition(t ctrlquorum.Transition) {
	select {
	case q.transitions <- t:
	case <-q.stop:
	}
}

// runTransitions acts on the voter's transitions one at a time: on
// becoming active, lead the metadata log in the new epoch and open a
// Store on it; on stepping down, drop the Store (it refuses every later
// Commit anyway, being fenced by the epoch of its appends).
func (q *quorumRole) runTransitions() {
	defer q.done.Done()
	for {
		var t ctrlquorum.Transition
		select {
		case <-q.stop:
			return
		case t = <-q.transitions:
		}
		if !t.Active {
			q.setStore(nil, 0)
			q.logger.Info("stepped down as the active controller", "epoch", t.Epoch, "reason", t.Reason)
			continue
		}
		if err := q.lead(t); err != nil {
			q.logger.Warn("could not take up the controller role", "epoch", t.Epoch, "err", err)
		}
	}
}

func (q *quorumRole) lead(t ctrlquorum.Transition) error {
	ctx, cancel := context.WithTimeout(context.Background(), quorumOpenTimeout)
	defer cancel()
	go func() {
		select {
		case <-q.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	reg := t.Register
	var stale []metalog.Voter
	if !t.Deposed.IsZero() {
		stale = append(stale, t.Deposed)
	}
	if err := q.rep.BecomeLeader(ctx, metalog.ConfigOf(reg), int(reg.MetaMinISR), stale...); err != nil {
		return err
	}
	q.mu.Lock()
	q.leadVoters = memberVoters(reg.Voters)
	q.mu.Unlock()
	st, err := controller.OpenReplicated(ctx, controller.ReplicatedConfig{Replica: q.rep, Epoch: t.Epoch,
		ClusterID: reg.ClusterID, NodeID: q.self.ID, Logger: q.logger,
		Checkpoints: controller.CheckpointPolicy{MaxBytes: q.cfg.MetadataCheckpointBytes,
			MaxInterval: time.Duration(q.cfg.MetadataCheckpointIntervalMs) * time.Millisecond}})
	if err != nil {
		return err
	}
	if e, ok := q.v.Active(); !ok || e != t.Epoch {
		return fmt.Errorf("deposed while opening the store of epoch %d", t.Epoch)
	}
	q.setStore(st, t.Epoch)
	q.logger.Info("active controller", "epoch", t.Epoch, "metadata_offset", st.End())
	return nil
}

func (q *quorumRole) setStore(st *controller.Store, epoch int32) {
	q.mu.Lock()
	if q.store != nil {
		q.prevImage = q.store.Image()
	}
	q.store, q.epoch = st, epoch
	on := q.onActive
	q.mu.Unlock()
	if st != nil && on != nil {
		on(st)
	}
}

// lastImage is the image of this voter's Store as the active controller,
// or of its last one; nil if it was never active.
func (q *quorumRole) lastImage() *controller.Image {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.store != nil {
		return q.store.Image()
	}
	return q.prevImage
}

// activeStore is the Store while this voter is the active controller of
// its epoch with a live lease (checked now, not as last told).
func (q *quorumRole) activeStore() (*controller.Store, int32, bool) {
	q.mu.Lock()
	st, epoch := q.store, q.epoch
	q.mu.Unlock()
	if st == nil {
		return nil, 0, false
	}
	if e, ok := q.v.Active(); !ok || e != epoch {
		return nil, 0, false
	}
	return st, epoch, true
}

// awaitStore waits up to d for the Store of a voter that won a takeover
// and is opening it; it returns at once when this voter is not active.
func (q *quorumRole) awaitStore(ctx context.Context, d time.Duration) (*controller.Store, bool) {
	deadline := time.Now().Add(d)
	for {
		if st, _, ok := q.activeStore(); ok {
			return st, true
		}
		if _, active := q.v.Active(); !active || time.Now().After(deadline) {
			return nil, false
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-q.stop:
			return nil, false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// follow keeps the metadata log's replica following the controller the
// voter knows of, and tells the voter of a newer epoch the log saw.
func (q *quorumRole) follow() {
	defer q.done.Done()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-q.stop:
			return
		case <-tick.C:
		}
		q.syncMembership()
		st := q.rep.Status()
		if st.Err != nil {
			continue
		}
		l := q.v.Leader()
		switch {
		case st.Epoch > l.Epoch:
			_ = q.v.ObserveEpoch(st.Epoch)
		case l.Epoch > st.Epoch && !l.Active.IsZero() && l.Active != q.self:
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if err := q.rep.Follow(ctx, l.Active, l.Epoch); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				q.logger.Debug("following the metadata log", "leader", l.Active.String(), "epoch", l.Epoch, "err", err)
			}
			cancel()
		}
	}
}

// leader is the active controller as this voter knows it.
func (q *quorumRole) leader() ctrlquorum.Leader {
	if q.v == nil {
		return ctrlquorum.Leader{}
	}
	return q.v.Leader()
}

// close stops the role: the voter first (a step-down), then the log.
func (q *quorumRole) close() {
	select {
	case <-q.stop:
		return
	default:
	}
	if q.v != nil {
		_ = q.v.Close()
	}
	close(q.stop)
	q.done.Wait()
	q.setStore(nil, 0)
	if q.rep != nil {
		_ = q.rep.Close()
	}
	if q.log != nil {
		if err := q.log.Close(); err != nil {
			q.logger.Warn("closing the metadata log", "err", err)
		}
	}
	if q.net != nil {
		_ = q.net.Close()
	}
}

// startQuorum starts this voter's controller role, serving its CONTROLLER
// listener from now on, then links the node's broker side to the active
// controller (waiting up to controllerWaitTimeout for the quorum to
// elect one).
func (b *Broker) startQuorum() (*quorumSource, error) {
	if b.engine == nil || b.ctrlListener == nil {
		return nil, errors.New("broker: a controller quorum voter needs its CONTROLLER listener (controller.listener.names, listeners) served over the network")
	}
	role, err := openQuorumRole(b.cfg, b.localID(), b.fs, b.logger)
	if err != nil {
		return nil, err
	}
	role.onActive = b.onControllerActive
	b.ctrl = role // before serving: the handlers read it
	b.serve(b.ctrlListener)
	b.ctrlServing = true
	ctx, cancel := context.WithTimeout(context.Background(), controllerWaitTimeout)
	defer cancel()
	if err := role.start(ctx, b.fs, b.setQuorumHandlers); err != nil {
		role.close()
		return nil, err
	}
	link, err := dialVoters(ctx, b.cfg, b.logger)
	if err != nil {
		role.close()
		return nil, err
	}
	return &quorumSource{Link: link, role: role}, nil
}

// onControllerActive runs when this voter's Store opens in a new epoch:
// every broker gets a full session from now (a new controller knows no
// heartbeat times), and this node's replicas see the Store's image.
func (b *Broker) onControllerActive(*controller.Store) {
	b.liveness.mu.Lock()
	b.liveness.hb = nil
	b.liveness.mu.Unlock()
	if b.loaded.Load() { // b.meta is set before, and read only after
		b.applyImage()
	}
}

// controllerID is the active controller as this node knows it, for
// Metadata and DescribeCluster: a voter's own register, a broker's link
// (which follows the active controller), else the image's. Clients send
// CreateTopics and the like to the broker it names, so an active
// controller that is not a broker (process.roles=controller) is named by
// this broker instead, which forwards, as Kafka names a live broker.
func (b *Broker) controllerID(img *controller.Image) int32 {
	id := b.newestController(img.ControllerID())
	if _, isBroker := img.Broker(id); !isBroker && b.cfg.IsBroker() {
		return b.localID()
	}
	return id
}

// newestController is the active controller as this node knows it, or
// otherwise when neither its voter's register nor its link names one.
// The link follows the active controller wherever it is; a voter's own
// register may be older (a voter that is not a member proposes nothing,
// so it does not read the register either): the newer epoch wins.
func (b *Broker) newestController(otherwise int32) int32 {
	id, epoch := otherwise, int32(-1)
	if b.ctrl != nil {
		if l := b.ctrl.leader(); !l.Active.IsZero() {
			id, epoch = l.Active.ID, l.Epoch
		}
	}
	if l, ok := b.meta.(interface{ Controller() (int32, int32) }); ok {
		if c, e := l.Controller(); c >= 0 && (epoch < 0 || e > epoch) {
			id = c
		}
	}
	return id
}
