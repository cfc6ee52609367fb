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
// AcceptorState encoding; a file that fails any check is an error
// (ErrCorruptState) and is never reset, since an acceptor that forgot its
// promises lets two values be chosen. If a write fails, the answers of
// that event are dropped and the voter stops (Done, Err): a failed fsync
// cannot be retried safely, and the state in memory is ahead of the disk,
// so only a restart from the directory resumes it. A controller that
// stops this way, or by Close, reports a step-down.
//
// # Transport
//
// Voters exchange envelopes: a magic byte, a version, a kind (a caspaxos
// message, or an announced register value) and the body in its own
// versioned encoding. Transport.Send is fire-and-forget; the receiving
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
//   - Membership changes: the proposer's configuration is Majority of
//     Config.Voters for the Voter's life; caspaxos.PlanChange and
//     SetVoters are not driven from here.
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
// elected even when it alone reaches a quorum, a failing disk that stops
// its voter, and, with a single voter, answers that leave only after the
// state they depend on survives a MemFS crash and never when a write of it
// fails.
package voter
