// Package clustersim holds a seeded simulation of a whole controller
// quorum in one process (issue 17, item 3). It has no exported API: the
// simulator is its test files, run by go test.
//
// It composes the real I/O-free state machines, never a re-implementation
// of their logic: per controller voter a caspaxos.Acceptor (its state saved
// to a simulated disk before any answer leaves), a caspaxos.Proposer and a
// ctrlquorum.Node (takeovers, renewals, metadata ISR changes through
// RequestISR), and a metadata log replica (a metalog.Leader once its Node
// is active in an epoch, built after the epoch is cached durably; a
// metalog.Follower of the active controller its Node names otherwise),
// wired as package voter, metarepl and broker's quorum role wire them; plus
// two or three brokers, metalog observers that learn the controller from a
// voter and apply committed records. A workload appends records with
// unique values on the active controller.
//
// Faults: the network drops, duplicates, delays and reorders, and cuts
// links (a node isolated, deaf or mute, one-way cuts, two sides). Each
// node has its own drifting clock (one seed in five past the lease's
// margin, so leases may overlap and the epochs alone keep things safe),
// pauses with its clock running on, and crashes, keeping only its disk:
// the acceptor's saved state, the fsynced log with its epoch cache, the
// high watermark. Deliveries and timers run in a random order each step.
//
// Checked after every step: one active controller per epoch and epochs
// only growing per voter, across restarts (and no overlapping leases
// within the clock margin); one value per ballot at the acceptors and in
// the results, and the register's history in ballot order (the epoch,
// lease and configuration version never go back, an epoch has one active
// controller, a deposed controller's change never succeeds); a takeover's
// log holds every committed record; every node's log below its high
// watermark is a prefix of the one committed log and is durable; what a
// leader serves below its high watermark is that log; brokers apply only
// committed records, in order, never going back. Once healed, an append
// must commit within 8s, and after a quiet spell every node must hold the
// whole log. The register history is not checked with porcupine here: a
// Node's changes note what they did in the Node, so a model cannot replay
// them; package caspaxos checks the register's linearizability.
//
// go test ./clustersim runs 200 seeds (50 with -short) and shows with
// planted bugs that the checks catch what they are for; -seeds=N runs N,
// -harsh=K multiplies the partition, pause and crash rates, and a failure
// prints its replay line, go test ./clustersim -run TestSim -seed=N -v.
package clustersim
