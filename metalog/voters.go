package metalog

import (
	"fmt"
	"math"
	"slices"

	"github.com/sluice-io/sluice/caspaxos"
)

// Voter is a controller voter's identity, (voter id, incarnation), exactly
// as the register names it: two incarnations of one voter id are two
// different replicas of the log, so a voter whose disk was wiped never
// counts for its old self.
type Voter = caspaxos.Voter

// Config is the part of the register the metadata log follows: the
// controller epoch (the log's leader epoch), the configuration version that
// every ISR change compares and bumps, the active controller (the log's
// leader), the voters that replicate the log and its ISR.
type Config struct {
	Epoch   int32
	Version int64
	Active  Voter
	Voters  []Voter
	ISR     []Voter
}

// slots gives each voter identity a small int32 so that package isr, which
// names replicas by broker id, can track them: isr's rules are written once,
// and an old and a new incarnation of one voter id are distinct replicas
// there too. Slots only grow for the life of a Leader.
type slots struct {
	ids    map[Voter]int32
	voters []Voter
}

func newSlots() *slots { return &slots{ids: map[Voter]int32{}} }

// slot returns v's slot, giving it one if it has none.
func (s *slots) slot(v Voter) int32 {
	if id, ok := s.ids[v]; ok {
		return id
	}
	id := int32(len(s.voters))
	s.ids[v] = id
	s.voters = append(s.voters, v)
	return id
}

// lookup returns v's slot if it has one.
func (s *slots) lookup(v Voter) (int32, bool) {
	id, ok := s.ids[v]
	return id, ok
}

func (s *slots) of(vs []Voter) []int32 {
	out := make([]int32, len(vs))
	for i, v := range vs {
		out[i] = s.slot(v)
	}
	return out
}

func (s *slots) voter(id int32) Voter { return s.voters[id] }

func (s *slots) votersOf(ids []int32) []Voter {
	out := make([]Voter, len(ids))
	for i, id := range ids {
		out[i] = s.voters[id]
	}
	return out
}

// version32 is a configuration version as isr's partition epoch, which it
// plays: isr only compares it, so the conversion is exact while it fits.
func version32(v int64) (int32, error) {
	if v < 0 || v > math.MaxInt32 {
		return 0, fmt.Errorf("metalog: configuration version %d out of range", v)
	}
	return int32(v), nil
}

// union is a ∪ b in a's order then b's, without duplicates.
func union(a, b []Voter) []Voter {
	out := slices.Clone(a)
	for _, v := range b {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
