// Package ctrlquorum is the controller quorum's takeover and lease logic
// as an I/O-free state machine, one Node per controller voter (issue 17;
// replication.md §2.3–2.6). It decides when the active controller renews
// its lease, when another voter takes over, and when a controller must
// step down; the caspaxos register carries every safety decision.
//
// # Rules
//
//   - Start: the first proposal is caspaxos.Bootstrap (with
//     Config.Bootstrap) or a read. A bootstrapped register has no active
//     controller; voters take over at once, after a random backoff.
//   - The active controller renews (caspaxos.Renew) every Lease/3,
//     counted from when the last successful renewal was proposed. Its
//     lease lasts Lease from that same instant, on its own monotonic
//     clock: when it runs out the controller steps down, even if nobody
//     has taken over, and abandons the renewal in flight.
//   - The active controller announces each value its renewals choose
//     (Ready.Announce); the caller may carry it to the other voters'
//     Observe. A voter that hears announcements reads the register only
//     when they stop, which keeps reads from colliding with renewals.
//   - Any other voter reads the register every ReadInterval. When it has
//     seen the same (epoch, active, lease) for TakeoverTimeout (> Lease)
//     on its own clock, plus its place in line (two backoffs for each
//     voter of the ISR with a lower id, the stalled controller not
//     counted) and a random backoff, and it is in the metadata
//     ISR by exact incarnation, it proposes caspaxos.Takeover with the
//     epoch and lease it saw: the compare-and-set fails if the lease moved
//     or another voter won. A wiped voter (new incarnation) is never in
//     the ISR, so it never takes over. It leads only if a run of its own
//     takeover's own value, computed from the epoch it saw, was chosen: a
//     value found already applied or shown by an indeterminate round (a
//     cancelled attempt, a previous life) may have been watched stalling
//     for long, so its lease would overlap a successor's.
//   - A controller steps down at once, before anything else in the Ready,
//     on its first failed check (a compare-and-set refused with a
//     caspaxos.EpochError), on reading a register of a later epoch or
//     another active controller, or on ObserveEpoch of a later epoch. It
//     never acts again in an epoch it left: if the register still names
//     it (after a restart, a lapsed lease, a cancelled or indeterminate
//     takeover), it takes over from itself into a new epoch, at once
//     (after a backoff), since nobody leads the epoch it is named in.
//   - Metadata ISR changes come in as ISRRequests (epoch, config version,
//     new ISR) from the metadata log, one at a time, accepted only while
//     active in that epoch, and go out as caspaxos.ShrinkISR/ExpandISR.
//     A ConfigVersionError or ErrBelowMinISR is reported, not a reason to
//     step down; an EpochError is.
//   - Brokers follow Leader: a lower controller epoch never supersedes a
//     higher one (Leader.Supersedes).
//
// # Timing
//
// Defaults: Lease 1s (renewal every 333ms), TakeoverTimeout 1.5s,
// ReadInterval 250ms, MaxBackoff 250ms, so a failover takes about
// TakeoverTimeout + ReadInterval + MaxBackoff + one round when the first
// voter in line is alive, two backoffs more for each one before it that
// is not. A takeover
// waits TakeoverTimeout from when the voter saw the last renewal, which
// is after the renewal was proposed, when the old controller's lease
// began; so as long as voters' clock rates differ by less than
// TakeoverTimeout/Lease, a deposed controller's lease has run out before
// any takeover. Past that (or with a pause the lease does not notice)
// two voters may both believe they are active for a while, and the epoch
// fences the old one: its renewals and ISR changes fail, and it cannot
// commit metadata because the ISR fetches in the new epoch.
//
// # What the caller does
//
// One caspaxos.Proposer per voter, one change at a time, on the Node's
// goroutine (a takeover's Change notes what it did in the Node): for each
// Ready, apply Transitions first, call Proposer.Cancel if Cancel, then
// Propose(Propose.Change) (ProposeRead for KindRead) and hand its Result
// back to ProposalDone with the proposal's ID; send Announce to the other
// voters if there is a way (their Observe). Call Tick often (well under
// ReadInterval) with the local monotonic time (time.Since a fixed start),
// and check Active(now) before acting as controller: it is exact between
// Ticks, so a voter resumed from a pause does not act on a lapsed lease.
//
// sim_test.go runs three Nodes with real caspaxos acceptors and proposers
// over a simulated network with drops, delays, partitions, clock drift
// and pauses, checking the invariants after every step; a failure prints
// its replay line (go test ./ctrlquorum -run 'TestSim$' -seed=N).
package ctrlquorum
