// Package voter runs one controller voter of the Raft-free controller
// quorum (issue 17; replication.md §2.3–2.6) with real I/O: the caspaxos
// acceptor, persisted in a directory through segment.FS; a caspaxos
// Proposer; and the ctrlquorum.Node that decides when to renew, take over
// and step down. Packages caspaxos and ctrlquorum hold the logic as
// I/O-free state machines; this package feeds them messages and time and
// carries out what they ask, the way ctrlquorum's sim_test.go does in
// simulation.
//
// # Identity
//
// A voter is (node id, incarnation). Identity is the format step: it
// returns the identity in a directory, creating a fresh state with a new
// random incarnation (a version-4 UUID, like Kafka's directory id) if the
// directory has none. The cluster's voter list (Config.Voters) names each
// voter with that incarnation. A voter whose directory was wiped comes
// back with a new incarnation: its acceptor refuses messages for its old
// self, and, being outside the register's metadata ISR, it never takes
// over. New opens the directory the same way and locks it until Close.
//
// # Event loop
//
// One goroutine per Voter owns the acceptor and drives the Node and the
// proposer, one event at a time:
//
//   - a message from Deliver (decoded on the caller's goroutine and queued;
//     a full queue drops it): a Prepare or Accept goes to the acceptor, an
//     answer to the proposer, an announcement to Node.Observe;
//   - a tick every TickInterval: Proposer.Tick (its retry timer counts
//     ticks) and Node.Tick with the injected monotonic clock (Config.Now;
//     nothing in the logic reads the wall clock);
//   - a call from RequestISR or ObserveEpoch.
//
// A proposal's completion (Output.Done) goes to Node.ProposalDone within
// the event that finished it, and each Node Ready is carried out in
// ctrlquorum's order: transitions, cancel, propose, ISR results, announce
// (to every other voter). The voter's messages to itself (its proposer to
// its own acceptor and back) are handled in the same event without the
// transport; messages for others are sent when the event is done, outside
// the lock that Active and Leader take, so a slow Send never delays them.
// Transitions reach OnTransition in order on a goroutine of their own;
// they are notices, and Active, which asks the Node with the current time,
// is what a controller checks before it acts.
//
// # Persistence order
//
// The acceptor's state is written before any answer that depends on it
// leaves: Step, then segment.WriteFileAtomic of the state (temp file,
// fsync, rename, fsync of the directory), then the answers are queued.
// The file is a magic, a CRC-32C, a length and caspaxos's versioned
// AcceptorState encoding (a second magic adds the persisted membership
// step record after it; a voter no change ever reached keeps the first
// format byte for byte); a file that fails any check is an error
// (ErrCorruptState) and is never reset, since an acceptor that forgot its
// promises lets two values be chosen. If a write fails, the answers of
// that event are dropped and the voter stops (Done, Err): a failed fsync
// cannot be retried safely, and the state in memory is ahead of the disk,
// so only a restart from the directory resumes it. A controller that
// stops this way, or by Close, reports a step-down.
//
// # Membership changes
//
// ChangeVoters(ctx, target) on the active controller moves the quorum to
// target (AddRaftVoter, RemoveRaftVoter, or replacing a wiped voter's old
// incarnation by its new one) along caspaxos.PlanChange's steps:
//
//  1. It reads the register. With no change open, it writes
//     caspaxos.BeginVoterChange (compare-and-set on epoch and
//     ConfigVersion): the change's ID, the configuration the proposers
//     use now (which must be Majority of the register's Voters) and the
//     target. That serialises changes: a second one cannot begin, and any
//     later active controller finds the open one there.
//  2. For each step k of the plan (PlanChange(From, target), or
//     PlanChangeWithout with the change's absent voters) it sends a step record
//     (change ID, k, the step's Config) to every voter id of old ∪ new,
//     resending until each acknowledges it. A voter persists the record
//     with its acceptor state (one file, fsync before the acknowledgement),
//     switches both its proposers to the step (an attempt in flight starts
//     again under it) and answers with the record it now uses. Records only
//     move forward (a later step of the same change, or a later change), so
//     a voter further on acknowledges its own step, and a resent or stale
//     step changes nothing. Only when every voter id has acknowledged step
//     k (or later) does step k+1 go out: every proposer uses step k before
//     any uses k+1. A voter id counts as one proposer: a wiped voter's old
//     incarnation has no proposer left, and its new one answers for the id.
//     The one exception is a change begun without absent voters (below).
//  3. After each step with Rescan (every step but the last), a read round
//     runs through this voter's driver proposer (a second
//     caspaxos.Proposer beside the Node's, on the same configuration)
//     before step k+1 goes out. After step 1 it is the paper's rescan;
//     after every step it is also a fence against accepts of abandoned
//     attempts of the step before that are still in flight (see
//     caspaxos.Step). FinishVoterChange, a full round through the last
//     step once everyone uses it, fences the last step.
//  4. When every voter id has acknowledged the last step
//     (Majority(target)), it writes caspaxos.FinishVoterChange: Voters :=
//     target, the change closed, ConfigVersion bumped. If the open change
//     was not the one asked for, it then begins the one asked for.
//
// # Removing a voter that is down
//
// ChangeVotersWithout(ctx, target, absent) removes voters that are down
// for good, as Kafka's RemoveRaftVoter does (KIP-853). Two things stop
// the plain change. First, PlanChange's quorums may need them (removing
// one of three: step 1 accepts need all three); the change is instead
// planned by caspaxos.PlanChangeWithout, whose quorums the voters left
// can meet (the absent voters are recorded in the register's open change,
// so any later driver resumes the same plan, and the plan still ends on
// Majority(target)). It refuses when the voters left cannot carry it
// (two dead of three, one of two). Second, an absent voter cannot
// acknowledge the steps, and a proposer left on an old step while the
// others are two steps on could choose a value the new quorums miss. So:
//
//   - Every caspaxos message carries the step its sender's proposers use
//     (envelope version 2), and an acceptor refuses a Prepare or Accept
//     from a proposer on an older step than its own record: no answer,
//     and the record is pushed back as a step, which moves the sender
//     forward (a removed voter turns passive). A sender with no record
//     (version 1) counts as older than any record.
//   - The driver goes on without an absent voter's acknowledgement of
//     step k only when it is one of the change's absent voters, has been
//     silent on the step for absentResends resends, and every prepare
//     quorum of every configuration its proposer could still use (the
//     change's From, and every step from the last one it acknowledged, or
//     from step 1 if none, up to k-1) holds a voter that acknowledged
//     step k (caspaxos.PrepareBlocked). Those voters persisted a step
//     newer than anything the absent proposer could use, so its prepares
//     never complete again; a ballot it prepared before is fenced by the
//     rescan after the step it was left on, as for any abandoned attempt
//     (caspaxos.Step). The driver keeps resending the step to it.
//
// caspaxos's explore_absent_test.go walks this (the proposer left behind
// at any step, restarted with its persisted step, its old messages
// delivered late) and finds a lost chosen value without the refusal.
//
// A voter proposes only if its own incarnation is in the configuration its
// proposers use; otherwise it is passive: the Node's proposal is parked,
// not run, since even a read writes. That configuration is the last
// persisted step record, else Majority(Config.Voters); with Config.Join (a
// voter to be added) and no record, the voter is passive. So a wiped
// voter, a voter not yet added and a removed voter run no rounds on a
// configuration that may be stale, and a removed voter stays passive after
// a restart. Takeover eligibility is unchanged (ctrlquorum's metadata-ISR
// rule); the ISR must stay within the target, so a voter leaves the ISR
// before it leaves the quorum, the active controller cannot remove itself,
// and ExpandISR refuses a leaving voter while a change is open.
//
// If the driver stops mid-change (ctx ends, it is deposed or dies, a voter
// cannot be reached), the voters are on step k or k+1, which PlanChange
// makes safe side by side, and the register keeps the open change. The
// quorum works on as long as the voters each step's quorums need are up
// (step 1 of 3→4 needs accepts from three of the four); a restarted voter
// resumes from its persisted step; and the next ChangeVoters, on this or a
// later active controller, starts again from step 1 of the open change
// (harmless for voters further on) and completes it. A deposed driver that
// still sends steps follows the same plan under the same rule, so two
// drivers cannot break it, and its Begin and Finish fail on the epoch. The
// caller makes every target voter reachable through the Transport (the
// broker adds target's endpoints to its peers) and starts voters to be
// added with Join before calling.
//
// # Transport
//
// Voters exchange envelopes: a magic byte, a version, a kind (a caspaxos
// message, an announced register value, a membership step or its
// acknowledgement) and the body in its own versioned encoding; version 2
// adds the sender's membership step to a caspaxos message (see Removing a
// voter that is down). Transport.Send is fire-and-forget; the receiving
// side calls Deliver with the sender's node id, and an acceptor answers
// the node that asked. MemNetwork is an in-memory network with cuts,
// isolation and random drops for tests.
//
// # Not wired yet
//
//   - The broker can carry the envelopes (quorumnet's request on the
//     CONTROLLER listener; quorumnet.Client is a Transport) but does not
//     start Voters from controller.quorum.voters yet, and no CLI step calls
//     Identity.
//   - A voter of an older release (envelope version 1 only) that has a
//     step record is refused by a voter of this one that has a record too,
//     and cannot read version 2: a rolling upgrade after a membership
//     change works as long as one side holds a quorum.
//   - The metadata log (package metalog) does not call RequestISR and
//     ObserveEpoch yet, and announcements travel as their own messages,
//     not on its fetch responses.
//   - The proposer keeps no ballot floor across restarts: it takes a new
//     random id each life instead, which the caspaxos docs allow.
//   - DescribeQuorum and metrics read nothing from here yet.
//
// # Tests
//
// The tests run three Voters on real goroutines over MemNetwork and a
// MemFS: election after bootstrap, failover after Close within
// TakeoverTimeout + 1s, a paused controller (its loop blocked, its
// messages cut, its clock running on) that steps down on resuming while
// the new controller stays, no controller without a quorum and one when a
// voter returns with its persisted identity, a wiped voter that is never
// elected (and proposes nothing) even when it alone reaches a quorum, a
// failing disk that stops
// its voter, and, with a single voter, answers that leave only after the
// state they depend on survives a MemFS crash and never when a write of it
// fails. membership_test.go adds a fourth voter then removes one of the
// first three (the register, every voter's proposers and their persisted
// records agree after each change; failovers work with the new majority
// and the removed voter stays passive across a restart), re-admits a
// wiped voter (refused as an ISR member before, elected after), and
// blocks a change on a voter that is not running: the call ends with the
// context's error, the quorum keeps its controller on step 1, a restarted
// controller comes back on step 1 and an election follows, and the next
// controller completes the change once the voter runs.
// membership_absent_test.go removes a voter closed for good
// (ChangeVotersWithout), elects on the two left after a restart, and
// restarts the removed voter from its old disk: refused and pushed the
// last step, it turns passive, and the register's voters, epoch and
// controller do not move; removing two dead voters of three is refused.
package voter
