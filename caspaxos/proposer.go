package caspaxos

import (
	"bytes"
	"errors"
	"fmt"
)

// Change computes the register's next value from its current one (nil for
// an empty register). Returning an error aborts the change: the proposer
// then writes the current value back unchanged (so what the caller saw is
// chosen, and a later read cannot see an older value) and reports the error.
//
// A Change may run more than once for one Propose: after a retry it runs
// again on what the new round read, which may already include the earlier
// attempt's write. Changes must therefore be idempotent (the Register
// helpers are: a takeover or renewal already applied reports success).
// A Change must not keep or modify its argument.
type Change func(cur []byte) ([]byte, error)

// Read is the identity change: a full round that returns the current value
// and makes it chosen, as linearizable reads require.
func Read(cur []byte) ([]byte, error) { return cur, nil }

// ErrBusy is returned by Propose while a change is in flight.
var ErrBusy = errors.New("caspaxos: proposer busy")

// ErrIndeterminate is a Result's error when an attempt of the change sent
// its accepts, failed to finish, and the retry found another proposer's
// value on top: the change may have been chosen and then overwritten, or
// never. Result.Value is still the register's current value (written back,
// so it is chosen); the caller re-reads it to decide, as with a client
// timeout. Re-applying the change instead would apply it twice.
var ErrIndeterminate = errors.New("caspaxos: change may or may not have taken effect")

// Options configure a Proposer.
type Options struct {
	// ID is the Ballot.Proposer of every ballot this proposer makes; it
	// must be unique among live and past proposer instances unless
	// MinCounter is at least the highest counter this ID ever used.
	ID uint64
	// MinCounter starts the ballot counter (for a proposer that persisted
	// a floor).
	MinCounter uint64
	Config     Config
	// RetryTicks is how many Ticks a phase (prepare or accept) may take
	// before the attempt is retried with a higher ballot (default 10); it
	// must exceed a round trip, or attempts never finish. Backoff after a refusal is a random
	// 1..RetryTicks ticks, from Rand.
	RetryTicks int
	// Rand returns a number in [0, n); the caller seeds it, so runs replay.
	// Nil means no jitter, which lets dueling proposers livelock.
	Rand func(n int) int
	// OneRoundTrip piggybacks the next prepare on each accept, so that the
	// next change from this proposer skips the prepare phase while nobody
	// else proposes (the CASPaxos paper's 1RTT optimization; meant for the
	// active controller).
	OneRoundTrip bool
}

// Result is the outcome of one Propose.
type Result struct {
	// Value is the register's value after the change (the current value if
	// the Change failed).
	Value []byte
	// Err is the Change's error, if it refused.
	Err error
	// Ballot is the ballot at which Value was chosen.
	Ballot Ballot
}

// Output is what a Proposer call asks the caller to do: send Messages, and
// if Done is set, report it to whoever called Propose.
type Output struct {
	Messages []Message
	Done     *Result
}

type phase uint8

const (
	phaseIdle phase = iota
	phasePrepare
	phaseAccept
	phaseBackoff
)

// Proposer runs CASPaxos rounds for one caller, one change at a time. It is
// a pure state machine: Propose, Step (for each answer) and Tick (time, in
// the caller's units) return messages to send and, eventually, the Result.
type Proposer struct {
	o       Options
	counter uint64 // highest ballot counter seen or used

	phase    phase
	change   Change
	ballot   Ballot
	next     Ballot // the piggybacked prepare of this attempt's accepts
	elapsed  int
	wait     int
	promised map[Voter]Message
	accepted map[Voter]bool
	nextOK   map[Voter]bool
	rejected map[Voter]bool
	value    []byte
	err      error
	fastTry  bool // this attempt skipped the prepare phase
	reading  bool // the change is Read: retries may run it again
	// tried holds what each attempt of this change sent as accepts, so a
	// retry that finds its own earlier value on top finishes that attempt
	// instead of applying the change a second time.
	tried map[Ballot]tried

	// fast is a ballot a prepare quorum has promised, with the value they
	// hold at their highest accepted ballot: the next change can go
	// straight to the accept phase with it.
	fast *prepared
	// tail is the finished attempt whose late Accepted answers may still
	// complete a fast promise quorum.
	tail *prepared
	// lastBase is the highest accepted ballot read by the last prepare
	// quorum (for the simulator's "chosen is never lost" check).
	lastBase Ballot
}

type tried struct {
	value []byte
	err   error
}

type prepared struct {
	ballot Ballot
	base   Ballot // the ballot value was accepted at
	value  []byte
	oks    map[Voter]bool
}

// NewProposer returns an idle proposer.
func NewProposer(o Options) (*Proposer, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, fmt.Errorf("caspaxos: proposer %d: %w", o.ID, err)
	}
	if o.ID == 0 {
		return nil, errors.New("caspaxos: proposer id 0 is reserved")
	}
	if o.RetryTicks <= 0 {
		o.RetryTicks = 10
	}
	return &Proposer{o: o, counter: o.MinCounter}, nil
}

// Busy reports whether a change is in flight.
func (p *Proposer) Busy() bool { return p.phase != phaseIdle }

// Counter returns the highest ballot counter used or seen: a caller that
// wants to restart under the same ID persists it and passes it back as
// MinCounter.
func (p *Proposer) Counter() uint64 { return p.counter }

// Propose starts ch. With a fast ballot in hand (OneRoundTrip, and nobody
// else proposed since) it goes straight to the accept phase.
func (p *Proposer) Propose(ch Change) (Output, error) { return p.start(ch, false) }

// ProposeRead starts a linearizable read: Propose(Read), except that a
// retry never reports ErrIndeterminate, since reading twice changes
// nothing.
func (p *Proposer) ProposeRead() (Output, error) { return p.start(Read, true) }

func (p *Proposer) start(ch Change, reading bool) (Output, error) {
	if p.Busy() {
		return Output{}, ErrBusy
	}
	p.change, p.reading = ch, reading
	p.tried = map[Ballot]tried{}
	return p.attempt(), nil
}

// Cancel abandons the change in flight. Its effect is unknown: it may still
// be chosen, so the caller must treat it as maybe applied.
func (p *Proposer) Cancel() {
	p.phase = phaseIdle
	p.change, p.tried = nil, nil
	p.fast = nil
}

// SetConfig switches to c (a membership change step). An attempt in flight
// starts again under c with a new ballot, and a fast ballot promised under
// the old configuration is dropped.
func (p *Proposer) SetConfig(c Config) (Output, error) {
	if err := c.Validate(); err != nil {
		return Output{}, fmt.Errorf("caspaxos: proposer %d: %w", p.o.ID, err)
	}
	p.o.Config = c
	p.fast, p.tail = nil, nil
	if p.phase == phasePrepare || p.phase == phaseAccept {
		return p.attempt(), nil
	}
	return Output{}, nil
}

// Tick advances time by one unit: an attempt that took RetryTicks is retried
// with a higher ballot, and a backoff that ran out starts the next attempt.
func (p *Proposer) Tick() Output {
	if p.phase == phaseIdle {
		return Output{}
	}
	p.elapsed++
	switch p.phase {
	case phaseBackoff:
		if p.elapsed >= p.wait {
			return p.attempt()
		}
	default:
		if p.elapsed >= p.o.RetryTicks {
			p.fast = nil
			return p.attempt()
		}
	}
	return Output{}
}

func (p *Proposer) newBallot() Ballot {
	p.counter++
	return Ballot{Counter: p.counter, Proposer: p.o.ID}
}

// attempt starts a new attempt of the current change: an accept with the
// fast ballot if there is one, else a prepare with a fresh ballot.
func (p *Proposer) attempt() Output {
	p.elapsed = 0
	p.promised = map[Voter]Message{}
	p.accepted = map[Voter]bool{}
	p.nextOK = map[Voter]bool{}
	p.rejected = map[Voter]bool{}
	p.tail = nil
	if f := p.fast; f != nil {
		p.fast = nil
		p.fastTry = true
		p.ballot = f.ballot
		p.lastBase = f.base
		return p.sendAccept(f.base, f.value)
	}
	p.fastTry = false
	p.phase = phasePrepare
	p.ballot = p.newBallot()
	out := Output{Messages: make([]Message, 0, len(p.o.Config.Prepare.Voters))}
	for _, v := range p.o.Config.Prepare.Voters {
		out.Messages = append(out.Messages, Message{Type: MsgPrepare, Proposer: p.o.ID, Acceptor: v, Ballot: p.ballot})
	}
	return out
}

// sendAccept sends the accepts of the value to follow cur (accepted at
// base): the change applied to it, or, on a retry, the earlier attempt's
// value if cur is that value, or cur itself if an earlier attempt may have
// been overwritten.
func (p *Proposer) sendAccept(base Ballot, cur []byte) Output {
	var next []byte
	var err error
	if t, ok := p.tried[base]; ok {
		next, err = t.value, t.err
	} else if len(p.tried) > 0 && !p.reading {
		next, err = cur, ErrIndeterminate
	} else if next, err = p.change(cur); err != nil {
		next = cur
	}
	p.value, p.err = bytes.Clone(next), err
	p.tried[p.ballot] = tried{value: p.value, err: err}
	p.phase = phaseAccept
	p.elapsed = 0 // each phase gets RetryTicks
	p.next = Ballot{}
	if p.o.OneRoundTrip {
		p.next = p.newBallot()
	}
	out := Output{Messages: make([]Message, 0, len(p.o.Config.Accept.Voters))}
	for _, v := range p.o.Config.Accept.Voters {
		out.Messages = append(out.Messages, Message{Type: MsgAccept, Proposer: p.o.ID, Acceptor: v,
			Ballot: p.ballot, Next: p.next, Value: p.value})
	}
	return out
}

// Step handles an acceptor's answer. Answers to older attempts only feed the
// ballot counter (and late fast promises); duplicates count once.
func (p *Proposer) Step(m Message) Output {
	if m.Proposer != p.o.ID {
		return Output{}
	}
	switch m.Type {
	case MsgReject:
		return p.stepReject(m)
	case MsgPromise:
		if p.phase != phasePrepare || m.Ballot != p.ballot || !p.o.Config.Prepare.has(m.Acceptor) {
			return Output{}
		}
		p.promised[m.Acceptor] = m
		if len(p.promised) < p.o.Config.Prepare.Need {
			return Output{}
		}
		var best Message
		for _, pm := range p.promised {
			if !pm.Accepted.Less(best.Accepted) {
				best = pm
			}
		}
		p.lastBase = best.Accepted
		return p.sendAccept(best.Accepted, best.Value)
	case MsgAccepted:
		if t := p.tail; t != nil && m.Ballot.Less(t.ballot) && !m.Next.IsZero() && m.Next == t.ballot {
			p.countFast(t, m.Acceptor)
			return Output{}
		}
		if p.phase != phaseAccept || m.Ballot != p.ballot || !p.o.Config.Accept.has(m.Acceptor) {
			if p.phase == phaseAccept && m.Ballot == p.ballot && !m.Next.IsZero() && m.Next == p.next {
				p.nextOK[m.Acceptor] = true // a prepare voter outside the accept set
			}
			return Output{}
		}
		p.accepted[m.Acceptor] = true
		if !m.Next.IsZero() && m.Next == p.next {
			p.nextOK[m.Acceptor] = true
		}
		if len(p.accepted) < p.o.Config.Accept.Need {
			return Output{}
		}
		return p.finish()
	}
	return Output{}
}

func (p *Proposer) finish() Output {
	res := &Result{Value: p.value, Err: p.err, Ballot: p.ballot}
	p.phase = phaseIdle // before countFast, which arms only an idle proposer
	if !p.next.IsZero() {
		t := &prepared{ballot: p.next, base: p.ballot, value: p.value, oks: map[Voter]bool{}}
		p.tail = t
		for v := range p.nextOK {
			p.countFast(t, v)
		}
	}
	p.change, p.tried = nil, nil
	p.value, p.err = nil, nil
	return Output{Done: res}
}

// countFast records that v promised t's ballot; a prepare quorum of such
// promises makes t the fast ballot for the next change.
func (p *Proposer) countFast(t *prepared, v Voter) {
	if !p.o.Config.Prepare.has(v) {
		return
	}
	t.oks[v] = true
	if len(t.oks) >= p.o.Config.Prepare.Need && p.phase == phaseIdle {
		p.fast, p.tail = t, nil
	}
}

func (p *Proposer) stepReject(m Message) Output {
	if m.Reason == RejectBallot && m.Promised.Counter > p.counter {
		p.counter = m.Promised.Counter // fast-forward past what others use
	}
	if f := p.fast; f != nil && f.ballot.Less(m.Promised) {
		p.fast = nil // someone else proposed: the fast ballot is spent
	}
	if m.Ballot != p.ballot || (p.phase != phasePrepare && p.phase != phaseAccept) {
		return Output{}
	}
	q := p.o.Config.Prepare
	if p.phase == phaseAccept {
		q = p.o.Config.Accept
	}
	if !q.has(m.Acceptor) {
		return Output{}
	}
	p.rejected[m.Acceptor] = true
	if p.fastTry {
		// The fast ballot lost to another proposer: go back to a full
		// round at once (no duel yet, so no backoff).
		return p.attempt()
	}
	if len(q.Voters)-len(p.rejected) >= q.Need {
		return Output{} // a quorum may still answer yes
	}
	p.phase = phaseBackoff
	p.elapsed = 0
	p.wait = 1
	if p.o.Rand != nil {
		p.wait += p.o.Rand(p.o.RetryTicks)
	}
	return Output{}
}
