package ctrlquorum

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
)

// Config configures one voter's Node.
type Config struct {
	// Self is this voter, with the incarnation of its disk. A voter whose
	// disk was wiped starts with a new incarnation and can never take over
	// as its old self.
	Self caspaxos.Voter
	// Bootstrap, when set, is written to the register if it was never
	// written (controller.quorum.voters at cluster creation); the Node's
	// first proposal is then caspaxos.Bootstrap instead of a read.
	Bootstrap *Bootstrap
	// Lease is how long a successful renewal keeps this voter the active
	// controller on its own clock, counted from when the renewal was
	// proposed. The active controller renews every Lease/3. Default 1s.
	Lease time.Duration
	// TakeoverTimeout is how long a voter must see the lease counter
	// unchanged on its own clock before it proposes a takeover. It must
	// exceed Lease; the ratio is the clock-rate difference between two
	// voters the lease tolerates before two voters may both believe they
	// are active (safety never depends on it: the epoch fences). Default
	// Lease*3/2.
	TakeoverTimeout time.Duration
	// ReadInterval is how often a voter that is not active reads the
	// register. Default Lease/4.
	ReadInterval time.Duration
	// MaxBackoff bounds the random delay added to each takeover, so that
	// voters that saw the same stall do not duel. Default Lease/4.
	MaxBackoff time.Duration
	// Rand returns a number in [0, n) (rand.Int63n of a seeded source, so
	// runs replay). Nil means no jitter.
	Rand func(n int64) int64
}

// Bootstrap is the register's first value: see caspaxos.Bootstrap.
type Bootstrap struct {
	ClusterID  string
	Voters     []caspaxos.Member
	MetaMinISR int32
}

func (c *Config) setDefaults() error {
	if c.Self.IsZero() {
		return errors.New("ctrlquorum: config has no Self voter")
	}
	if c.Lease <= 0 {
		c.Lease = time.Second
	}
	if c.TakeoverTimeout == 0 {
		c.TakeoverTimeout = c.Lease * 3 / 2
	}
	if c.TakeoverTimeout <= c.Lease {
		return fmt.Errorf("ctrlquorum: takeover timeout %v must exceed the lease %v", c.TakeoverTimeout, c.Lease)
	}
	if c.ReadInterval <= 0 {
		c.ReadInterval = c.Lease / 4
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = c.Lease / 4
	}
	if b := c.Bootstrap; b != nil {
		if _, err := caspaxos.BootstrapValue(b.ClusterID, b.Voters, b.MetaMinISR); err != nil {
			return fmt.Errorf("ctrlquorum: %w", err)
		}
	}
	return nil
}

// Kind says what a Proposal does.
type Kind uint8

// The proposals a Node makes.
const (
	KindBootstrap Kind = iota + 1
	KindRead
	KindTakeover
	KindRenew
	KindISR
)

func (k Kind) String() string {
	switch k {
	case KindBootstrap:
		return "bootstrap"
	case KindRead:
		return "read"
	case KindTakeover:
		return "takeover"
	case KindRenew:
		return "renew"
	case KindISR:
		return "isr"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Proposal is a change for the voter's caspaxos.Proposer: Propose(Change)
// (ProposeRead for KindRead), then hand the Result to Node.ProposalDone
// with ID.
type Proposal struct {
	ID     uint64
	Kind   Kind
	Change caspaxos.Change
	// Epoch is the controller epoch the proposal acts in: the active
	// epoch of a renewal or ISR change, the epoch seen stalled for a
	// takeover.
	Epoch int32
}

// Transition is a change of this voter's role.
type Transition struct {
	// Active: became the active controller in Epoch (true), or stopped
	// being it (false).
	Active bool
	Epoch  int32
	// Register is the value that decided it; on becoming active its ISR
	// is the metadata ISR to lead with.
	Register caspaxos.Register
	// Reason says why a controller stepped down.
	Reason string
	// Deposed, on becoming active, is the voter the register named active
	// when this takeover was proposed, if another: its lease stalled for
	// the whole takeover timeout, so the new leader of the metadata log
	// need not wait for it to fetch (metalog.LeaderConfig.Stale).
	Deposed caspaxos.Voter
}

// ISRRequest asks to change the metadata ISR from the configuration the
// metadata log saw (Epoch, ConfigVersion) to ISR: a shrink if every member
// is in the ISR the Node last saw, else an expansion. (Had the register
// moved on, the compare-and-set fails on ConfigVersion before either.)
type ISRRequest struct {
	Epoch         int32
	ConfigVersion int64
	ISR           []caspaxos.Voter
}

// ISRResult is the outcome of an ISRRequest.
type ISRResult struct {
	Request ISRRequest
	// Register is the register after the change, or its current value if
	// the change failed.
	Register caspaxos.Register
	// Err is nil when the change applied. A *caspaxos.EpochError means
	// this voter was deposed, a *caspaxos.ConfigVersionError that the
	// request was planned from a stale configuration; ErrNotActive and
	// ErrCancelled that it was dropped when the controller stepped down
	// (ErrCancelled: it may still apply; the next controller reads the
	// register).
	Err error
}

// Ready is what a Node call asks the caller to do, in this order: apply
// Transitions (a step-down first of all: stop acting as controller before
// anything else), Cancel the proposal in flight, start Propose, deliver
// ISRResults, and publish Register.
type Ready struct {
	Transitions []Transition
	// Cancel abandons the proposal in flight (caspaxos.Proposer.Cancel);
	// its Result must no longer be delivered.
	Cancel  bool
	Propose *Proposal
	// ISRResults are finished ISRRequests.
	ISRResults []ISRResult
	// Register is the newest register value, when it changed.
	Register *caspaxos.Register
	// Announce is a register value this active controller's renewal or
	// takeover chose, to send to the other voters' Observe (on the metadata
	// log's fetch responses, say). It is optional: it keeps their timers
	// fresh so they read the register less, which leaves the renewals
	// fewer rounds to collide with.
	Announce *caspaxos.Register
	// Err is fatal (the register belongs to another cluster): the Node
	// proposes nothing more.
	Err error
}

// IsEmpty reports whether rd asks for nothing.
func (rd Ready) IsEmpty() bool {
	return len(rd.Transitions) == 0 && !rd.Cancel && rd.Propose == nil && len(rd.ISRResults) == 0 &&
		rd.Register == nil && rd.Announce == nil && rd.Err == nil
}

// Errors of RequestISR and ISRResult.
var (
	// ErrNotActive: this voter is not the active controller in the
	// request's epoch (or its lease ran out).
	ErrNotActive = errors.New("ctrlquorum: not the active controller")
	// ErrBusy: an ISR change is already pending; one at a time.
	ErrBusy = errors.New("ctrlquorum: an ISR change is already pending")
	// ErrCancelled: the ISR change was in flight when the controller
	// stepped down; it may or may not apply.
	ErrCancelled = errors.New("ctrlquorum: ISR change abandoned in flight; it may still apply")
)

// Leader names the active controller of an epoch, as brokers and the
// other voters are told it.
type Leader struct {
	Epoch  int32
	Active caspaxos.Voter
}

// Supersedes reports whether l should replace cur where the controller is
// tracked (a broker's link, Metadata's ControllerID): a higher epoch
// always; the same epoch only to fill in an unknown active controller; a
// lower epoch never, as a deposed controller's word is stale.
func (l Leader) Supersedes(cur Leader) bool {
	return l.Epoch > cur.Epoch || (l.Epoch == cur.Epoch && cur.Active.IsZero() && !l.Active.IsZero())
}
