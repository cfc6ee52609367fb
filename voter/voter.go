package voter

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/ctrlquorum"
	"github.com/sluice-io/sluice/segment"
)

// Config configures one Voter.
type Config struct {
	// NodeID is this voter's id (Kafka's node id); it must be one of
	// Voters' ids unless Join is set.
	NodeID int32
	// Voters are the controller quorum's members, each with the
	// incarnation its directory was formatted with (Identity): where the
	// proposer sends its rounds, and the register's first value with
	// Bootstrap. A member whose incarnation is not the one on its disk
	// (a wiped voter) only refuses, and that voter never takes over.
	// Once a membership change (ChangeVoters) reached this voter, the
	// configuration it persisted replaces Voters for good.
	Voters []caspaxos.Member
	// Join starts a voter that is to be added by a membership change: it
	// proposes nothing until a change's step reaches it, and Voters (the
	// quorum it joins) need not name it. Not with Bootstrap.
	Join bool
	// Bootstrap writes the register's first value (ClusterID, Voters,
	// MetaMinISR) if it was never written; every voter of a new cluster
	// may set it, the first round wins and the rest read.
	Bootstrap  bool
	ClusterID  string
	MetaMinISR int32
	// FS and Dir hold the acceptor's state (StateFile). FS defaults to
	// segment.OSFS().
	FS  segment.FS
	Dir string
	// Transport carries this voter's messages to the others.
	Transport Transport
	// Now is the local monotonic clock. Default: time since New, from
	// the runtime's monotonic clock.
	Now func() time.Duration
	// Logger defaults to discarding.
	Logger *slog.Logger
	// OnTransition is told, in order, each time this voter becomes the
	// active controller of an epoch or stops being it (including on
	// Close and on a fatal error). It runs on a goroutine of its own, so
	// it may call the Voter's methods, but not Close. It is a notice:
	// check Active before acting as controller, which is exact.
	OnTransition func(ctrlquorum.Transition)
	// Lease, TakeoverTimeout, ReadInterval and MaxBackoff are
	// ctrlquorum.Config's; zero takes its defaults (1s, 1.5s, 250ms,
	// 250ms).
	Lease, TakeoverTimeout, ReadInterval, MaxBackoff time.Duration
	// TickInterval is how often the event loop ticks the Node and the
	// proposer (default 10ms): the resolution of every timer above.
	TickInterval time.Duration
	// RetryTicks is how many ticks a phase of a caspaxos round may take
	// before it is retried (default 20, 200ms at the default tick). It
	// must exceed a round trip including the acceptors' fsyncs (a retry
	// makes the round indeterminate) and stay well under the lease, which
	// a renewal that waits for a lost message must not outlast.
	RetryTicks int
	// Seed seeds the backoffs and takeover nonces; 0 draws one.
	Seed uint64
}

// Errors of the Voter's methods.
var (
	// ErrClosed: the Voter was closed or failed (see Err).
	ErrClosed = errors.New("voter: closed")
	// ErrNotStarted: Start was not called yet.
	ErrNotStarted = errors.New("voter: not started")
	// ErrOverloaded: Deliver dropped a message because the event loop is
	// behind; the protocol retries, as for any lost message.
	ErrOverloaded = errors.New("voter: inbox full, message dropped")
)

const inboxSize = 1024

// Voter runs one controller voter: its caspaxos acceptor (persisted in
// Dir), a caspaxos proposer and a ctrlquorum.Node, on one event-loop
// goroutine. See the package doc.
type Voter struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Duration
	self  caspaxos.Voter
	store store
	lock  io.Closer

	inbox chan inbound
	calls chan func()
	stop  chan struct{}
	done  chan struct{}
	// gate is taken by the loop before each event; a test holds it to
	// pause the voter as SIGSTOP would, its clock running on.
	gate sync.Mutex

	// Owned by the loop goroutine.
	acc   *caspaxos.Acceptor
	local []caspaxos.Message // messages this voter sends itself
	out   []outbound         // sent after each event, outside mu

	// mu guards the Node and the proposer (Active reads the Node from
	// other goroutines) and the fields below.
	mu     sync.Mutex
	node   *ctrlquorum.Node
	prop   *caspaxos.Proposer
	flight *ctrlquorum.Proposal
	// The membership state (membership.go): the persisted step record
	// (nil: the bootstrap configuration), the proposers' configuration,
	// whether this voter is outside it (passive: the Node's proposal is
	// parked, not run), the driver's own proposer and its waiting
	// ChangeVoters, and the step acknowledgements heard. rec is written
	// on the loop under mu, so the loop reads it without mu.
	rec        *stepRecord
	pcfg       caspaxos.Config
	passive    bool
	parked     *ctrlquorum.Proposal
	admin      *caspaxos.Proposer
	adminWait  chan caspaxos.Result
	acks       map[int32]stepRecord
	pendingISR chan ctrlquorum.ISRResult
	pendingReq ctrlquorum.ISRRequest
	activeIn   int32 // the epoch of the last Active transition, 0 after a step-down
	stopped    bool
	err        error

	notes *notifier

	changing sync.Mutex // one ChangeVoters at a time

	life    sync.Mutex // Start and Close
	started bool
	closed  bool

	dropped atomic.Int64
}

type inbound struct {
	from int32
	env  envelope
}

type outbound struct {
	to      int32
	payload []byte
}

// New opens the voter's state in cfg.Dir (creating a fresh one, with a new
// incarnation, if there is none) and returns a Voter that is not running
// yet. A state file that exists but cannot be read is an error, never a
// reset. The directory stays locked until Close.
func New(cfg Config) (*Voter, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	v := &Voter{cfg: cfg, now: cfg.Now, store: store{fsys: cfg.FS, dir: cfg.Dir},
		inbox: make(chan inbound, inboxSize), calls: make(chan func()),
		stop: make(chan struct{}), done: make(chan struct{}), acks: map[int32]stepRecord{}}
	if err := cfg.FS.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("voter: create %s: %w", cfg.Dir, err)
	}
	lock, err := cfg.FS.Lock(filepath.Join(cfg.Dir, LockFile))
	if err != nil {
		return nil, fmt.Errorf("voter: lock %s: %w", cfg.Dir, err)
	}
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	st, rec, created, err := v.store.open(cfg.NodeID)
	if err != nil {
		return nil, err
	}
	v.self = st.Self
	v.log = cfg.Logger.With("voter", v.self.String())
	if v.acc, err = caspaxos.NewAcceptor(st); err != nil {
		return nil, fmt.Errorf("voter: %s: %w", v.store.path(), err)
	}
	rng := mrand.New(mrand.NewPCG(cfg.Seed, uint64(cfg.NodeID)))
	// The proposers' configuration: the last membership step this voter
	// persisted, else the bootstrap voters (the quorum it joins, with
	// Join: it is passive until a step names it).
	v.rec = rec
	members := memberVoters(cfg.Voters)
	if len(members) == 0 {
		members = []caspaxos.Voter{v.self} // Join with no voters given: passive anyway
	}
	v.pcfg = caspaxos.Majority(members)
	if rec != nil {
		v.pcfg = rec.Config
	}
	member := slices.Contains(v.pcfg.Voters(), v.self)
	v.passive = !member || (rec == nil && cfg.Join)
	// A proposer id of its own per life: the counter is not persisted,
	// so reusing an id could make two attempts with one ballot.
	propID := randomID(rng)
	if v.prop, err = caspaxos.NewProposer(caspaxos.Options{ID: propID, Config: v.pcfg,
		RetryTicks: cfg.RetryTicks, Rand: rng.IntN, OneRoundTrip: true}); err != nil {
		return nil, fmt.Errorf("voter: %w", err)
	}
	adminID := randomID(rng)
	for adminID == propID {
		adminID = randomID(rng)
	}
	if v.admin, err = caspaxos.NewProposer(caspaxos.Options{ID: adminID, Config: v.pcfg,
		RetryTicks: cfg.RetryTicks, Rand: rng.IntN}); err != nil {
		return nil, fmt.Errorf("voter: %w", err)
	}
	ncfg := ctrlquorum.Config{Self: v.self, Lease: cfg.Lease, TakeoverTimeout: cfg.TakeoverTimeout,
		ReadInterval: cfg.ReadInterval, MaxBackoff: cfg.MaxBackoff, Rand: rng.Int64N}
	if cfg.Bootstrap {
		ncfg.Bootstrap = &ctrlquorum.Bootstrap{ClusterID: cfg.ClusterID, Voters: cfg.Voters, MetaMinISR: cfg.MetaMinISR}
	}
	if v.node, err = ctrlquorum.New(ncfg); err != nil {
		return nil, fmt.Errorf("voter: %w", err)
	}
	if v.passive {
		v.log.Warn("this incarnation is not in its proposers' configuration (joining, wiped or re-formatted): its acceptor answers only as itself, and it proposes nothing and never takes over until a membership change admits it")
	}
	v.log.Info("voter opened", "dir", cfg.Dir, "new_incarnation", created, "change", rec != nil)
	v.lock = lock
	ok = true
	return v, nil
}

func (c *Config) setDefaults() error {
	if c.NodeID == 0 {
		return errors.New("voter: config has no NodeID")
	}
	if c.Dir == "" {
		return errors.New("voter: config has no Dir")
	}
	if c.Transport == nil {
		return errors.New("voter: config has no Transport")
	}
	found := false
	for _, m := range c.Voters {
		found = found || m.Voter.ID == c.NodeID
	}
	if c.Join && c.Bootstrap {
		return errors.New("voter: a joining voter does not bootstrap")
	}
	if !found && !c.Join {
		return fmt.Errorf("voter: node %d is not among the %d configured voters", c.NodeID, len(c.Voters))
	}
	if c.FS == nil {
		c.FS = segment.OSFS()
	}
	if c.Now == nil {
		start := time.Now()
		c.Now = func() time.Duration { return time.Since(start) }
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.TickInterval <= 0 {
		c.TickInterval = 10 * time.Millisecond
	}
	if c.RetryTicks <= 0 {
		c.RetryTicks = 20
	}
	if c.Seed == 0 {
		var b [8]byte
		if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
			return fmt.Errorf("voter: seed: %w", err)
		}
		c.Seed = binary.BigEndian.Uint64(b[:])
	}
	return nil
}

func randomID(rng *mrand.Rand) uint64 {
	for {
		if id := rng.Uint64(); id != 0 {
			return id
		}
	}
}

// Self returns this voter's identity: its id and the incarnation of its
// directory.
func (v *Voter) Self() caspaxos.Voter { return v.self }

// Start runs the event loop. Messages delivered before Start wait in the
// inbox.
func (v *Voter) Start() {
	v.life.Lock()
	defer v.life.Unlock()
	if v.started || v.closed {
		return
	}
	v.started = true
	if v.cfg.OnTransition != nil {
		v.notes = newNotifier(v.cfg.OnTransition)
	}
	go v.run()
}

// Close stops the voter and releases its directory. If it was the active
// controller, OnTransition hears it step down ("closed"); a pending ISR
// request ends with ErrClosed. Close waits for the event loop and for
// OnTransition to return; it must not be called from OnTransition.
func (v *Voter) Close() error {
	v.life.Lock()
	defer v.life.Unlock()
	if v.closed {
		return nil
	}
	v.closed = true
	if v.started {
		close(v.stop)
		<-v.done
	} else {
		close(v.done)
	}
	v.mu.Lock()
	v.halt("closed", ErrClosed)
	v.mu.Unlock()
	if v.notes != nil {
		v.notes.close()
	}
	if err := v.lock.Close(); err != nil {
		return fmt.Errorf("voter: unlock %s: %w", v.cfg.Dir, err)
	}
	return nil
}

// Done is closed when the event loop has stopped: after Close, or on a
// fatal error (Err).
func (v *Voter) Done() <-chan struct{} { return v.done }

// Err returns what went wrong for good: a failed write of the acceptor
// state, which stops the voter (Done is closed; the answers that depended
// on it were never sent; restart it from its directory), or a register of
// another cluster, after which the voter proposes nothing more but its
// acceptor keeps answering.
func (v *Voter) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

// Deliver hands the voter a message another voter sent (from is the
// sender's node id). It decodes and queues it, never blocking: bytes that
// are not an envelope this version reads are an error wrapping
// ErrEnvelope, and a full inbox drops the message (ErrOverloaded).
func (v *Voter) Deliver(from int32, payload []byte) error {
	env, err := decodeEnvelope(payload)
	if err != nil {
		return fmt.Errorf("voter %s: from %d: %w", v.self, from, err)
	}
	select {
	case v.inbox <- inbound{from: from, env: env}:
		return nil
	default:
		v.dropped.Add(1)
		return ErrOverloaded
	}
}

// Active reports the epoch this voter is the active controller in, if its
// lease has not run out now. It is exact between the event loop's ticks,
// and false once the voter is closed or failed: check it before acting as
// controller.
func (v *Voter) Active() (int32, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.stopped {
		return 0, false
	}
	return v.node.Active(v.now())
}

// Leader returns the controller epoch and the active controller as this
// voter last read or heard them (zero Active when none is known).
func (v *Voter) Leader() ctrlquorum.Leader {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.node.Leader()
}

// Register returns the register as this voter last read or heard it.
func (v *Voter) Register() caspaxos.Register {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.node.Register()
}

// Status returns the Node's state (for DescribeQuorum and logs).
func (v *Voter) Status() ctrlquorum.Status {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.node.Status()
}

// RequestISR asks the active controller to change the metadata ISR (see
// ctrlquorum.Node.RequestISR). It fails at once with ctrlquorum's
// ErrNotActive or ErrBusy; otherwise the result arrives on the returned
// channel, which receives exactly one value.
func (v *Voter) RequestISR(req ctrlquorum.ISRRequest) (<-chan ctrlquorum.ISRResult, error) {
	type answer struct {
		ch  chan ctrlquorum.ISRResult
		err error
	}
	reply := make(chan answer, 1)
	err := v.call(func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		rd, err := v.node.RequestISR(v.now(), req)
		v.apply(rd) // results in rd belong to an earlier request
		var ch chan ctrlquorum.ISRResult
		if err == nil {
			ch = make(chan ctrlquorum.ISRResult, 1)
			v.pendingISR, v.pendingReq = ch, req
		}
		reply <- answer{ch, err}
	})
	if err != nil {
		return nil, err
	}
	select {
	case a := <-reply:
		return a.ch, a.err
	case <-v.done:
		select {
		case a := <-reply:
			return a.ch, a.err
		default:
			return nil, ErrClosed
		}
	}
}

// ObserveEpoch reports a controller epoch learnt elsewhere (the metadata
// log): a higher one than this voter's deposes it at once.
func (v *Voter) ObserveEpoch(epoch int32) error {
	return v.call(func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		v.apply(v.node.ObserveEpoch(v.now(), epoch))
	})
}

// call runs f on the event loop.
func (v *Voter) call(f func()) error {
	v.life.Lock()
	started := v.started
	v.life.Unlock()
	if !started {
		return ErrNotStarted
	}
	select {
	case v.calls <- f:
		return nil
	case <-v.done:
		return ErrClosed
	}
}

// halt stops the voter's role under mu: a controller steps down with
// reason, and a pending ISR request ends with err.
func (v *Voter) halt(reason string, err error) {
	if v.stopped {
		return
	}
	v.stopped = true
	if v.activeIn != 0 {
		v.notify(ctrlquorum.Transition{Epoch: v.activeIn, Register: v.node.Register(), Reason: reason})
		v.activeIn = 0
	}
	if ch := v.pendingISR; ch != nil {
		ch <- ctrlquorum.ISRResult{Request: v.pendingReq, Register: v.node.Register(), Err: err}
		v.pendingISR = nil
	}
}

func (v *Voter) notify(tr ctrlquorum.Transition) {
	if tr.Active {
		v.log.Info("active controller", "epoch", tr.Epoch)
	} else {
		v.log.Info("stepped down", "epoch", tr.Epoch, "reason", tr.Reason)
	}
	if v.notes != nil {
		v.notes.push(tr)
	}
}
