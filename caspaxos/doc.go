// Package caspaxos is the controller quorum's register: CASPaxos (Rystsov,
// arXiv:1802.07000) over the controller voters, as I/O-free state machines
// in the style of etcd/raft. It holds the controller epoch (the fencing
// token), the active controller, the metadata log's ISR and a lease counter
// (Register), so that losing the active controller loses nothing and no two
// controllers act in one epoch (issue 17; replication.md §2.3–2.6), and the
// cluster's configuration beside them: its ID, the voters with their
// endpoints, the metadata log's minimum ISR, and ConfigVersion, which every
// change of the ISR or the voters checks and bumps. Takeovers start the
// lease at a random nonce (TakeoverNonce), so a voter can tell its own
// takeover from an earlier one. Package ctrlquorum decides when to renew,
// take over and step down; package metalog replicates the metadata log.
//
// # Protocol
//
// Every operation is one Change, a function from the current value to the
// next, run as one single-decree Paxos round:
//
//  1. The proposer sends MsgPrepare(B) with a fresh ballot B = (counter,
//     proposer id) to the prepare voters.
//  2. An acceptor promises B (MsgPromise, with its accepted ballot and
//     value) if B is at least its promise and above its accepted ballot,
//     else refuses (MsgReject, with the highest ballot it has seen).
//  3. With a prepare quorum of promises the proposer takes the value at the
//     highest accepted ballot (nil if none), applies the Change and sends
//     MsgAccept(B, value) to the accept voters.
//  4. An acceptor accepts B unless it promised a higher ballot
//     (MsgAccepted), else refuses.
//  5. An accept quorum of MsgAccepted finishes the change.
//
// Reads are the identity Change (Read): a full round, never one acceptor's
// copy, so a read cannot see a value that is later lost. A Change that
// refuses writes the current value back for the same reason. A proposer
// that is refused fast-forwards its counter past the highest ballot it saw
// and retries after a random backoff; one that times out retries too.
// Because a retry may find its own earlier attempt already accepted, the
// proposer remembers the values of its attempts: it finishes its own value
// instead of applying the Change twice, and reports ErrIndeterminate when
// another proposer's value is on top (the change may or may not have
// happened; the caller re-reads). The Register changes are idempotent as a
// second line of defence.
//
// One round trip: with Options.OneRoundTrip each MsgAccept carries the
// proposer's next ballot (Next); an acceptor that accepts also promises it.
// When a prepare quorum has promised, the proposer's next Change goes
// straight to the accept phase on the value it just wrote. If another
// proposer got in between, the accept is refused and the proposer falls
// back to a full round. This is meant for the active controller's lease
// renewals.
//
// # Identity and membership
//
// An acceptor is a Voter: (voter id, Incarnation). Configurations, quorum
// counts and the register's ISR name exact incarnations. A voter whose disk
// was wiped must start with a new Incarnation and an empty AcceptorState: it
// refuses messages addressed to its old incarnation (RejectIdentity), its
// answers do not count for the old one, and it cannot take over (it is not
// in the ISR) until a membership change and an ISR change admit it. Without
// this, replacing acceptors one by one with empty ones loses chosen values
// (the simulator's TestSimCatchesWipedIdentity shows it does).
//
// Quorums are flexible (FPaxos): a Config has a prepare and an accept
// quorum, which must intersect. PlanChange gives the steps of a membership
// change, the paper's procedure: grow the accept quorum over old ∪ new
// voters, rescan (a Read through that step), switch prepares to the new
// voters, then shrink the accepts. Every proposer must be using a step's
// configuration before any proposer moves to the next one; the rescan runs
// only after that.
//
// The register records a change while it runs: BeginVoterChange opens it
// (Register.Change: an ID, the configuration it starts from and the target
// members; at most one open, ISR within the target), FinishVoterChange
// closes it and writes Voters, once every proposer uses the last step.
// Any active controller can so resume an open change with the same plan.
// Package voter drives the steps across the voters (ChangeVoters).
//
// Removing voters that are down (RemoveRaftVoter of a dead controller):
// PlanChangeWithout plans a change whose quorums never need the absent
// leaving voters, by taking the new prepare quorum larger than Majority's
// where that lets the grown accept quorum be met without them, and
// adding a step that returns to Majority(target). The register records
// the absent voters in the open change (VoterChange.Absent, register
// version 4). It refuses when the absent voters are more than the
// current prepare quorum tolerates losing. PrepareBlocked is the
// condition under which package voter may go on without such a voter's
// acknowledgement of a step, given that acceptors refuse proposers on an
// older step.
//
// # What the caller does
//
//   - Acceptor: feed each MsgPrepare/MsgAccept to Step. If Ready.Persist is
//     set, write it durably (fsync) before sending Ready.Messages; if the
//     write fails, drop the messages and restart from the last persisted
//     state. On start, NewAcceptor(the persisted state); on a new or wiped
//     disk, a new Incarnation and AcceptorState{Self: voter}.
//     AcceptorState and Register have versioned binary encodings for that.
//   - Proposer: Propose a Change, send Output.Messages, feed answers to
//     Step and call Tick at a steady interval (the unit of RetryTicks; it
//     must exceed a round trip). Output.Done carries the Result. One change
//     at a time per Proposer. Its id must be unique per proposer instance
//     (or persist Counter and pass it back as MinCounter): two attempts
//     with one ballot can choose two values. Seed Options.Rand so runs
//     replay and dueling proposers spread out.
//   - Nothing here sends, sleeps, reads a clock or starts a goroutine. The
//     lease is liveness only: Takeover and the compare-and-set changes
//     carry every safety decision.
//
// # Tests
//
// Unit tests pin each acceptor and proposer rule, the quorum arithmetic
// (checked against enumeration) and the membership plans. sim_test.go runs
// seeded simulations: acceptors, concurrent client proposers and a
// membership admin over a network that drops, delays, duplicates and
// reorders, with crashes that lose unpersisted state, proposer crashes and
// a wiped voter rejoining. It checks at most one value per ballot, that a
// chosen value is never lost (every later round read it or something
// newer), that the epoch never goes back and one epoch has one active
// controller, liveness after healing, and the register history's
// linearizability with porcupine. A failure prints its replay line
// (go test ./caspaxos -run 'TestSim$' -seed=N; add -v for the history);
// -long or CASPAXOS_LONG=1 runs 20000 seeds (1000 by default).
//
// explore_test.go visits every reachable state of small worlds (three
// acceptors, one or two proposers; any delivery order, bounded drops,
// duplicates and retries) with the same invariants; the larger worlds run
// with -explore or -long. explore_change_test.go runs membership changes
// (3→4, 4→3, a wiped voter's replacement) in the same kind of world, each
// proposer moving through the steps on its own under the rule above,
// beside client changes, drops, duplicates, timeouts, proposer restarts
// and acceptor crashes, checking the same invariants plus real-time order.
// Those worlds are too large to enumerate (four acceptors and three
// steps: over two million states for one client change), so they are
// sampled by seeded random walks (-explore: more); the walks find the two
// planted bugs (no rescan; a proposer two steps ahead) within a few
// thousand states. explore_absent_test.go adds acceptors that persist
// steps and refuse proposers on older ones, and a leaving voter the
// others go on without (PrepareBlocked), whose proposer is left behind at
// any step, restarts, and has its old messages delivered late; without the
// refusal the walks find a lost chosen value.
package caspaxos
