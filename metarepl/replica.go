package metarepl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/metalog"
)

// Config configures a Replica.
type Config struct {
	// Self is this node: a voter's exact identity, or for a broker
	// (Observer) its id with a zero incarnation.
	Self     metalog.Voter
	Observer bool
	// Log is this node's durable metadata log; the Replica does not close it.
	Log       *Log
	Transport Transport
	// Register is the controller quorum's register. A leader needs it for
	// ISR changes; a follower reads it to find a newer leader when it
	// cannot fetch (nil: it waits for Follow).
	Register Register
	// LagTimeMaxMs is how long an ISR voter may lag before the leader
	// proposes it out of the ISR (default 10000). Commits wait for every
	// ISR voter, so this bounds how long a dead voter stalls them.
	LagTimeMaxMs int64
	// FetchMaxBytes bounds the batches of one fetch answer (default 1 MiB;
	// at least one batch is sent).
	FetchMaxBytes int
	// FetchMaxWait is how long a leader holds a fetch with nothing new
	// (default 500ms); FetchTimeout bounds a fetch round trip (default
	// FetchMaxWait + 2s).
	FetchMaxWait time.Duration
	FetchTimeout time.Duration
	// Backoff is the pause after a failed fetch or register call (default
	// 50ms); RegisterPoll the least time between a follower's register
	// reads (default 500ms); RegisterTimeout bounds a register call
	// (default 5s).
	Backoff         time.Duration
	RegisterPoll    time.Duration
	RegisterTimeout time.Duration
	// TickInterval is the event loop's timer (default 20ms): it expires
	// long polls, runs the leader's ISR expiry every LagTimeMaxMs/2 and
	// retries after backoffs.
	TickInterval time.Duration
	// TrimMinBytes is how many bytes of batches must lie below the newest
	// committed checkpoint batch before the replica trims its log to it
	// (default 1 MiB): trimming rewrites the rest of the log, so it waits
	// until that frees a worthwhile amount. The leader and each follower
	// trim their own logs, each once the whole checkpoint batch is at or
	// below its persisted high watermark.
	TrimMinBytes int64
	// TrimDelay is how long a checkpoint batch must have been at or below
	// the persisted high watermark before the replica trims to it (default
	// 1s, about: the high watermark's history is kept at TickInterval's
	// grain; negative trims at once). Fetchers a little behind the high
	// watermark, as broker observers are under load, then receive the
	// checkpoint before the log starts at it, rather than finding the log
	// started past their offset and starting over there.
	TrimDelay time.Duration
	// Now is the monotonic clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger

	// groupMax is the most Appends one fsync carries (default 256; tests
	// set 1 to measure grouping).
	groupMax int
}

func (c *Config) defaults() error {
	switch {
	case c.Log == nil:
		return errors.New("metarepl: Config.Log is nil")
	case c.Transport == nil:
		return errors.New("metarepl: Config.Transport is nil")
	case c.Self.ID < 0:
		return fmt.Errorf("metarepl: bad node id %d", c.Self.ID)
	}
	setDefault(&c.LagTimeMaxMs, 10000)
	setDefault(&c.FetchMaxBytes, 1<<20)
	setDefault(&c.FetchMaxWait, 500*time.Millisecond)
	setDefault(&c.FetchTimeout, c.FetchMaxWait+2*time.Second)
	setDefault(&c.Backoff, 50*time.Millisecond)
	setDefault(&c.RegisterPoll, 500*time.Millisecond)
	setDefault(&c.RegisterTimeout, 5*time.Second)
	setDefault(&c.TickInterval, 20*time.Millisecond)
	setDefault(&c.groupMax, 256)
	setDefault(&c.TrimMinBytes, 1<<20)
	if c.TrimDelay == 0 {
		c.TrimDelay = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func setDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Errors of a Replica.
var (
	// ErrNotLeader: this node does not lead the metadata log. It wraps
	// NOT_CONTROLLER.
	ErrNotLeader = fmt.Errorf("metarepl: not the active controller: %w", kerr.NotController)
	// ErrClosed: the Replica was closed.
	ErrClosed = errors.New("metarepl: replica closed")
	// ErrStaleEpoch: BecomeLeader or Follow with an epoch older than one
	// this node already led or followed.
	ErrStaleEpoch = errors.New("metarepl: controller epoch older than the current one")
	// ErrEpochChanged: an AppendAt was refused, nothing written, because
	// this node does not lead the epoch it was for: it leads another,
	// follows, is idle or was deposed (then it also wraps ErrNotLeader).
	ErrEpochChanged = errors.New("metarepl: not the leader of the expected epoch")
	// ErrOffsetMismatch: an AppendAt was refused, nothing written, because
	// the log does not end at the offset it was for.
	ErrOffsetMismatch = errors.New("metarepl: the log does not end at the expected offset")
)

// Role is what a Replica does now.
type Role int

const (
	RoleIdle     Role = iota // neither leading nor following (start, or stepped down)
	RoleLeader               // leads the metadata log
	RoleFollower             // follows the leader as a voter or an observer
)

func (r Role) String() string {
	return [...]string{"idle", "leader", "follower"}[r]
}

// Status is a snapshot of a Replica, for DescribeQuorum and tests.
type Status struct {
	Role   Role
	Epoch  int32 // the epoch led or followed
	Leader metalog.Voter
	// LogStartOffset is where the log starts: 0, or a checkpoint batch it
	// was trimmed to, or where a reset made it start (see Log.StartOffset).
	LogStartOffset int64
	LogEndOffset   int64
	HighWatermark  int64
	// ISR and Voters are the leader's view (leader only).
	ISR    []metalog.Voter
	Voters []metalog.VoterStats
	// Err is the failure that stopped the replica (a broken log, a
	// truncation below the high watermark), nil while it runs.
	Err error
}

// Replica runs the metadata log on one node: one goroutine owns a
// metalog.Leader or metalog.Follower and the Log, and every input (calls,
// fetch answers, register answers, timer ticks) is a closure it runs in
// turn. See the package comment.
type Replica struct {
	cfg  Config
	log  *Log
	cmds chan func()
	// appends has its own channel so the loop can take every Append
	// waiting and write them with one fsync.
	appends chan appendReq
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	start   time.Time
	status  atomic.Pointer[Status]

	// Owned by the loop.
	gen      uint64 // bumped on every role change: older async results are dropped
	epoch    int32  // the newest epoch led or followed
	hw       int64  // this node's high watermark; persisted in settle
	leader   *metalog.Leader
	lead     leaderState
	follow   followerState
	parked   []*parkedFetch
	wake     bool // the leader's log end or high watermark moved: re-serve parked fetches
	readAt   time.Time
	reading  bool
	trimAt   time.Time // no trim before this, after a failed one
	hwSeen   []hwSample
	fatalErr error
}

// hwSample is the persisted high watermark as of a time, for TrimDelay.
type hwSample struct {
	at time.Time
	hw int64
}

// Start starts a Replica over cfg.Log. It is idle until BecomeLeader or
// Follow.
func Start(cfg Config) (*Replica, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Replica{cfg: cfg, log: cfg.Log, cmds: make(chan func()), appends: make(chan appendReq), ctx: ctx, cancel: cancel,
		done: make(chan struct{}), start: cfg.Now(), epoch: -1, hw: cfg.Log.HighWatermark()}
	r.publish()
	go r.run()
	return r, nil
}

func (r *Replica) nowMs() int64 { return r.cfg.Now().Sub(r.start).Milliseconds() }

// TimeOf converts a time in the loop's milliseconds (Status's
// VoterStats.LastCaughtUpMs) to the Config.Now time it was; -1 (never)
// gives the zero time.
func (r *Replica) TimeOf(ms int64) time.Time {
	if ms < 0 {
		return time.Time{}
	}
	return r.start.Add(time.Duration(ms) * time.Millisecond)
}

func (r *Replica) run() {
	defer close(r.done)
	t := time.NewTicker(r.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			r.stepDown(ErrClosed)
			r.publish()
			return
		case f := <-r.cmds:
			f()
		case req := <-r.appends:
			r.append(r.takeAppends(req))
		case <-t.C:
			r.tick()
		}
		r.settle()
	}
}

// post hands f to the loop; false once the Replica is closed.
func (r *Replica) post(f func()) bool {
	select {
	case r.cmds <- f:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// call runs f on the loop and waits for its error.
func (r *Replica) call(ctx context.Context, f func() error) error {
	ch := make(chan error, 1)
	if !r.post(func() { ch <- f() }) {
		return ErrClosed
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the loop: pending Appends fail with ErrClosed, parked
// fetches are answered, async calls are cancelled. The Log stays open.
func (r *Replica) Close() error {
	r.cancel()
	<-r.done
	return nil
}

// Status returns the latest snapshot, as of the end of the last event.
func (r *Replica) Status() Status { return *r.status.Load() }

// Committed returns committed batches from offset from (a batch start),
// whole, up to maxBytes (at least one): what the controller's followers
// and brokers apply. It reads the Log directly, up to the persisted high
// watermark.
func (r *Replica) Committed(from int64, maxBytes int) ([]Batch, error) {
	return r.log.Read(from, maxBytes, r.log.HighWatermark())
}

// tick runs the timers: the leader's ISR expiry, long-poll expiry, the
// follower's backoff.
func (r *Replica) tick() {
	if r.leader != nil {
		now := r.nowMs()
		if now-r.lead.lastTick >= r.cfg.LagTimeMaxMs/2 {
			r.lead.lastTick = now
			r.leader.Tick(now)
			r.drainLeader()
		}
	}
	r.expireParked()
}

// settle runs after every event: persist a new high watermark, re-serve
// parked fetches, trim the log, start the follower's next step, publish
// the status.
func (r *Replica) settle() {
	r.persistHW()
	if r.wake {
		r.wake = false
		r.wakeParked()
	}
	// After the parked fetches are answered: an observer waiting at the
	// old high watermark gets the newly committed checkpoint batch before
	// the log is trimmed to it, rather than finding the log started past
	// its offset and starting over.
	r.maybeTrim()
	r.pump()
	r.publish()
}

func (r *Replica) setHW(hw int64) {
	r.hw = max(r.hw, hw)
}

// persistHW writes a high watermark that moved to the log; a failed write
// stops the replica.
func (r *Replica) persistHW() {
	if r.fatalErr == nil && r.hw > r.log.HighWatermark() {
		if err := r.log.SetHighWatermark(r.hw); err != nil {
			r.fail(err)
		}
	}
}

// trimRetry is the pause after a trim that failed without breaking the
// log (the new file could not be written): the old log is intact.
const trimRetry = 5 * time.Second

// maybeTrim trims the log to its newest checkpoint batch once that is at
// or below the persisted high watermark with over TrimMinBytes below it.
// It runs on the loop, after the high watermark is persisted, so no
// Append, Truncate or read of the loop's comes between; Committed's reads
// from other goroutines take the Log's lock.
func (r *Replica) maybeTrim() {
	if r.fatalErr != nil || r.cfg.Now().Before(r.trimAt) {
		return
	}
	upTo := r.hwAgo(r.cfg.Now(), r.cfg.TrimDelay)
	if upTo <= r.log.StartOffset() {
		return
	}
	off, ok := r.log.trimPoint(r.cfg.TrimMinBytes, upTo)
	if !ok {
		return
	}
	from := r.log.StartOffset()
	if err := r.log.TrimTo(off); err != nil {
		if r.log.brokenErr() != nil {
			r.fail(err)
			return
		}
		r.cfg.Logger.Warn("metadata log: trim failed", "to", off, "err", err)
		r.trimAt = r.cfg.Now().Add(trimRetry)
		return
	}
	r.cfg.Logger.Info("metadata log trimmed", "from", from, "to", off)
}

// hwAgo records the persisted high watermark as of now and returns what
// it was delay ago (-1 if that is before the first record); a negative
// delay is now's. Records less than TickInterval apart are merged, so a
// value may be counted up to a TickInterval older than it is.
func (r *Replica) hwAgo(now time.Time, delay time.Duration) int64 {
	hw := r.log.HighWatermark()
	if delay < 0 {
		return hw
	}
	switch n := len(r.hwSeen); {
	case n > 0 && r.hwSeen[n-1].hw == hw:
	case n > 0 && now.Sub(r.hwSeen[n-1].at) < r.cfg.TickInterval:
		r.hwSeen[n-1].hw = hw
	default:
		r.hwSeen = append(r.hwSeen, hwSample{at: now, hw: hw})
	}
	cut := now.Add(-delay)
	i := sort.Search(len(r.hwSeen), func(i int) bool { return r.hwSeen[i].at.After(cut) }) - 1
	if i < 0 {
		return -1
	}
	r.hwSeen = r.hwSeen[i:] // older ones are never needed again
	return r.hwSeen[0].hw
}

// fail stops the replica for good: the log is broken or the log holds
// something the rules say cannot be; nothing is safe to do but stop.
func (r *Replica) fail(err error) {
	if r.fatalErr != nil {
		return
	}
	r.cfg.Logger.Error("metadata log replica stopped", "err", err)
	r.fatalErr = fmt.Errorf("metarepl: replica stopped: %w", err)
	r.stepDown(r.fatalErr)
}

func (r *Replica) publish() {
	st := &Status{Role: RoleIdle, Epoch: r.epoch, LogStartOffset: r.log.StartOffset(), LogEndOffset: r.log.End(),
		HighWatermark: r.hw, Err: r.fatalErr}
	switch {
	case r.leader != nil:
		st.Role, st.Leader = RoleLeader, r.cfg.Self
		st.ISR, st.Voters = r.leader.ISR(), r.leader.Voters()
	case r.follow.fol != nil:
		st.Role, st.Leader = RoleFollower, r.follow.leader
	}
	r.status.Store(st)
}

// stepDown ends the current role: Appends waiting for commit fail with
// why (their records may still be committed by a later leader: not known
// committed is all this node can say), parked fetches are answered with
// NOT_CONTROLLER, async answers of the old role are dropped.
func (r *Replica) stepDown(why error) {
	r.gen++
	if r.leader != nil {
		r.cfg.Logger.Info("metadata log leader steps down", "epoch", r.leader.Epoch(), "why", why)
	}
	r.leader = nil
	for _, w := range r.lead.waiters {
		w.ch <- appendResult{offset: w.first, err: fmt.Errorf("metarepl: records at %d not known committed: %w", w.first, why)}
	}
	r.lead = leaderState{}
	for _, p := range r.takeParked() {
		p.reply(FetchResponse{Err: metalog.ErrDeposed})
	}
	r.follow = followerState{}
}

// BecomeLeader makes this voter the leader of reg.Epoch, which it has just
// won by a takeover (reg is the register the takeover wrote: Active is
// Self). It caches (epoch, log end) durably before anything is appended,
// then builds the metalog.Leader. minISR is the register's MetaMinISR.
// The same epoch again is a no-op; an older one ErrStaleEpoch. stale
// names ISR voters known to have stopped fetching before the takeover
// (metalog.LeaderConfig.Stale): the leader's first ISR check runs at
// once, so they leave the ISR within a register round, not LagTimeMaxMs.
func (r *Replica) BecomeLeader(ctx context.Context, reg metalog.Config, minISR int, stale ...metalog.Voter) error {
	return r.call(ctx, func() error { return r.becomeLeader(reg, minISR, stale) })
}

func (r *Replica) becomeLeader(reg metalog.Config, minISR int, stale []metalog.Voter) error {
	switch {
	case r.fatalErr != nil:
		return r.fatalErr
	case r.cfg.Observer || reg.Active != r.cfg.Self:
		return fmt.Errorf("metarepl: %s cannot lead epoch %d of %s", r.cfg.Self, reg.Epoch, reg.Active)
	case r.leader != nil && r.leader.Epoch() == reg.Epoch:
		return nil
	case reg.Epoch <= r.epoch || reg.Epoch <= r.log.LatestEpoch():
		return fmt.Errorf("metarepl: lead epoch %d after epoch %d (log at %d): %w", reg.Epoch, r.epoch,
			r.log.LatestEpoch(), ErrStaleEpoch)
	}
	r.stepDown(fmt.Errorf("epoch %d taken over: %w", reg.Epoch, metalog.ErrDeposed))
	r.epoch = reg.Epoch
	if err := r.log.CacheEpoch(reg.Epoch); err != nil {
		r.fail(err)
		return err
	}
	l, err := metalog.NewLeader(metalog.LeaderConfig{Self: r.cfg.Self, Register: reg, MinISR: minISR,
		LagTimeMaxMs: r.cfg.LagTimeMaxMs, LogEndOffset: r.log.End(), HighWatermark: r.hw, Stale: stale}, r.nowMs())
	if err != nil {
		return err
	}
	r.cfg.Logger.Info("metadata log leader", "epoch", reg.Epoch, "from", r.log.End(), "isr", reg.ISR, "stale", stale)
	r.leader = l
	r.lead.lastTick = r.nowMs()
	if len(stale) > 0 {
		l.Tick(r.lead.lastTick)
	}
	r.drainLeader()
	return nil
}

// Follow makes this node follow leader in epoch: a voter replicates the
// log (and counts for commit), an observer receives committed batches.
// Leading or following an older epoch ends; the same leader and epoch is
// a no-op; an older epoch is ErrStaleEpoch.
func (r *Replica) Follow(ctx context.Context, leader metalog.Voter, epoch int32) error {
	return r.call(ctx, func() error { return r.startFollowing(leader, epoch) })
}

func (r *Replica) startFollowing(leader metalog.Voter, epoch int32) error {
	switch {
	case r.fatalErr != nil:
		return r.fatalErr
	case leader == r.cfg.Self || leader.IsZero():
		return fmt.Errorf("metarepl: %s cannot follow %s", r.cfg.Self, leader)
	case r.follow.fol != nil && epoch == r.epoch && leader == r.follow.leader:
		return nil
	case epoch <= r.epoch && !(epoch == r.epoch && r.leader == nil && r.follow.fol == nil):
		return fmt.Errorf("metarepl: follow epoch %d after epoch %d: %w", epoch, r.epoch, ErrStaleEpoch)
	}
	r.stepDown(fmt.Errorf("following %s in epoch %d: %w", leader, epoch, metalog.ErrDeposed))
	r.epoch = epoch
	local := r.log.Local()
	local.HighWatermark = r.hw
	if r.cfg.Observer {
		r.follow.fol = metalog.NewObserver(leader, epoch, local)
	} else {
		r.follow.fol = metalog.NewFollower(leader, epoch, local)
	}
	r.follow.leader = leader
	return nil
}

// pollRegister reads the register (at most every RegisterPoll) and acts
// on a newer epoch: a leader applies it (which may depose it), a follower
// or an idle node follows a newer active controller that is not itself.
// Taking over is not done here: that is the caller's (package voter).
func (r *Replica) pollRegister() {
	if r.cfg.Register == nil || r.reading || r.cfg.Now().Sub(r.readAt) < r.cfg.RegisterPoll {
		return
	}
	r.reading = true
	go func() {
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.RegisterTimeout)
		defer cancel()
		c, err := r.cfg.Register.Read(ctx)
		r.post(func() {
			r.reading, r.readAt = false, r.cfg.Now()
			if err == nil {
				r.onRegister(c)
			}
		})
	}()
}

func (r *Replica) onRegister(c metalog.Config) {
	if r.fatalErr != nil {
		return
	}
	if r.leader != nil {
		if err := r.leader.ApplyRegister(c, r.nowMs()); err != nil && !errors.Is(err, metalog.ErrDeposed) {
			r.cfg.Logger.Warn("metadata log: register not applied", "err", err)
		}
		r.drainLeader()
		return
	}
	if c.Epoch > r.epoch && !c.Active.IsZero() && c.Active != r.cfg.Self {
		if err := r.startFollowing(c.Active, c.Epoch); err != nil {
			r.cfg.Logger.Warn("metadata log: cannot follow", "err", err)
		}
	}
}
