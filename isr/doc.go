// Package isr is the replication logic of one partition, Kafka's rules from
// Partition.scala, Replica.scala and AbstractFetcherThread.scala, as I/O-free
// state machines: the leader's follower tracking, high watermark and ISR
// changes (Leader), and the follower's fetch and truncation decisions
// (Follower, TruncationFor).
//
// # Contract
//
// Nothing here reads a clock, starts a goroutine or touches a log: every call
// takes the time (milliseconds on a monotonic clock) and the facts the caller
// sampled, and returns what the caller must do, in the style of etcd/raft.
// The caller serialises calls on one Leader or Follower (the replica
// manager's partition lock) and does the I/O:
//
//   - Leader. Build one with NewLeader when metadata makes this broker the
//     leader in a new leader epoch, after caching (epoch, LEO) in the epoch
//     cache. Feed it Fetch for each follower fetch (before reading the log,
//     with the log's bounds sampled before the read), Append after each
//     append as leader, Tick every replica.lag.time.max.ms/2, ApplyPartition
//     and SetBrokers on each metadata change, and HandleAlterPartition with
//     each controller answer. After any call, drain Ready: wake the
//     purgatories when the high watermark advanced, send the Proposal when
//     there is one. CheckAppend and CheckEnoughReplicasReachOffset are the
//     acks=all checks before the append and at completion.
//   - Follower. Build one with NewFollower when metadata makes this broker a
//     follower; Next says whether to truncate, fetch (and with which fetch
//     offset, last fetched epoch and current leader epoch) or wait;
//     HandleResponse turns the leader's answer into append, truncate,
//     reset, back off or wait; Truncated and Appended report the log after
//     the caller acted. SetLeader applies a newer leader epoch.
//
// Errors are franz-go kerr values wrapped with context, so the caller takes
// the Kafka code with errors.As. kerr is a leaf of the standard library;
// using it keeps one table of codes in the module instead of two.
// (kerr.NotLeaderForPartition is code 6, NOT_LEADER_OR_FOLLOWER.)
//
// # Rules kept (replication.md §1.3–1.9)
//
//   - The high watermark is the minimum LEO over the leader, the maximal ISR
//     (committed plus an expansion in flight) and the followers caught up and
//     eligible but outside the ISR; it never moves back, and it does not move
//     while the committed ISR is below min(min.insync.replicas, RF).
//   - One AlterPartition at a time. An expansion counts toward the high
//     watermark and acks=all at once, a shrink only once committed (KIP-497).
//   - A follower joins the ISR once its LEO reached the high watermark and
//     the start of the leader epoch, if its broker is registered, unfenced,
//     not shutting down and it fetched with its registered broker epoch.
//   - Fetches are fenced by leader epoch (KIP-320) and broker epoch
//     (KIP-903), and answered with DivergingEpoch when the follower's last
//     fetched epoch ends earlier on the leader (truncation on fetch).
//
// The seeded simulator in sim_test.go runs these machines for several
// replicas with a toy controller (partition-epoch CAS, clean elections, ELR
// and unclean-shutdown handling), a network that delays, reorders and
// drops, crashes with durable or lossy (unflushed-suffix) logs and zombie
// leaders, and checks the invariants of replication.md §1.14 after every
// step; then it heals the cluster and checks that it converges (every
// replica back in the ISR with the leader's log). Replay a run with go test ./isr -run TestSim -seed=N -steps=M;
// -long runs 20000 seeds.
package isr
