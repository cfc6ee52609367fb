// Package metalog is the replication of the metadata log,
// __cluster_metadata, among the controller voters (issue 17; replication.md
// §2.3, §2.6): an ordinary partition replicated ISR-style from the active
// controller to the other voters, with the controller epoch as its leader
// epoch and its ISR kept in the CASPaxos register. It is I/O-free, with time
// passed in, in etcd/raft's shape; the caller does the log, the fsyncs, the
// network and the register.
//
// It reuses package isr for Kafka's rules (follower tracking, high
// watermark, ISR shrink and expand, DivergingEpoch, truncation) and adds
// the metadata log's:
//
//   - Commit: a record is committed once every ISR voter has it durable and
//     has fetched past it in the current epoch (isr's high watermark over
//     the maximal ISR; strict min ISR). Brokers never count.
//   - Durability: every offset handed in is durable. The leader reports its
//     fsynced end (Append) and serves only fsynced records; a follower's
//     fetch offset is its fsynced end, and it does not fetch between an
//     append and the fsync (Appended).
//   - ISR changes are compare-and-sets on the register (ISRChange: expected
//     controller epoch and configuration version, new ISR), one in flight.
//     A shrink takes effect only when the register answers; an expansion
//     holds the high watermark from the moment it is proposed (KIP-497).
//     This stands in for isr's AlterPartition: the configuration version
//     plays the partition epoch.
//   - The leader is the active controller; its epoch the controller epoch.
//     On takeover the caller caches (epoch, durable log end) before any
//     append and builds a Leader; the other voters truncate to it by
//     DivergingEpoch. A voter never follows a lower epoch and ignores
//     answers from another; a leader learns it is deposed from a register
//     answer or read, or from a fetch in a newer epoch, and then serves
//     nothing.
//   - Brokers are observers (NewObserver, Leader.FetchObserver): they are
//     served records up to the high watermark only.
//   - A node's high watermark never goes back; a truncation below it is
//     refused (ErrCommittedTruncation).
//   - Voters are (id, incarnation): each identity is its own replica, so a
//     wiped voter's new incarnation never counts for its old self.
//
// # Calling contract
//
// Leader: NewLeader after winning a takeover; Fetch for each voter fetch
// and FetchObserver for each broker fetch (with the durable log bounds
// sampled before the read); Append after each fsync of an append; Tick
// every LagTimeMaxMs/2; HandleISRResult with each register answer (its
// error sorted by RegisterError) and ApplyRegister with each register read
// (ConfigOf). After any call drain Ready: wake waiters when the high
// watermark advanced, run Proposal on the register (caspaxos.ExpandISR or
// ShrinkISR as its Expand says), step down when Deposed. After
// OutcomeReadRegister, read until ApplyRegister gets a value: the change
// stays pending until then.
//
// What the rest of the system must keep for these rules to be safe:
//
//   - Only the active controller adds a voter to the ISR, by its own
//     ISRChange (the leader waits for an expansion from the moment it
//     proposes it). A membership change may remove voters from the ISR or
//     change the voters, never add to the ISR behind the leader's back.
//   - The register grants each epoch once and a takeover only to an ISR
//     member (caspaxos.Takeover).
//   - A node persists its high watermark when it changes, or it may go
//     back across a restart (safe, but the simulator checks it does not).
//   - Truncations are durable before Truncated, appends before Appended
//     and Append.
//
// Follower: NewFollower (voters) or NewObserver (brokers) with the durable
// log; Next says what to do; HandleResponse turns an answer into append,
// truncate, reset, back off, wait or ignore; Appended after the fsync of
// an append, Truncated after a durable truncation; SetLeader when the
// register names a newer epoch.
//
// The seeded simulator in sim_test.go runs three voters and two brokers
// over a lossy network with partitions, crashes that lose what was not
// fsynced, and takeovers through an in-memory register with the same
// checks; go test ./metalog -run TestSim -seed=N replays a run.
package metalog
