// Package metarepl is the I/O side of the metadata log, __cluster_metadata,
// among the controller voters (issue 17; replication.md §2.3, §2.6): the
// durable log storage and a per-node runtime that drives package metalog's
// I/O-free Leader and Follower with real files, a network and the
// controller quorum's register, following metalog's calling contract.
//
// # Storage (Log)
//
// A Log is one directory through segment.FS (OSFS, or MemFS in crash
// tests) with three files:
//
//   - metadata.log: a 20-byte header ("SLMLOG", 0, version 2, the log
//     start offset i64, crc32c of those), then one frame per batch from the
//     start: bodyLen u32 | crc32c(body) u32 | body, with body = offset i64 |
//     epoch i32 | attributes u16 | count u32 | count × (len u32 | record
//     bytes), big-endian. A Batch is the offset of its first record, the
//     controller epoch that wrote it, its records as opaque bytes (the
//     controller's encoded records) and the Checkpoint attribute (bit 0):
//     its records restate the whole metadata state as of its offset. A
//     version 1 file (an 8-byte header, start 0, frames without
//     attributes) is read and rewritten as version 2 on open.
//   - leader-epochs: the leader-epoch cache as written at a takeover or a
//     truncation ("SLME", version, entries, crc32c), replaced atomically
//     with segment.WriteFileAtomic.
//   - high-watermark: the high watermark in two checksummed slots
//     ("SLMH", version, seq, hw, crc32c) written in turn in place with one
//     fsync whenever it grows; a torn write damages only the slot being
//     written, so a crash leaves the old value or the new one.
//
// Ordering: Append writes the frames and fsyncs the file before it returns
// and before End, reads or the epoch cache include them, so everything a
// Log reports is durable and a leader serves and counts only durable
// records (metalog's durability rule). Truncate writes the epoch cache
// first, then cuts and fsyncs the file: a crash between leaves the records,
// from which the cache is rebuilt, so the node is as before and cuts again.
// CacheEpoch (a takeover) is durable before the new leader appends.
//
// Trimming: TrimTo(offset) drops every batch below a checkpoint batch that
// ends at or below the high watermark (anything else is refused), and
// TruncateFullyAndStartAt(offset) empties the log to start at offset (at
// or above the high watermark; a follower behind a trimmed leader). Both
// rewrite the log: header and kept frames to metadata.log.new, fsync,
// rename over metadata.log, fsync the directory; a crash leaves the old
// log or the new one, and a leftover .new file is removed on open.
// TruncateFullyAndStartAt empties the epoch cache file first (a crash then
// leaves the old log, whose cache is derived from its batches). Reads
// below the start are OFFSET_OUT_OF_RANGE; the high watermark is at least
// the start (everything below it was committed). The epoch cache is cut
// at the start as Kafka's truncateFromStart (the entry covering it moves
// to it). A trimmed log cannot say where an epoch older than its first
// batch's ended, so EndOffsetFor answers it undefined (the fetch gets
// OFFSET_OUT_OF_RANGE) and FetchResponse.LogStartEpoch carries that first
// epoch: a fetcher whose last epoch is older may hold records the leader
// cannot vouch for, below the start too, and starts over at the leader's
// start (KRaft sends a snapshot there).
//
// On open the file is scanned: offsets must be contiguous from the start
// and epochs must not go back. A bad frame that is cut short, is the last
// frame, or is followed only by zeros is the torn tail of an append that
// was never fsynced (so never reported): it is cut, durably. A bad frame with a frame
// after it is ErrCorrupt, never dropped. A log that then ends below its
// persisted high watermark is ErrCommittedLost, which also catches a
// damaged last frame that was committed. One unsynced write of several
// frames torn in the middle by out-of-order writeback would be reported as
// ErrCorrupt rather than cut: conservative, and never silent. The epoch
// cache is derived from the batches' epochs, plus the persisted entry of a
// takeover at the log end that no append followed (or whose appends a crash
// lost). A failed write or fsync breaks the Log until it is reopened
// (but for TrimTo's write of the new file, which leaves the log as it was).
//
// # Runtime (Replica)
//
// A Replica is one goroutine, the event loop, that owns the node's
// metalog.Leader or metalog.Follower and its Log. Every input is a closure
// run in turn on the loop: calls (BecomeLeader, Follow, Append), served
// fetches (HandleFetch), answers of fetches and register calls (which run
// on their own goroutines and post their results back), and a timer tick.
// After each event the loop persists a grown high watermark, re-serves
// parked fetches, starts the follower's next step and publishes a Status.
// Time comes from Config.Now; the leader's ISR expiry runs every
// LagTimeMaxMs/2 by it. Async results carry the generation of the
// role that started them and are dropped after a role change.
//
// Leader (BecomeLeader after the caller won a takeover): CacheEpoch, then
// metalog.NewLeader with the durable end and the node's high watermark.
// Append writes one batch in the leader's epoch (the Appends waiting
// together share one write and one fsync, each its own batch), fsyncs, calls
// Leader.Append and returns once the high watermark passes it, or fails
// wrapping metalog.ErrDeposed when the leader steps down first (the records
// are then not known committed; a later leader may still commit them).
// AppendAt is Append conditioned on the epoch led and the log end, checked
// in the same event that writes the batch (against the end after the
// appends grouped ahead of it): a caller whose view of the log predates a
// takeover or another append is refused with ErrEpochChanged or
// ErrOffsetMismatch and nothing is written. The controller's Store appends
// with it, so it cannot write after records its State lacks.
// HandleFetch runs Leader.Fetch (voters) or FetchObserver (brokers) with
// the durable bounds sampled before the read and answers the durable
// batches, up to the log end for a voter and the high watermark for a
// broker; a fetch with nothing new is parked until the log end or the high
// watermark moves or MaxWaitMs passes, and is re-checked in full when
// served. Ready.Proposal goes to Register.ChangeISR; its answer, sorted by
// metalog.RegisterError, to HandleISRResult; OutcomeReadRegister reads the
// register until ApplyRegister gets a value. A deposed leader steps down,
// answers parked fetches NOT_CONTROLLER, and reads the register to follow
// the new one. The leader does not poll the register: cut off from the
// other voters it learns of a takeover from the register's answer to an
// ISR change, from a fetch in a newer epoch, or from the caller (Follow or
// BecomeLeader, which package voter calls when a lease renewal fails).
// With a min ISR of 2 or more a cut-off leader proposes no shrink, so only
// the caller deposes it; its Appends wait until then.
//
// Checkpoints (StartCheckpointAt: StartAppendAt's checks and grouping, the
// batch marked Checkpoint) bound the log: after each event, once the high
// watermark is persisted and parked fetches are answered, the replica,
// leader or follower alike, trims its own log to the newest checkpoint
// batch at or below its persisted high watermark when more than
// Config.TrimMinBytes (default 1 MiB) of frames lie below it: KRaft's rule
// (delete the log prefix only below a snapshot at or below the high
// watermark). The checkpoint must have been committed for
// Config.TrimDelay (default 1s), so fetchers a little behind the high
// watermark (broker observers under load) receive it before the log
// starts there rather than starting over. It runs on the loop, so it
// never races the loop's appends, truncations or reads; Committed's reads
// take the Log's lock.
//
// Follower (Follow, or found by a register read): metalog.NewFollower or
// NewObserver over the durable log; one fetch in flight; an append is
// written and fsynced before Appended (so the next fetch offset, which the
// leader counts for commit, is durable); a truncation is durable before
// Truncated; OFFSET_OUT_OF_RANGE truncates per isr.OutOfRangeReset, and
// when that says truncateFully (the leader's log starts past ours) or the
// leader's start epoch is newer than our last, the log starts over at the
// leader's start (TruncateFullyAndStartAt, then Truncated) and fetches the
// checkpoint there; errors
// back off, and after three failures in a row, or when fenced, the follower
// reads the register (at most every RegisterPoll) and follows a newer
// active controller. It never takes over: the caller (package voter)
// decides that and calls BecomeLeader.
//
// Transport carries FetchRequest and FetchResponse, which encode to
// versioned bytes ("SLMF", kind, version: 1 for a request, 2 for a
// response, whose batches are version 2 log frames, checksum included, so
// a batch is verified end to end, and which carries LogStartEpoch; a
// version 1 response is still decoded); MemNetwork is the in-process one
// for tests, with cut links and seeded message loss.
//
// # Tests
//
// log_test.go crashes MemFS logs: unsynced and torn tails are cut, a bad
// frame in the middle is ErrCorrupt, truncation, the takeover epoch and the
// high watermark (also under torn writes) survive. trim_test.go: TrimTo's
// refusals, reads and epochs below and at the start, and a crash failing
// every I/O step in turn of TrimTo, TruncateFullyAndStartAt and the
// version 1 upgrade, each leaving the old log or the new one with nothing
// committed at or past the start lost; a version 1 file is read. cluster_test.go runs
// three voters and an observer on real goroutines: commit waits for every
// ISR voter, a cut-off voter is shrunk out and expanded back, leadership
// moves and the old leader's uncommitted tail is truncated, deposed
// Appends fail, crashed voters restart with what they acknowledged.
// trim_cluster_test.go: a voter cut off while the leader checkpoints and
// trims catches up from the leader's start, its log then the leader's from
// the checkpoint; a deposed leader whose uncommitted tail runs past the new
// leader's checkpoint keeps none of it; with TrimDelay an observer under
// back-to-back appends trims but never starts over.
// append_test.go drives AppendAt's refusals (an epoch led before a
// re-election, a wrong offset, pending uncommitted batches counted) and a
// group mixing accepted and refused requests on the loop itself, then
// racing writers. chaos_test.go mixes cuts, 5% loss, crashes and leader
// moves under load, with Append, AppendAt and checkpoints trimmed to, and
// checks no refused AppendAt reaches any log, every log starts at a
// checkpoint and holds every acknowledged append at or past its start
// (-chaos-seed=N replays a fault schedule).
// BenchmarkAppend measures grouped and ungrouped Appends on the real file
// system.
//
// # Not wired yet
//
//   - The controller's Store can run on a Replica (controller.OpenReplicated:
//     AppendAt to commit, Committed to serve), but as of this writing the
//     broker still opens its Store on the JSON-lines log.
//   - The broker's CONTROLLER listener can carry FetchRequest (quorumnet;
//     quorumnet.FetchHandler wraps HandleFetch) but nothing registers a
//     Replica there yet, and brokers do not run an observer Replica.
//   - Package voter (takeover and lease) is what calls BecomeLeader and
//     Follow; tests do it by hand with an in-memory register.
//   - A fetcher more than TrimDelay behind the high watermark when a
//     replica trims (a broker observer cut off or restarted) finds the log
//     started past its offset and starts over at the checkpoint; its
//     controller must then reload the state from it.
//   - The start-epoch rule is coarser than KRaft's: a fetcher whose last
//     epoch is older than the checkpoint's starts over even when it ends
//     exactly at the start with the epoch of the batch before it (KRaft
//     keeps that one, knowing the epoch below its snapshot). This happens
//     only when a checkpoint opens a new epoch; starting over is safe.
//   - TrimTo holds the Log's lock while it copies the kept frames and
//     fsyncs twice, on the loop: appends and fetches wait that long.
//   - Each event that grows the high watermark fsyncs its file, on the
//     loop; a commit round on three voters is about four fsyncs in a row.
//   - The leader tracks voters only; brokers (observers) are not reported
//     for DescribeQuorum.
package metarepl
