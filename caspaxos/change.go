package caspaxos

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// VoterChange is a membership change in progress, kept in the register
// between BeginVoterChange and FinishVoterChange. Recording it there
// serialises changes (a second one cannot begin while one is open) and
// lets any later active controller resume it: the plan is
// PlanChangeWithout(From, Target's voters, Absent), the same for everyone.
type VoterChange struct {
	// ID is the ConfigVersion BeginVoterChange wrote: unique and growing,
	// it names the change in the voters' persisted step records.
	ID int64
	// From is the proposers' configuration the change starts from.
	From Config
	// Target is the membership the change ends with.
	Target []Member
	// Absent are leaving voters that were down when the change began: the
	// plan is PlanChangeWithout(From, Target's voters, Absent), whose
	// quorums never need them, and the driver may go on without their
	// acknowledgement when that is safe (package voter).
	Absent []Voter
}

// TargetVoters returns the voters of Target.
func (c VoterChange) TargetVoters() []Voter { return memberVoters(c.Target) }

func memberVoters(ms []Member) []Voter {
	out := make([]Voter, len(ms))
	for i, m := range ms {
		out[i] = m.Voter
	}
	return out
}

func (c *VoterChange) clone() *VoterChange {
	if c == nil {
		return nil
	}
	out := &VoterChange{ID: c.ID, From: Config{Prepare: cloneQuorum(c.From.Prepare), Accept: cloneQuorum(c.From.Accept)}}
	out.Target = Register{Voters: c.Target}.Clone().Voters
	out.Absent = slices.Clone(c.Absent)
	return out
}

func (c *VoterChange) equal(o *VoterChange) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.ID == o.ID && SameConfig(c.From, o.From) && slices.EqualFunc(c.Target, o.Target, equalMember) &&
		slices.Equal(c.Absent, o.Absent)
}

// ErrChangeInProgress: a membership change is open in the register; finish
// it (or resume it) before beginning another.
var ErrChangeInProgress = errors.New("caspaxos: a voter membership change is in progress")

// BeginVoterChange opens a membership change from the proposers'
// configuration from to target, in epoch at configVersion (which it bumps;
// the new version is the change's ID). It refuses while another change is
// open, and unless every ISR member is in target (a voter leaves the ISR,
// with ShrinkISR, before it leaves the quorum; the active controller is in
// the ISR, so it cannot remove itself). Target must name each voter id
// once. Already applied, it succeeds unchanged.
func BeginVoterChange(epoch int32, configVersion int64, from Config, target []Member) Change {
	return BeginVoterChangeWithout(epoch, configVersion, from, target, nil)
}

// BeginVoterChangeWithout is BeginVoterChange for a change planned without
// the absent voters (PlanChangeWithout): each must be a voter of the
// register that target leaves out.
func BeginVoterChangeWithout(epoch int32, configVersion int64, from Config, target []Member, absent []Voter) Change {
	want := &VoterChange{ID: configVersion + 1, From: from, Target: target, Absent: absent}
	want = want.clone()
	return CompareAndSet(epoch, func(r *Register) error {
		if r.Change.equal(want) {
			return nil
		}
		if r.ConfigVersion != configVersion {
			return &ConfigVersionError{Expected: configVersion, Current: *r}
		}
		if r.Change != nil {
			return fmt.Errorf("%w (change %d)", ErrChangeInProgress, r.Change.ID)
		}
		if err := checkTarget(r, target); err != nil {
			return err
		}
		if err := from.Validate(); err != nil {
			return fmt.Errorf("%w: change from: %w", ErrBadConfig, err)
		}
		next := Register{Voters: target}
		for _, v := range absent {
			if !r.IsVoter(v) || next.IsVoter(v) {
				return fmt.Errorf("%w: absent voter %s is not a voter the change removes", ErrBadConfig, v)
			}
		}
		r.ConfigVersion++
		r.Change = want.clone()
		return nil
	})
}

// checkTarget: a target membership is non-empty, names each voter id once
// and no zero voter, and holds the whole ISR.
func checkTarget(r *Register, target []Member) error {
	if len(target) == 0 {
		return fmt.Errorf("%w: empty target membership", ErrBadConfig)
	}
	for i, m := range target {
		if m.Voter.IsZero() || slices.ContainsFunc(target[:i], func(o Member) bool { return o.Voter.ID == m.Voter.ID }) {
			return fmt.Errorf("%w: target voter %s is zero or its id repeats", ErrBadConfig, m.Voter)
		}
	}
	next := Register{Voters: target}
	for _, v := range r.ISR {
		if !next.IsVoter(v) {
			return fmt.Errorf("%w: ISR member %s would not be a voter (shrink the ISR first)", ErrBadConfig, v)
		}
	}
	return nil
}

// FinishVoterChange closes the open change id: Voters becomes its Target
// and ConfigVersion grows by one. The caller runs it only once every
// proposer uses the change's last step, Majority(Target). Already applied
// (no change open, Voters is target, ConfigVersion past id), it succeeds
// unchanged.
func FinishVoterChange(epoch int32, id int64, target []Member) Change {
	target = Register{Voters: target}.Clone().Voters
	return CompareAndSet(epoch, func(r *Register) error {
		if r.Change == nil && r.ConfigVersion > id && slices.EqualFunc(r.Voters, target, equalMember) {
			return nil
		}
		if r.Change == nil || r.Change.ID != id {
			return &ConfigVersionError{Expected: id, Current: *r}
		}
		if !slices.EqualFunc(r.Change.Target, target, equalMember) {
			return fmt.Errorf("%w: change %d has another target", ErrBadConfig, id)
		}
		if err := checkTarget(r, target); err != nil {
			return err
		}
		r.Voters = target
		r.Change = nil
		r.ConfigVersion++
		return nil
	})
}

// SameConfig reports whether a and b have the same quorums: the same
// voters (in any order) and counts.
func SameConfig(a, b Config) bool {
	same := func(x, y Quorum) bool {
		if x.Need != y.Need || len(x.Voters) != len(y.Voters) {
			return false
		}
		for _, v := range x.Voters {
			if !slices.Contains(y.Voters, v) {
				return false
			}
		}
		return true
	}
	return same(a.Prepare, b.Prepare) && same(a.Accept, b.Accept)
}

// Voters returns every voter c sends to (prepare ∪ accept), once each.
func (c Config) Voters() []Voter {
	out := slices.Clone(c.Prepare.Voters)
	for _, v := range c.Accept.Voters {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

const configVersion = 1

// MarshalBinary encodes c: a version byte, then the prepare and the accept
// quorum, each a need uint16, a count uint16 and the voters.
func (c Config) MarshalBinary() ([]byte, error) {
	b := []byte{configVersion}
	return appendConfigBody(b, c)
}

func appendConfigBody(b []byte, c Config) ([]byte, error) {
	for _, q := range []Quorum{c.Prepare, c.Accept} {
		if len(q.Voters) > 0xffff || q.Need < 0 || q.Need > 0xffff {
			return nil, fmt.Errorf("caspaxos: config quorum %d of %d does not encode", q.Need, len(q.Voters))
		}
		b = binary.BigEndian.AppendUint16(b, uint16(q.Need))
		b = binary.BigEndian.AppendUint16(b, uint16(len(q.Voters)))
		for _, v := range q.Voters {
			b = appendVoter(b, v)
		}
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote; the result must still
// pass Validate before use.
func (c *Config) UnmarshalBinary(b []byte) error {
	rd := reader{b: b}
	if v := rd.u8(); rd.err == nil && v != configVersion {
		return fmt.Errorf("caspaxos: config version %d, want %d", v, configVersion)
	}
	out := rd.config()
	if err := rd.finish("config"); err != nil {
		return err
	}
	*c = out
	return nil
}

func (r *reader) config() Config {
	var c Config
	for _, q := range []*Quorum{&c.Prepare, &c.Accept} {
		q.Need = int(r.u16())
		q.Voters = r.voters()
	}
	return c
}
