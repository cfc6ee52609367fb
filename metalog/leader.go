package metalog

import (
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/isr"
)

// Errors a register compare-and-set answer is classified into by the caller
// (see ISRResult), and the leader's own.
var (
	// ErrEpochChanged: the register's controller epoch (or active
	// controller) is no longer the leader's. The leader is deposed.
	ErrEpochChanged = errors.New("metalog: controller epoch changed")
	// ErrVersionChanged: same epoch, another configuration version. The
	// caller reads the register and hands it to ApplyRegister.
	ErrVersionChanged = errors.New("metalog: configuration version changed")
	// ErrRefused: the register refused the change as invalid and did not
	// apply it; the leader goes back to the committed ISR.
	ErrRefused = errors.New("metalog: ISR change refused")
	// ErrDeposed: this leader's epoch is over. It wraps NOT_CONTROLLER, the
	// answer to a fetch at a deposed leader.
	ErrDeposed = fmt.Errorf("metalog: leader deposed: %w", kerr.NotController)
)

// LeaderConfig is the metadata log at the moment this voter won a takeover.
type LeaderConfig struct {
	Self Voter
	// Register is the register the takeover wrote: Active is Self, Self is
	// in the ISR, Epoch is the new controller epoch.
	Register Config
	// MinISR is the metadata log's min ISR (the register's MetaMinISR):
	// the high watermark stands still while the ISR is smaller than
	// min(MinISR, number of replicas), and no shrink below it is proposed
	// (the register would refuse it).
	MinISR int
	// LagTimeMaxMs is how long an ISR voter may go without reaching the
	// leader's log end offset before it is proposed out.
	LagTimeMaxMs int64
	// LogEndOffset is the durable log end offset, which the caller cached
	// (durably) as the start of Register.Epoch before any append.
	LogEndOffset int64
	// HighWatermark is this voter's high watermark so far (as a follower).
	HighWatermark int64
	// Stale are ISR voters known to have stopped fetching before this
	// epoch: the active controller this takeover replaced, whose lease
	// stalled for the whole takeover timeout. The first Tick proposes
	// them out unless they caught up by then (isr.LeaderConfig.Stale),
	// instead of every commit waiting LagTimeMaxMs for a dead voter.
	Stale []Voter
}

// Leader is the active controller's side of the metadata log for one
// controller epoch: voters' positions, the high watermark, and ISR changes
// proposed to the register. It is isr.Leader with the metadata log's rules
// (see the package comment). Not safe for concurrent use.
type Leader struct {
	self    Voter
	epoch   int32
	version int64
	voters  []Voter
	slots   *slots
	inner   *isr.Leader
	deposed bool
	minISR  int
}

// NewLeader starts leading the metadata log in cfg.Register.Epoch at nowMs.
// Each ISR voter counts as caught up at nowMs, so the high watermark waits
// for each to fetch in this epoch or to be proposed out after LagTimeMaxMs.
func NewLeader(cfg LeaderConfig, nowMs int64) (*Leader, error) {
	reg := cfg.Register
	switch {
	case reg.Active != cfg.Self:
		return nil, fmt.Errorf("metalog: leader %s is not the active controller %s", cfg.Self, reg.Active)
	case !slices.Contains(reg.ISR, cfg.Self):
		return nil, fmt.Errorf("metalog: leader %s not in the ISR %v", cfg.Self, reg.ISR)
	}
	v32, err := version32(reg.Version)
	if err != nil {
		return nil, err
	}
	l := &Leader{self: cfg.Self, epoch: reg.Epoch, version: reg.Version, voters: slices.Clone(reg.Voters), slots: newSlots(),
		minISR: cfg.MinISR}
	self := l.slots.slot(cfg.Self)
	inner, err := isr.NewLeader(isr.LeaderConfig{
		ID:               self,
		LeaderEpoch:      reg.Epoch,
		PartitionEpoch:   v32,
		Replicas:         l.replicas(reg.ISR),
		ISR:              l.slots.of(reg.ISR),
		Brokers:          l.brokers(),
		MinISR:           cfg.MinISR,
		LagTimeMaxMs:     cfg.LagTimeMaxMs,
		EpochStartOffset: cfg.LogEndOffset,
		HighWatermark:    cfg.HighWatermark,
		LogEndOffset:     cfg.LogEndOffset,
		Stale:            l.slots.of(slices.DeleteFunc(slices.Clone(cfg.Stale), func(v Voter) bool { return !slices.Contains(reg.ISR, v) })),
	}, nowMs)
	if err != nil {
		return nil, fmt.Errorf("metalog: epoch %d: %w", reg.Epoch, err)
	}
	l.inner = inner
	return l, nil
}

// replicas is every voter the leader tracks: itself, the voters and the ISR
// (an ISR member that is no longer a voter still holds the high watermark
// until the register drops it).
func (l *Leader) replicas(isrVoters []Voter) []int32 {
	return l.slots.of(union(union([]Voter{l.self}, l.voters), isrVoters))
}

// brokers says which replicas may join the ISR: the voters. isr's broker
// epoch is unused (0): identity is the incarnation, which the slot carries.
func (l *Leader) brokers() []isr.Broker {
	bs := make([]isr.Broker, len(l.voters))
	for i, v := range l.voters {
		bs[i] = isr.Broker{ID: l.slots.slot(v)}
	}
	return bs
}

// Epoch is the controller epoch this leader leads; Version the register's
// configuration version it knows; HighWatermark the committed end of the
// log and Committed whether offset o is below it; LogEndOffset its durable
// end; Deposed whether it learned its epoch is over; ISR the ISR the
// register committed, and MaximalISR that plus an expansion in flight (the
// voters commit waits for).
func (l *Leader) Epoch() int32           { return l.epoch }
func (l *Leader) Version() int64         { return l.version }
func (l *Leader) HighWatermark() int64   { return l.inner.HighWatermark() }
func (l *Leader) LogEndOffset() int64    { return l.inner.LogEndOffset() }
func (l *Leader) Deposed() bool          { return l.deposed }
func (l *Leader) ISR() []Voter           { return l.slots.votersOf(l.inner.ISR()) }
func (l *Leader) MaximalISR() []Voter    { return l.slots.votersOf(l.inner.MaximalISR()) }
func (l *Leader) depose()                { l.deposed = true }
func (l *Leader) selfSlot() int32        { return l.slots.slot(l.self) }
func (l *Leader) Committed(o int64) bool { return o < l.inner.HighWatermark() }

// Append records that the leader's log is now durable up to leo (after the
// fsync of an append): only durable records count for the high watermark,
// and only they may be served to fetches.
func (l *Leader) Append(leo, nowMs int64) {
	if !l.deposed {
		l.inner.Append(leo, nowMs)
	}
}

// Tick runs the ISR expiry (every LagTimeMaxMs/2): ISR voters that have not
// caught up within LagTimeMaxMs are proposed out of the ISR; they leave only
// once the register's compare-and-set succeeds.
func (l *Leader) Tick(nowMs int64) {
	if !l.deposed {
		l.inner.Tick(nowMs)
	}
}

// fence is the epoch check of every fetch: a deposed leader answers
// NOT_CONTROLLER; an older epoch is FENCED_LEADER_EPOCH; a newer one proves
// a takeover happened (only the register hands out epochs), so the leader is
// deposed and answers UNKNOWN_LEADER_EPOCH.
func (l *Leader) fence(epoch int32) error {
	if l.deposed {
		return ErrDeposed
	}
	if epoch > l.epoch {
		l.depose()
	}
	return l.inner.CheckLeaderEpoch(epoch)
}

// VoterFetch is one fetch of the metadata log by a voter, with the leader
// log's durable bounds sampled before the read.
type VoterFetch struct {
	Voter        Voter
	CurrentEpoch int32 // the controller epoch the voter follows
	// FetchOffset is the voter's durable log end offset: it has fsynced
	// everything before it, so the leader may count it for commit.
	FetchOffset      int64
	LastFetchedEpoch int32
	LogStartOffset   int64 // the voter's
	// LeaderLogStartOffset and LeaderLogEndOffset are the leader's log
	// bounds before the read; LeaderLogEndOffset is its durable end.
	LeaderLogStartOffset int64
	LeaderLogEndOffset   int64
}

// Fetch handles a voter's fetch, as isr.Leader.Fetch does a follower's: the
// epoch fence, the replica check (an unknown voter incarnation gets
// UNKNOWN_LEADER_EPOCH, so it retries), DivergingEpoch, the offset range.
// A non-nil EpochEndOffset is the DivergingEpoch to answer with no records.
// Otherwise the voter's durable position is recorded (which may commit
// records and propose it into the ISR) and the caller answers the durable
// records from FetchOffset up to LeaderLogEndOffset with the high watermark.
func (l *Leader) Fetch(f VoterFetch, endOffsetFor isr.EpochLookup, nowMs int64) (*isr.EpochEndOffset, error) {
	if err := l.fence(f.CurrentEpoch); err != nil {
		return nil, err
	}
	id, ok := l.slots.lookup(f.Voter)
	if !ok || id == l.selfSlot() {
		return nil, fmt.Errorf("metalog: %s is not a voter of epoch %d: %w", f.Voter, l.epoch, kerr.UnknownLeaderEpoch)
	}
	return l.inner.Fetch(isr.FollowerFetch{
		ReplicaID:            id,
		CurrentLeaderEpoch:   f.CurrentEpoch,
		FetchOffset:          f.FetchOffset,
		LastFetchedEpoch:     f.LastFetchedEpoch,
		LogStartOffset:       f.LogStartOffset,
		LeaderLogStartOffset: f.LeaderLogStartOffset,
		LeaderLogEndOffset:   f.LeaderLogEndOffset,
	}, endOffsetFor, nowMs)
}

// ObserverFetch is one fetch of the metadata log by a broker (an observer).
type ObserverFetch struct {
	CurrentEpoch         int32
	FetchOffset          int64
	LastFetchedEpoch     int32
	LeaderLogStartOffset int64
	LeaderLogEndOffset   int64
}

// FetchObserver handles a broker's fetch: the same epoch fence, divergence
// and range checks as Fetch, but the broker's position is not recorded, so
// it never counts for commit nor joins the ISR. The caller answers the
// records from FetchOffset up to readTo, the high watermark: a broker only
// ever holds committed records, so a DivergingEpoch here means committed
// data was lost.
func (l *Leader) FetchObserver(f ObserverFetch, endOffsetFor isr.EpochLookup) (readTo int64, diverging *isr.EpochEndOffset, err error) {
	if err := l.fence(f.CurrentEpoch); err != nil {
		return 0, nil, err
	}
	if f.LastFetchedEpoch != isr.UndefinedEpoch {
		epoch, end := endOffsetFor(f.LastFetchedEpoch)
		if epoch == isr.UndefinedEpoch || end == isr.UndefinedEpochOffset {
			return 0, nil, fmt.Errorf("no end offset for last fetched epoch %d: %w", f.LastFetchedEpoch, kerr.OffsetOutOfRange)
		}
		if epoch < f.LastFetchedEpoch || end < f.FetchOffset {
			return 0, &isr.EpochEndOffset{Epoch: epoch, EndOffset: end}, nil
		}
	}
	if f.FetchOffset < f.LeaderLogStartOffset || f.FetchOffset > f.LeaderLogEndOffset {
		return 0, nil, fmt.Errorf("fetch offset %d outside [%d, %d]: %w", f.FetchOffset,
			f.LeaderLogStartOffset, f.LeaderLogEndOffset, kerr.OffsetOutOfRange)
	}
	return max(f.FetchOffset, l.inner.HighWatermark()), nil, nil
}

// ISRChange is a compare-and-set the leader wants run on the register: if
// its controller epoch is still Epoch, its active controller the leader and
// its configuration version still Version, set the metadata ISR to ISR and
// the version to Version+1. At most one is in flight; ID names it.
type ISRChange struct {
	ID      uint64
	Epoch   int32
	Version int64
	ISR     []Voter
	// Expand says the change adds one voter (caspaxos.ExpandISR); else it
	// removes some (caspaxos.ShrinkISR).
	Expand bool
}

// ISRResult is the register's answer to an ISRChange. Err nil means it was
// applied and Register is the register after it. Otherwise the caller
// classifies the failure: ErrEpochChanged, ErrVersionChanged, ErrRefused,
// or anything else (a timeout, an indeterminate round), which is retried.
// A retry must be idempotent: if the register already holds exactly this
// change (Version+1 with this ISR in Epoch), it is a success.
type ISRResult struct {
	Err      error
	Register Config
}

// Outcome says what the leader did with an ISRResult.
type Outcome int

const (
	OutcomeIgnored      Outcome = iota // not the change in flight, or stale
	OutcomeCommitted                   // the ISR and version were adopted
	OutcomeDeposed                     // the epoch is over: step down
	OutcomeReadRegister                // read the register and ApplyRegister it
	OutcomeReset                       // refused: back to the committed ISR
	OutcomeRetry                       // Ready hands the same change out again
)

// HandleISRResult applies the register's answer to change id. A shrink
// takes effect here, never before; an expansion counted toward the high
// watermark from the moment it was proposed and stops counting if refused.
func (l *Leader) HandleISRResult(id uint64, res ISRResult, nowMs int64) (Outcome, error) {
	if l.deposed {
		return OutcomeDeposed, nil
	}
	var ar isr.AlterResult
	switch {
	case res.Err == nil && (res.Register.Epoch != l.epoch || res.Register.Active != l.self):
		l.depose()
		return OutcomeDeposed, nil
	case res.Err == nil:
		v32, err := version32(res.Register.Version)
		if err != nil {
			return OutcomeIgnored, err
		}
		ar = isr.AlterResult{LeaderEpoch: l.epoch, PartitionEpoch: v32, ISR: l.slots.of(res.Register.ISR)}
	case errors.Is(res.Err, ErrEpochChanged):
		// Every change this leader sends expects its own epoch, which the
		// register held when the leader was made: any such answer, even a
		// late one, proves a later takeover.
		l.depose()
		return OutcomeDeposed, nil
	case errors.Is(res.Err, ErrVersionChanged):
		ar.Err = fmt.Errorf("%w: %w", res.Err, kerr.InvalidUpdateVersion)
	case errors.Is(res.Err, ErrRefused):
		ar.Err = fmt.Errorf("%w: %w", res.Err, kerr.OperationNotAttempted)
	default:
		ar.Err = res.Err
	}
	switch l.inner.HandleAlterPartition(id, ar, nowMs) {
	case isr.AlterCommitted:
		l.version = res.Register.Version
		return OutcomeCommitted, nil
	case isr.AlterPending:
		return OutcomeReadRegister, nil
	case isr.AlterReset:
		return OutcomeReset, nil
	case isr.AlterRetry:
		return OutcomeRetry, nil
	}
	return OutcomeIgnored, nil
}

// ApplyRegister adopts a register read in the leader's epoch with a newer
// configuration version (an ISR or voter change the leader did not see
// answered): the ISR, voters and version are replaced and any change in
// flight is dropped. An older epoch or version is ignored. A newer epoch or
// another active controller deposes the leader (ErrDeposed).
func (l *Leader) ApplyRegister(c Config, nowMs int64) error {
	switch {
	case l.deposed:
		return ErrDeposed
	case c.Epoch < l.epoch:
		return nil
	case c.Epoch > l.epoch || c.Active != l.self:
		l.depose()
		return fmt.Errorf("register epoch %d, active %s: %w", c.Epoch, c.Active, ErrDeposed)
	case c.Version <= l.version:
		return nil
	case !slices.Contains(c.ISR, l.self):
		return fmt.Errorf("metalog: register ISR %v leaves out the active controller %s", c.ISR, l.self)
	}
	v32, err := version32(c.Version)
	if err != nil {
		return err
	}
	l.voters = slices.Clone(c.Voters)
	l.inner.SetBrokers(l.brokers(), nowMs)
	if _, err := l.inner.ApplyPartition(isr.PartitionState{
		Leader: l.selfSlot(), LeaderEpoch: l.epoch, PartitionEpoch: v32,
		Replicas: l.replicas(c.ISR), ISR: l.slots.of(c.ISR),
	}, nowMs); err != nil {
		return fmt.Errorf("metalog: apply register version %d: %w", c.Version, err)
	}
	l.version = c.Version
	return nil
}

// Ready is what the caller acts on after any call: wake what waits for
// commit when the high watermark advanced (the controller's pending
// requests, brokers' long polls), run Proposal on the register when set,
// and step down when Deposed.
type Ready struct {
	HighWatermark         int64
	HighWatermarkAdvanced bool
	Proposal              *ISRChange
	Deposed               bool
}

// Ready drains the leader's outputs; each advance and each proposal (or
// retry) is reported once.
func (l *Leader) Ready() Ready {
	rd := l.inner.Ready()
	out := Ready{HighWatermark: rd.HighWatermark, HighWatermarkAdvanced: rd.HighWatermarkAdvanced, Deposed: l.deposed}
	if p := rd.Proposal; p != nil && len(p.ISR) < l.minISR && len(p.ISR) < len(l.inner.ISR()) {
		// isr proposes shrinks below min ISR, as Kafka does; the register
		// refuses them, so refuse here and spare the round. The next Tick
		// proposes again, and the laggard stays (and holds the HW) until
		// it catches up or returns.
		l.inner.HandleAlterPartition(p.ID, isr.AlterResult{Err: kerr.OperationNotAttempted}, 0)
		rd.Proposal = nil
	}
	if rd.Proposal != nil && !l.deposed {
		c := l.change(*rd.Proposal)
		out.Proposal = &c
	}
	return out
}

// Pending returns the ISR change in flight, to resend after a lost answer.
func (l *Leader) Pending() (ISRChange, bool) {
	p, ok := l.inner.Pending()
	if !ok {
		return ISRChange{}, false
	}
	return l.change(p), true
}

func (l *Leader) change(p isr.Proposal) ISRChange {
	ids := make([]int32, len(p.ISR))
	for i, b := range p.ISR {
		ids[i] = b.ID
	}
	// isr proposes either one replica more than the committed ISR or
	// fewer, and the committed ISR does not change while one is pending.
	return ISRChange{ID: p.ID, Epoch: p.LeaderEpoch, Version: int64(p.PartitionEpoch), ISR: l.slots.votersOf(ids),
		Expand: len(ids) > len(l.inner.ISR())}
}

// VoterStats is the leader's view of one voter, for DescribeQuorum.
type VoterStats struct {
	Voter          Voter
	LogEndOffset   int64 // -1 until it fetched in this epoch
	Lag            int64 // leader's LEO minus its LEO; -1 when unknown
	LastCaughtUpMs int64 // -1 never
	InISR          bool
}

// Voters reports every voter the leader tracks, itself first.
func (l *Leader) Voters() []VoterStats {
	out := []VoterStats{{Voter: l.self, LogEndOffset: l.LogEndOffset(), InISR: true}}
	for _, f := range l.inner.Stats().Followers {
		out = append(out, VoterStats{Voter: l.slots.voter(f.ID), LogEndOffset: f.LogEndOffset,
			Lag: f.Lag, LastCaughtUpMs: f.LastCaughtUpMs, InISR: f.InISR})
	}
	return out
}
