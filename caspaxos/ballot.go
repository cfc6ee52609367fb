package caspaxos

import (
	"encoding/hex"
	"fmt"
)

// Ballot numbers one attempt of one proposer. Ballots are totally ordered
// by (Counter, Proposer) and unique as long as every proposer instance has
// its own Proposer id and never reuses a counter: a proposer restarted
// without a persisted counter floor must take a new id (see Options).
// The zero Ballot means "none" and sorts below every real ballot.
type Ballot struct {
	Counter  uint64
	Proposer uint64
}

// Compare returns -1, 0 or +1 as b sorts before, equal to or after o.
func (b Ballot) Compare(o Ballot) int {
	switch {
	case b.Counter < o.Counter:
		return -1
	case b.Counter > o.Counter:
		return 1
	case b.Proposer < o.Proposer:
		return -1
	case b.Proposer > o.Proposer:
		return 1
	}
	return 0
}

// Less reports whether b sorts before o.
func (b Ballot) Less(o Ballot) bool { return b.Compare(o) < 0 }

// IsZero reports whether b is the "none" ballot.
func (b Ballot) IsZero() bool { return b == Ballot{} }

func (b Ballot) String() string { return fmt.Sprintf("%d.%d", b.Counter, b.Proposer) }

// Incarnation identifies one life of a voter's disk: a voter whose state was
// wiped starts with a fresh Incarnation, so it never passes for its old self.
// It has the shape of Kafka's voter directory id (a UUID).
type Incarnation [16]byte

func (i Incarnation) String() string { return hex.EncodeToString(i[:4]) }

// Voter is an acceptor's identity: the voter id (Kafka's node id) and the
// incarnation of its state. Two Voters with the same ID and different
// incarnations are different acceptors: a configuration, a quorum count or
// the register's ISR names one exact incarnation.
type Voter struct {
	ID          int32
	Incarnation Incarnation
}

// IsZero reports whether v names no voter.
func (v Voter) IsZero() bool { return v == Voter{} }

func (v Voter) String() string { return fmt.Sprintf("%d/%s", v.ID, v.Incarnation) }
