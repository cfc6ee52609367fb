package caspaxos

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Register is the controller quorum's register value: the cluster it
// belongs to, who is the active controller under which fencing epoch, which
// voters form the metadata log's ISR and the quorum, and the lease counter
// the active controller bumps to show it is alive (replication.md §2.3).
// The empty register (never written) decodes as the zero Register.
type Register struct {
	// ClusterID is set once, by Bootstrap; a voter of another cluster
	// refuses to bootstrap over it.
	ClusterID string
	// Epoch is the controller epoch, the fencing token: it grows by one on
	// every takeover and is the metadata log's leader epoch.
	Epoch int32
	// Active is the active controller (zero before the first takeover).
	Active Voter
	// ISR is the metadata log's in-sync voters, by exact incarnation.
	ISR []Voter
	// Lease counts the active controller's renewals in this epoch. It
	// decides liveness only: a voter that sees it stall takes over.
	Lease uint64
	// ConfigVersion grows by one on every change of ISR or Voters, so a
	// compare-and-set on the configuration cannot apply to a configuration
	// it did not see (Kafka's partition epoch in another form).
	ConfigVersion int64
	// Voters are the controller quorum's members with their endpoints.
	Voters []Member
	// MetaMinISR is the smallest ISR a shrink may leave (at least 1: the
	// active controller).
	MetaMinISR int32
	// Change is the membership change in progress (BeginVoterChange),
	// nil when none is.
	Change *VoterChange
}

// Member is one voter of the quorum and where it listens.
type Member struct {
	Voter     Voter
	Endpoints []Endpoint
}

// Endpoint is a listener of a voter, as DescribeQuorum reports it.
type Endpoint struct {
	Name string // listener name, e.g. CONTROLLER
	Host string
	Port uint16
}

func (e Endpoint) String() string { return fmt.Sprintf("%s://%s:%d", e.Name, e.Host, e.Port) }

// Register encodings. Version 1 (before ClusterID, ConfigVersion, Voters
// and MetaMinISR) still decodes, with those fields zero. MarshalBinary
// writes version 2 when no membership change is open and version 3 (the
// same, then the change) while one is, so a register that never saw a
// change keeps the bytes it had; version 4 only for a change with absent
// voters (VoterChange.Absent), so the others keep version 3's bytes.
const (
	registerV1      = 1
	registerVersion = 2
	registerV3      = 3
	registerV4      = 4
)

// MarshalBinary encodes r: a version byte, then fixed-width big-endian
// fields. Version 2: cluster id (string), epoch int32, active voter, lease
// uint64, config version int64, min ISR int32, ISR count uint16 and voters,
// member count uint16 and members (voter, endpoint count uint16, endpoints:
// name string, host string, port uint16). A string is a uint16 length and
// its bytes; a voter is id int32 then a 16-byte incarnation. Version 3
// appends the open change: id int64, its From config (Config's encoding
// without the version byte) and its target members as above. Version 4
// appends the change's absent voters (count uint16, voters).
func (r Register) MarshalBinary() ([]byte, error) {
	if err := r.checkSizes(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 64+len(r.ClusterID)+20*len(r.ISR)+40*len(r.Voters))
	version := byte(registerVersion)
	if r.Change != nil {
		version = registerV3
		if len(r.Change.Absent) > 0 {
			version = registerV4
		}
	}
	b = append(b, version)
	b = appendString(b, r.ClusterID)
	b = binary.BigEndian.AppendUint32(b, uint32(r.Epoch))
	b = appendVoter(b, r.Active)
	b = binary.BigEndian.AppendUint64(b, r.Lease)
	b = binary.BigEndian.AppendUint64(b, uint64(r.ConfigVersion))
	b = binary.BigEndian.AppendUint32(b, uint32(r.MetaMinISR))
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.ISR)))
	for _, v := range r.ISR {
		b = appendVoter(b, v)
	}
	b = appendMembers(b, r.Voters)
	if c := r.Change; c != nil {
		b = binary.BigEndian.AppendUint64(b, uint64(c.ID))
		var err error
		if b, err = appendConfigBody(b, c.From); err != nil {
			return nil, err
		}
		b = appendMembers(b, c.Target)
		if len(c.Absent) > 0 {
			b = binary.BigEndian.AppendUint16(b, uint16(len(c.Absent)))
			for _, v := range c.Absent {
				b = appendVoter(b, v)
			}
		}
	}
	return b, nil
}

func appendMembers(b []byte, ms []Member) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(ms)))
	for _, m := range ms {
		b = appendVoter(b, m.Voter)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.Endpoints)))
		for _, e := range m.Endpoints {
			b = appendString(b, e.Name)
			b = appendString(b, e.Host)
			b = binary.BigEndian.AppendUint16(b, e.Port)
		}
	}
	return b
}

func (rd *reader) members() []Member {
	var out []Member
	n := int(rd.u16())
	for i := 0; i < n && rd.err == nil; i++ {
		m := Member{Voter: rd.voter()}
		ne := int(rd.u16())
		for j := 0; j < ne && rd.err == nil; j++ {
			m.Endpoints = append(m.Endpoints, Endpoint{Name: rd.str(), Host: rd.str(), Port: rd.u16()})
		}
		out = append(out, m)
	}
	return out
}

// checkSizes refuses what the uint16 counts cannot hold.
func (r Register) checkSizes() error {
	const limit = 0xffff
	if len(r.ISR) > limit || len(r.Voters) > limit || len(r.ClusterID) > limit {
		return fmt.Errorf("caspaxos: register too large (%d ISR, %d voters, cluster id of %d bytes)",
			len(r.ISR), len(r.Voters), len(r.ClusterID))
	}
	all := r.Voters
	if r.Change != nil {
		if len(r.Change.Target) > limit || len(r.Change.Absent) > limit {
			return fmt.Errorf("caspaxos: register change to %d voters", len(r.Change.Target))
		}
		all = append(slices.Clip(all), r.Change.Target...)
	}
	for _, m := range all {
		if len(m.Endpoints) > limit {
			return fmt.Errorf("caspaxos: voter %s has %d endpoints", m.Voter, len(m.Endpoints))
		}
		for _, e := range m.Endpoints {
			if len(e.Name) > limit || len(e.Host) > limit {
				return fmt.Errorf("caspaxos: voter %s endpoint name or host too long", m.Voter)
			}
		}
	}
	return nil
}

// UnmarshalBinary decodes what MarshalBinary wrote, in this or an earlier
// version; nil or empty input is the empty register.
func (r *Register) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		*r = Register{}
		return nil
	}
	rd := reader{b: b}
	var out Register
	switch v := rd.u8(); v {
	case registerV1:
		out.Epoch = int32(rd.u32())
		out.Active = rd.voter()
		out.Lease = rd.u64()
		out.ISR = rd.voters()
	case registerVersion, registerV3, registerV4:
		out.ClusterID = rd.str()
		out.Epoch = int32(rd.u32())
		out.Active = rd.voter()
		out.Lease = rd.u64()
		out.ConfigVersion = int64(rd.u64())
		out.MetaMinISR = int32(rd.u32())
		out.ISR = rd.voters()
		out.Voters = rd.members()
		if v >= registerV3 {
			c := &VoterChange{ID: int64(rd.u64())}
			c.From = rd.config()
			c.Target = rd.members()
			if v == registerV4 {
				c.Absent = rd.voters()
			}
			out.Change = c
		}
	default:
		return fmt.Errorf("caspaxos: register version %d, want %d to %d", v, registerV1, registerV4)
	}
	if err := rd.finish("register"); err != nil {
		return err
	}
	*r = out
	return nil
}

// Clone returns a deep copy of r.
func (r Register) Clone() Register {
	r.ISR = slices.Clone(r.ISR)
	r.Voters = slices.Clone(r.Voters)
	for i := range r.Voters {
		r.Voters[i].Endpoints = slices.Clone(r.Voters[i].Endpoints)
	}
	r.Change = r.Change.clone()
	return r
}

// InISR reports whether v, this exact incarnation, is in the ISR.
func (r Register) InISR(v Voter) bool { return slices.Contains(r.ISR, v) }

// IsVoter reports whether v, this exact incarnation, is a member.
func (r Register) IsVoter(v Voter) bool {
	return slices.ContainsFunc(r.Voters, func(m Member) bool { return m.Voter == v })
}

// Member returns the member with voter id id, if any.
func (r Register) Member(id int32) (Member, bool) {
	i := slices.IndexFunc(r.Voters, func(m Member) bool { return m.Voter.ID == id })
	if i < 0 {
		return Member{}, false
	}
	return r.Voters[i], true
}

// minISR is the floor every ISR change keeps: MetaMinISR, and never less
// than one voter (the active controller).
func (r Register) minISR() int { return max(int(r.MetaMinISR), 1) }

// EpochError is a compare-and-set that found another epoch (or another
// active controller): the caller has been deposed or is out of date.
type EpochError struct {
	Expected int32
	Current  Register
}

func (e *EpochError) Error() string {
	return fmt.Sprintf("caspaxos: register epoch is %d (active %s), expected %d", e.Current.Epoch, e.Current.Active, e.Expected)
}

// ConfigVersionError is a configuration compare-and-set that found another
// ConfigVersion in the expected epoch: the caller planned from a stale
// configuration and must re-read before trying again.
type ConfigVersionError struct {
	Expected int64
	Current  Register
}

func (e *ConfigVersionError) Error() string {
	return fmt.Sprintf("caspaxos: register config version is %d, expected %d", e.Current.ConfigVersion, e.Expected)
}

// Errors of the Register changes.
var (
	// ErrNotInISR: a takeover by a voter (incarnation) outside the
	// metadata ISR, which may lack committed metadata.
	ErrNotInISR = errors.New("caspaxos: voter not in the metadata ISR")
	// ErrLeaseRenewed: the lease moved since the caller saw it stall, so
	// the active controller is alive and the takeover is withdrawn.
	ErrLeaseRenewed = errors.New("caspaxos: lease renewed since observed")
	// ErrBelowMinISR: an ISR change would leave fewer than MetaMinISR
	// voters, or would leave out the active controller.
	ErrBelowMinISR = errors.New("caspaxos: ISR below the metadata min ISR")
	// ErrClusterID: the register belongs to another cluster.
	ErrClusterID = errors.New("caspaxos: register belongs to another cluster")
	// ErrBadConfig: an ISR or voter change that is not the change it
	// claims to be (a shrink that adds, an ISR member that is no voter…).
	ErrBadConfig = errors.New("caspaxos: invalid register configuration change")
)

// RegisterChange turns a function over a decoded Register into a Change.
func RegisterChange(f func(r *Register) error) Change {
	return func(cur []byte) ([]byte, error) {
		var r Register
		if err := r.UnmarshalBinary(cur); err != nil {
			return nil, err
		}
		r = r.Clone()
		if err := f(&r); err != nil {
			return nil, err
		}
		return r.MarshalBinary()
	}
}

// CompareAndSet changes the register with f only if its epoch is still
// expected, Kafka's CheckOp(/controller_epoch) in CASPaxos form. f must be
// idempotent (see Change).
func CompareAndSet(expected int32, f func(r *Register) error) Change {
	return RegisterChange(func(r *Register) error {
		if r.Epoch != expected {
			return &EpochError{Expected: expected, Current: *r}
		}
		return f(r)
	})
}

// Bootstrap writes the first value of a cluster's register if it was never
// written: epoch 0 with no active controller, voters as configured
// (controller.quorum.voters, each with the incarnation it formatted), the
// ISR all of them (every empty log holds every committed record) and
// ConfigVersion 1, so that the first takeover starts epoch 1. A register
// already bootstrapped for clusterID is left as it is (the change is then a
// read); one of another cluster is refused with ErrClusterID.
func Bootstrap(clusterID string, voters []Member, metaMinISR int32) Change {
	return RegisterChange(func(r *Register) error {
		if r.ClusterID == clusterID && clusterID != "" {
			return nil
		}
		if r.ClusterID != "" || r.Epoch != 0 || len(r.ISR) != 0 {
			return fmt.Errorf("%w: register of cluster %q (epoch %d), bootstrapping %q", ErrClusterID, r.ClusterID, r.Epoch, clusterID)
		}
		b, err := BootstrapValue(clusterID, voters, metaMinISR)
		if err != nil {
			return err
		}
		*r = b
		return nil
	})
}

// BootstrapValue is the value Bootstrap writes, after checking it: a
// cluster id, at least one voter, no zero or repeated voter id, and
// 0 ≤ metaMinISR ≤ len(voters).
func BootstrapValue(clusterID string, voters []Member, metaMinISR int32) (Register, error) {
	if clusterID == "" || len(voters) == 0 {
		return Register{}, fmt.Errorf("%w: bootstrap needs a cluster id and voters", ErrBadConfig)
	}
	if metaMinISR < 0 || int(metaMinISR) > len(voters) {
		return Register{}, fmt.Errorf("%w: metadata min ISR %d with %d voters", ErrBadConfig, metaMinISR, len(voters))
	}
	r := Register{ClusterID: clusterID, ConfigVersion: 1, MetaMinISR: metaMinISR}
	for _, m := range voters {
		if m.Voter.IsZero() || slices.ContainsFunc(r.ISR, func(v Voter) bool { return v.ID == m.Voter.ID }) {
			return Register{}, fmt.Errorf("%w: bootstrap voter %s is zero or repeated", ErrBadConfig, m.Voter)
		}
		r.ISR = append(r.ISR, m.Voter)
	}
	r.Voters = Register{Voters: voters}.Clone().Voters
	return r, nil
}

// Takeover makes me the active controller in epoch seenEpoch+1 with a
// fresh lease, only if the register is still at seenEpoch with lease
// seenLease (the lease the caller watched stall) and me, this exact
// incarnation, is in the ISR. Already applied (epoch seenEpoch+1 with me
// active), it succeeds without another change.
//
// A register never written (no Bootstrap) is taken over with ISR {me}: the
// single-voter form the package's simulator exercises. A controller quorum
// bootstraps first and never relies on it.
func Takeover(seenEpoch int32, seenLease uint64, me Voter) Change {
	return takeover(seenEpoch, seenLease, me, 0, false)
}

// TakeoverNonce is Takeover with the new epoch's lease counter starting at
// nonce instead of 0, a number the caller draws at random for each
// takeover it proposes. The value it writes is then this proposal's alone:
// "already applied" means lease == nonce, and a register showing the
// caller active with another lease is an earlier takeover of its own (a
// cancelled attempt, a previous life), refused with an EpochError. A
// controller that finds its value chosen, even after an indeterminate
// round, knows it was first chosen after the proposal started.
func TakeoverNonce(seenEpoch int32, seenLease uint64, me Voter, nonce uint64) Change {
	return takeover(seenEpoch, seenLease, me, nonce, true)
}

func takeover(seenEpoch int32, seenLease uint64, me Voter, lease uint64, exact bool) Change {
	return RegisterChange(func(r *Register) error {
		if r.Epoch == seenEpoch+1 && r.Active == me && (!exact || r.Lease == lease) {
			return nil
		}
		if r.Epoch != seenEpoch {
			return &EpochError{Expected: seenEpoch, Current: *r}
		}
		if r.Lease != seenLease {
			return ErrLeaseRenewed
		}
		switch {
		case r.ClusterID == "" && len(r.ISR) == 0 && r.Epoch == 0:
			r.ISR = []Voter{me}
		case !r.InISR(me):
			return ErrNotInISR
		}
		r.Epoch++
		r.Active = me
		r.Lease = lease
		return nil
	})
}

// Renew bumps the lease from fromLease to fromLease+1 if me is still the
// active controller in epoch. Already applied, it succeeds unchanged.
func Renew(epoch int32, me Voter, fromLease uint64) Change {
	return RegisterChange(func(r *Register) error {
		if r.Epoch != epoch || r.Active != me {
			return &EpochError{Expected: epoch, Current: *r}
		}
		switch r.Lease {
		case fromLease + 1:
			return nil
		case fromLease:
			r.Lease++
			return nil
		}
		return fmt.Errorf("caspaxos: lease is %d, renewal from %d", r.Lease, fromLease)
	})
}

// ShrinkISR removes voters from the metadata ISR: isr must be a subset of
// the current ISR that keeps the active controller and at least MetaMinISR
// voters. It applies only in epoch (so only for that epoch's active
// controller) and at configVersion, which it bumps. Already applied, it
// succeeds unchanged.
func ShrinkISR(epoch int32, configVersion int64, isr []Voter) Change {
	return changeISR(epoch, configVersion, isr, func(r *Register) error {
		for _, v := range isr {
			if !r.InISR(v) {
				return fmt.Errorf("%w: shrink adds %s to ISR %v", ErrBadConfig, v, r.ISR)
			}
		}
		return nil
	})
}

// ExpandISR adds voters to the metadata ISR: isr must contain the current
// ISR, and every voter it adds must be a member by exact incarnation (a
// voter wiped since cannot be added under its old identity). Epoch and
// configVersion as for ShrinkISR.
func ExpandISR(epoch int32, configVersion int64, isr []Voter) Change {
	return changeISR(epoch, configVersion, isr, func(r *Register) error {
		for _, v := range r.ISR {
			if !slices.Contains(isr, v) {
				return fmt.Errorf("%w: expand drops %s from ISR %v", ErrBadConfig, v, r.ISR)
			}
		}
		for _, v := range isr {
			if len(r.Voters) > 0 && !r.IsVoter(v) {
				return fmt.Errorf("%w: %s is not a voter", ErrBadConfig, v)
			}
			// While a change is open, the ISR stays within its target too,
			// so that FinishVoterChange can always apply.
			if c := r.Change; c != nil && !slices.Contains(c.TargetVoters(), v) {
				return fmt.Errorf("%w: %s leaves the quorum in change %d", ErrBadConfig, v, c.ID)
			}
		}
		return nil
	})
}

func changeISR(epoch int32, configVersion int64, isr []Voter, check func(r *Register) error) Change {
	isr = slices.Clone(isr)
	return CompareAndSet(epoch, func(r *Register) error {
		if r.ConfigVersion == configVersion+1 && slices.Equal(r.ISR, isr) {
			return nil // already applied
		}
		if r.ConfigVersion != configVersion {
			return &ConfigVersionError{Expected: configVersion, Current: *r}
		}
		if err := checkISR(r, isr); err != nil {
			return err
		}
		if err := check(r); err != nil {
			return err
		}
		r.ISR = slices.Clone(isr)
		r.ConfigVersion++
		return nil
	})
}

// checkISR holds for every ISR a change may write: an active controller in
// it, at least the minimum, no voter twice.
func checkISR(r *Register, isr []Voter) error {
	if r.Active.IsZero() || !slices.Contains(isr, r.Active) {
		return fmt.Errorf("%w: ISR %v leaves out the active controller %s", ErrBelowMinISR, isr, r.Active)
	}
	if len(isr) < r.minISR() {
		return fmt.Errorf("%w: ISR %v has fewer than %d voters", ErrBelowMinISR, isr, r.minISR())
	}
	for i, v := range isr {
		if slices.Contains(isr[:i], v) {
			return fmt.Errorf("%w: %s twice in ISR %v", ErrBadConfig, v, isr)
		}
	}
	return nil
}

// SetISR replaces the metadata ISR if the register is still in epoch,
// whatever its ConfigVersion (which it bumps): the unconditional form for
// tests and tools. The controller uses ShrinkISR and ExpandISR, which also
// check the ConfigVersion.
func SetISR(epoch int32, isr []Voter) Change {
	isr = slices.Clone(isr)
	return CompareAndSet(epoch, func(r *Register) error {
		if slices.Equal(r.ISR, isr) {
			return nil
		}
		if err := checkISR(r, isr); err != nil {
			return err
		}
		r.ISR = slices.Clone(isr)
		r.ConfigVersion++
		return nil
	})
}

// SetVoters replaces the quorum's members in epoch at configVersion (which
// it bumps): the ISR must stay within the new members, so a voter leaves
// the ISR (ShrinkISR) before it leaves the quorum. It writes the register
// only and moves no proposer: a membership change that moves the
// proposers goes through BeginVoterChange and FinishVoterChange (package
// voter's ChangeVoters), and SetVoters refuses while one is open. Already
// applied, it succeeds unchanged.
func SetVoters(epoch int32, configVersion int64, voters []Member) Change {
	voters = Register{Voters: voters}.Clone().Voters
	return CompareAndSet(epoch, func(r *Register) error {
		if r.ConfigVersion == configVersion+1 && slices.EqualFunc(r.Voters, voters, equalMember) {
			return nil
		}
		if r.ConfigVersion != configVersion {
			return &ConfigVersionError{Expected: configVersion, Current: *r}
		}
		if r.Change != nil {
			return fmt.Errorf("%w (change %d)", ErrChangeInProgress, r.Change.ID)
		}
		next := Register{Voters: voters}
		for _, v := range r.ISR {
			if !next.IsVoter(v) {
				return fmt.Errorf("%w: ISR member %s would not be a voter", ErrBadConfig, v)
			}
		}
		r.Voters = Register{Voters: voters}.Clone().Voters
		r.ConfigVersion++
		return nil
	})
}

func equalMember(a, b Member) bool {
	return a.Voter == b.Voter && slices.Equal(a.Endpoints, b.Endpoints)
}
