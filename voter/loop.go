package voter

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/ctrlquorum"
)

// run is the event loop: one goroutine owns the acceptor and drives the
// Node and the proposer, one event at a time (a message, a tick, a call).
// After each event it runs what the voter sent itself, then sends what
// the event produced, outside mu.
func (v *Voter) run() {
	defer close(v.done)
	t := time.NewTicker(v.cfg.TickInterval)
	defer t.Stop()
	v.pass()
	v.tick() // the first proposal goes out now, not a tick later
	v.settle()
	for !v.failed() {
		select {
		case <-v.stop:
			return
		case in := <-v.inbox:
			v.pass()
			v.receive(in)
		case <-t.C:
			v.pass()
			v.tick()
		case f := <-v.calls:
			v.pass()
			f()
		}
		v.settle()
	}
}

// pass waits while a test holds the gate (a paused process).
func (v *Voter) pass() {
	v.gate.Lock()
	v.gate.Unlock() //nolint:staticcheck // an empty critical section is the point: wait for the gate
}

func (v *Voter) failed() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.stopped
}

// settle delivers this voter's messages to itself until there are none
// (its acceptor's answers feed its proposer, which may send more), then
// sends the rest.
func (v *Voter) settle() {
	for len(v.local) > 0 && !v.failed() {
		m := v.local[0]
		v.local = v.local[1:]
		v.paxos(v.cfg.NodeID, m, v.stamp()) // its own step, never older
	}
	v.local = v.local[:0]
	out := v.out
	v.out = nil
	if v.failed() {
		return // a failed persist: nothing that may depend on it leaves
	}
	for _, o := range out {
		v.cfg.Transport.Send(o.to, o.payload)
	}
}

func (v *Voter) receive(in inbound) {
	switch in.env.kind {
	case kindPaxos:
		v.paxos(in.from, in.env.msg, in.env.at)
	case kindAnnounce:
		v.mu.Lock()
		v.apply(v.node.Observe(v.now(), in.env.reg))
		v.mu.Unlock()
	case kindStep:
		v.adopt(in.from, in.env.step)
	case kindStepAck:
		v.noteAck(in.from, in.env.step)
	}
}

func (v *Voter) tick() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.proposerOut(v.prop.Tick())
	v.adminOut(v.admin.Tick())
	v.apply(v.node.Tick(v.now()))
}

// paxos handles one caspaxos message from node from, whose proposers were
// on step at when it was sent: a Prepare or an Accept goes to the
// acceptor, whose state is persisted before any answer is queued; an
// answer goes to the proposer.
//
// A Prepare or Accept from a proposer on an older membership step than
// this voter's record is refused: no answer, and the record is pushed to
// the sender as a step (kindStep), which moves it forward (a removed
// voter turns passive). This is what lets a change go on without a
// leaving voter that does not answer (see awaitStep): whatever step that
// voter's proposer is on, its prepare quorums all hold a voter that
// refuses it.
func (v *Voter) paxos(from int32, m caspaxos.Message, at *stamp) {
	switch m.Type {
	case caspaxos.MsgPrepare, caspaxos.MsgAccept:
		if m.Acceptor.ID != v.self.ID {
			v.log.Debug("dropping a message for another voter", "from", from, "msg", m.String())
			return
		}
		if v.rec != nil && at.older(*v.rec) {
			v.log.Debug("refusing a proposer on an older membership step", "from", from, "msg", m.String(),
				"change", v.rec.Change, "step", v.rec.Step)
			v.pushStep(from)
			return
		}
		rd := v.acc.Step(m)
		if rd.Persist != nil {
			if err := v.store.save(*rd.Persist, v.rec); err != nil {
				// The answers promise what may not be on disk: drop them
				// and stop. The acceptor's state in memory is ahead of
				// the disk, and a failed fsync cannot be retried safely
				// (segment.WriteFileAtomic), so only a restart from the
				// directory brings it back.
				v.fail(fmt.Errorf("voter %s: %w", v.self, err))
				return
			}
		}
		for _, r := range rd.Messages {
			v.sendPaxos(from, r)
		}
	default:
		v.mu.Lock()
		defer v.mu.Unlock()
		v.proposerOut(v.prop.Step(m))
		v.adminOut(v.admin.Step(m))
	}
}

func (v *Voter) sendPaxos(to int32, m caspaxos.Message) {
	if to == v.cfg.NodeID {
		v.local = append(v.local, m)
		return
	}
	b, err := encodeEnvelope(envelope{kind: kindPaxos, msg: m, at: v.stamp()})
	if err != nil {
		v.log.Error("encode", "err", err)
		return
	}
	v.out = append(v.out, outbound{to: to, payload: b})
}

// stamp is the step this voter's proposers use, nil for none. On the loop.
func (v *Voter) stamp() *stamp {
	if v.rec == nil {
		return nil
	}
	return &stamp{Change: v.rec.Change, Step: v.rec.Step}
}

// pushStep sends this voter's step record to node to, whose proposer is
// behind it. On the loop.
func (v *Voter) pushStep(to int32) {
	b, err := encodeEnvelope(envelope{kind: kindStep, step: *v.rec})
	if err != nil {
		v.log.Error("encode", "err", err)
		return
	}
	v.out = append(v.out, outbound{to: to, payload: b})
}

// proposerOut sends a proposer's messages and hands its result to the
// Node. Under mu.
func (v *Voter) proposerOut(out caspaxos.Output) {
	for _, m := range out.Messages {
		v.sendPaxos(m.Acceptor.ID, m)
	}
	if res := out.Done; res != nil {
		p := v.flight
		v.flight = nil
		if p == nil {
			return // cancelled
		}
		if p.Kind == ctrlquorum.KindTakeover {
			// Rare (one per failover) and what a slow failover is
			// read from: which voter tried, when, and what it got.
			v.log.Info("takeover round ended", "stalled_epoch", p.Epoch, "ballot", res.Ballot, "err", res.Err)
		}
		v.apply(v.node.ProposalDone(v.now(), p.ID, *res))
	}
}

// apply does what a Node asked, in ctrlquorum's order: transitions (a
// step-down first of all), cancel, propose, ISR results, announce. Under
// mu.
func (v *Voter) apply(rd ctrlquorum.Ready) {
	if v.stopped {
		return
	}
	for _, tr := range rd.Transitions {
		if tr.Active {
			v.activeIn = tr.Epoch
		} else {
			v.activeIn = 0
		}
		v.notify(tr)
	}
	if rd.Cancel {
		v.prop.Cancel()
		v.flight, v.parked = nil, nil
	}
	if p := rd.Propose; p != nil {
		if v.passive {
			// Outside its proposers' configuration this voter runs no
			// round (a read writes too): the proposal waits for a
			// membership step that names it.
			cp := *p
			v.parked = &cp
		} else {
			v.startProposal(*p)
		}
	}
	for _, r := range rd.ISRResults {
		if ch := v.pendingISR; ch != nil {
			ch <- r
			v.pendingISR = nil
		}
	}
	if a := rd.Announce; a != nil {
		b, err := encodeEnvelope(envelope{kind: kindAnnounce, reg: *a})
		if err != nil {
			v.log.Error("encode", "err", err)
		} else {
			var sent []int32
			for _, m := range v.pcfg.Voters() {
				if m.ID != v.cfg.NodeID && !slices.Contains(sent, m.ID) {
					sent = append(sent, m.ID)
					v.out = append(v.out, outbound{to: m.ID, payload: b})
				}
			}
		}
	}
	if rd.Err != nil && v.err == nil {
		// Another cluster's register: the Node proposes nothing more. The
		// acceptor keeps answering; the operator has to look.
		v.err = rd.Err
		v.log.Error("controller quorum stopped proposing", "err", rd.Err)
	}
}

// startProposal runs the Node's proposal p on its proposer. Under mu.
func (v *Voter) startProposal(p ctrlquorum.Proposal) {
	var out caspaxos.Output
	var err error
	if p.Kind == ctrlquorum.KindRead {
		out, err = v.prop.ProposeRead()
	} else {
		out, err = v.prop.Propose(p.Change)
	}
	if err != nil {
		// The Node proposes one change at a time and this loop
		// cancels what it abandons, so this is a bug here.
		v.log.Error("propose", "kind", p.Kind, "err", err)
		return
	}
	v.flight = &p
	v.proposerOut(out)
}

// fail stops the voter after a failed persist.
func (v *Voter) fail(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.log.Error("voter stopped", "err", err)
	v.err = err
	v.halt("voter failed: "+err.Error(), err)
}

// notifier calls OnTransition in order on a goroutine of its own, so the
// event loop never waits for the caller.
type notifier struct {
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []ctrlquorum.Transition
	closed bool
	done   chan struct{}
}

func newNotifier(f func(ctrlquorum.Transition)) *notifier {
	n := &notifier{done: make(chan struct{})}
	n.cond = sync.NewCond(&n.mu)
	go func() {
		defer close(n.done)
		for {
			n.mu.Lock()
			for len(n.queue) == 0 && !n.closed {
				n.cond.Wait()
			}
			if len(n.queue) == 0 {
				n.mu.Unlock()
				return
			}
			tr := n.queue[0]
			n.queue = n.queue[1:]
			n.mu.Unlock()
			f(tr)
		}
	}()
	return n
}

func (n *notifier) push(tr ctrlquorum.Transition) {
	n.mu.Lock()
	n.queue = append(n.queue, tr)
	n.mu.Unlock()
	n.cond.Signal()
}

// close lets the queue drain and waits for the last call to return.
func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.cond.Signal()
	<-n.done
}
