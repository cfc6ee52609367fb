// Package fetcher is the follower's data path, Kafka's ReplicaFetcherManager
// and ReplicaFetcherThread (AbstractFetcherThread.scala): goroutines that
// copy partitions from their leaders into this broker's follower replicas
// with the Fetch protocol, as Kafka followers do.
//
// # Use
//
// The replica manager makes a replica a follower (replica.BecomeFollower)
// and calls Follow with the leader broker and leader epoch from the
// metadata; a newer epoch or another leader is another Follow. It calls
// Unfollow before the replica leads, is deleted or leaves the replica set:
// Unfollow returns once no append to the replica is in progress, and none
// starts afterwards. (Follow on a replica that is already followed
// replaces the assignment in the same way: an answer to a fetch sent for
// the old assignment is dropped, never applied.) Close stops everything.
// Stats is the per-partition lag for metrics.
//
// # Fetchers
//
// Partitions are spread over fetchers, one per (leader broker, index),
// index = hash(topic, partition) mod num.replica.fetchers, as Kafka does.
// A fetcher is a goroutine with its own franz-go client seeded with the
// leader's inter-broker address; it sends Fetch straight to that broker
// (no metadata, no retries inside the client: the fetcher backs off
// itself) and ends, closing its client, when its last partition leaves.
//
// Each fetcher keeps an incremental fetch session (KIP-227) with its
// leader (session.go): after one full request, a request names only the
// partitions whose fetch state changed and forgets those that left, and
// the leader answers only partitions with news; any failure starts a new
// session with a full request. It carries this broker's id both as the
// top-level ReplicaID (v0–14) and in ReplicaState with the broker epoch
// (v15+, KIP-903); franz-go picks the version the leader supports. Fetch
// v12 or later is required: truncation happens on fetch (KAFKA-10554), by
// LastFetchedEpoch and the leader's DivergingEpoch; an older leader is
// refused (logged, backed off), since this package has no
// OffsetForLeaderEpoch path. v13+ names topics by ID, so Follow needs the
// topic ID.
//
// # Decisions
//
// What to send and what an answer means are isr.Follower's decisions (the
// I/O-free rules of AbstractFetcherThread, isr/follower.go); this package
// does the I/O they ask for:
//   - records: the whole batches, as they came (a partial trailing batch is
//     dropped and fetched again), go to replica.AppendAsFollower; then the
//     high watermark becomes min(leader's, LEO) and the log start follows
//     the leader's (DeleteRecords, never above the local high watermark);
//   - DivergingEpoch: truncate where isr.TruncationFor says, fetch again;
//   - OFFSET_OUT_OF_RANGE: ask the leader's log start and end (ListOffsets
//     earliest and latest, as a replica), then isr.OutOfRangeReset:
//     truncate, or empty the log and restart it at the leader's start;
//   - FENCED_LEADER_EPOCH: stop fetching the partition until Follow names
//     a newer epoch (the leader is ahead of this broker's metadata);
//   - any other error (NOT_LEADER_OR_FOLLOWER, UNKNOWN_LEADER_EPOCH, …),
//     a failed append or a connection error: back off
//     replica.fetch.backoff.ms and retry, as Kafka does;
//   - a replica whose log is poisoned by a storage error, or closed, is
//     no longer fetched (logged; the replica manager takes it offline).
//
// # Concurrency
//
// Each followed partition is a state (its isr.Follower, backoff, last
// leader answer) guarded by its own mutex; Follow and Unfollow retire a
// state by marking it removed under that mutex, which the fetcher checks
// before applying anything, and which an append in progress holds. The
// state object is the generation: an answer is applied only to the state
// that sent the request. No network I/O happens under a state's mutex, so
// Unfollow waits for at most one append or truncation. Lock order:
// Manager.mu, released before any partition state's mu is taken; under a
// state's mu only the replica's own locks.
package fetcher
