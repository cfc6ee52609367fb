// Package clustersim holds a seeded simulation of a whole controller
// quorum in one process (issue 17, item 3). It has no exported API: the
// simulator is sim_test.go and its helpers, run by go test.
//
// It composes the real I/O-free state machines, never a re-implementation
// of their logic: per controller voter a caspaxos.Acceptor (its state saved
// to a simulated disk before any answer leaves), a caspaxos.Proposer and a
// ctrlquorum.Node (takeovers, renewals, metadata ISR changes), and a
// metadata log replica (metalog.Leader while its voter leads an epoch,
// metalog.Follower of the active controller otherwise), wired as package
// voter, metarepl and broker's quorum role wire them; plus brokers that
// observe the log (metalog observers) and apply committed records. The
// network drops, duplicates, delays, reorders and partitions (asymmetric
// cuts too); every node has its own drifting clock and may pause or crash,
// keeping only what it fsynced.
//
// After every step it checks: one active controller per epoch, epochs only
// growing per voter (across restarts), one value per ballot and a
// consistent register history, that a takeover's log holds every committed
// record, that every node's committed prefix is a prefix of one log, that
// records served are never a changed committed record, and that brokers
// apply only committed records, in order, never going back. Once healed, a
// controller must be active and new appends must commit within a bound,
// and every node must converge.
//
// go test ./clustersim runs 200 seeds (50 with -short); -seeds=N runs N and
// a failure prints its replay line, go test ./clustersim -run TestSim -seed=N.
package clustersim
