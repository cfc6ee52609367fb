package broker

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/quorumnet"
	"github.com/sluice-io/sluice/segment"
)

// A controller quorum's voter is (node id, incarnation): the incarnation
// is drawn when the voter's directory is first created (voter.Identity),
// so a voter whose disk was wiped comes back as another acceptor and
// never rejoins as its old self. The register's first value must name
// every voter with its incarnation, as Kafka's --initial-controllers names
// each controller's directory id; here the voters gather them from each
// other at their first start instead of an operator passing them:
//
//   - each voter answers quorumnet.ChannelIdentity with itself and, once
//     it has one, the voter set it settled on (quorumVotersFile);
//   - a voter with no settled set asks every other voter; the first full
//     set one of them answers is adopted, else the set is complete once
//     every voter has answered with itself. It is then persisted and never
//     gathered again.
//
// A wiped voter thus learns the set from the others, with its old
// incarnation in it: it runs as a non-member that never takes over until
// a membership change admits its new self (AddRaftVoter, RemoveRaftVoter:
// quorum_membership.go). Before any voter settled, all of them must be
// up once (as with Kafka's format step, on every controller).
//
// After a membership change each voter persists the register's voters
// (with their endpoints) and its cluster id instead, so a restart keeps
// the new membership and a wiped voter adopts it.

// Names of the controller quorum's directories in the first log dir. They
// have no "-N" suffix, so the replica manager never takes them for
// partitions.
const (
	quorumVoterDir   = "__controller_voter"
	quorumMetaLog    = "__cluster_metadata_log"
	quorumVotersFile = "quorum-voters.json"
)

// quorumIdentity is ChannelIdentity's answer.
type quorumIdentity struct {
	NodeID      int32             `json:"node_id"`
	Incarnation string            `json:"incarnation"`
	Voters      []quorumVoterJSON `json:"voters,omitempty"`
	// ClusterID is the register's, once a membership change moved the
	// set away from the one the cluster id was derived from.
	ClusterID string `json:"cluster_id,omitempty"`
}

// quorumVoterJSON is one voter of a settled set; Host and Port are its
// CONTROLLER endpoint as the register names it, kept for a voter added by
// a membership change (controller.quorum.voters need not list it).
type quorumVoterJSON struct {
	ID          int32  `json:"id"`
	Incarnation string `json:"incarnation"`
	Host        string `json:"host,omitempty"`
	Port        uint16 `json:"port,omitempty"`
}

// quorumVotersJSON is quorumVotersFile since membership changes; before,
// the file held the voters' array alone (still read).
type quorumVotersJSON struct {
	ClusterID string            `json:"cluster_id,omitempty"`
	Voters    []quorumVoterJSON `json:"voters"`
}

// settledQuorum is the voter set a voter settled on: the gathered one, or
// the register's after a membership change. ClusterID is empty while the
// set is the one gathered at bootstrap (the cluster id is derived from
// it, quorumClusterID); a change records the register's, which no longer
// derives from the set.
type settledQuorum struct {
	ClusterID string
	Voters    []caspaxos.Member
}

// clusterID is the cluster id the register holds.
func (s settledQuorum) clusterID() string {
	if s.ClusterID != "" {
		return s.ClusterID
	}
	return quorumClusterID(memberVoters(s.Voters))
}

func memberVoters(ms []caspaxos.Member) []caspaxos.Voter {
	out := make([]caspaxos.Voter, len(ms))
	for i, m := range ms {
		out[i] = m.Voter
	}
	return out
}

func voterJSON(m caspaxos.Member) quorumVoterJSON {
	j := quorumVoterJSON{ID: m.Voter.ID, Incarnation: hex.EncodeToString(m.Voter.Incarnation[:])}
	if len(m.Endpoints) > 0 {
		j.Host, j.Port = m.Endpoints[0].Host, m.Endpoints[0].Port
	}
	return j
}

func (j quorumVoterJSON) voter() (caspaxos.Voter, error) {
	v := caspaxos.Voter{ID: j.ID}
	raw, err := hex.DecodeString(j.Incarnation)
	if err != nil || len(raw) != len(v.Incarnation) || j.ID < 0 {
		return v, fmt.Errorf("bad voter %d incarnation %q", j.ID, j.Incarnation)
	}
	copy(v.Incarnation[:], raw)
	return v, nil
}

func encodeVoters(ms []caspaxos.Member) []quorumVoterJSON {
	out := make([]quorumVoterJSON, len(ms))
	for i, m := range ms {
		out[i] = voterJSON(m)
	}
	return out
}

// decodeVoters reads a settled set; listener names the endpoints kept.
func decodeVoters(js []quorumVoterJSON, listener string) ([]caspaxos.Member, error) {
	out := make([]caspaxos.Member, len(js))
	for i, j := range js {
		v, err := j.voter()
		if err != nil {
			return nil, err
		}
		out[i] = caspaxos.Member{Voter: v}
		if j.Host != "" && j.Port != 0 {
			out[i].Endpoints = []caspaxos.Endpoint{{Name: listener, Host: j.Host, Port: j.Port}}
		}
	}
	return out, nil
}

// readSettledVoters reads the voter set this voter settled on, nil if it
// has none yet. A file that exists but does not read is an error: the
// quorum's membership is never guessed again.
func readSettledVoters(fsys segment.FS, dir, listener string) (*settledQuorum, error) {
	path := filepath.Join(dir, quorumVotersFile)
	raw, err := segment.ReadFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("broker: read %s: %w", path, err)
	}
	var f quorumVotersJSON
	if err := json.Unmarshal(raw, &f.Voters); err != nil { // the first format: the array alone
		if err := json.Unmarshal(raw, &f); err != nil || len(f.Voters) == 0 {
			return nil, fmt.Errorf("broker: %s is damaged (%v): restore it from another voter's copy", path, err)
		}
	}
	vs, err := decodeVoters(f.Voters, listener)
	if err != nil {
		return nil, fmt.Errorf("broker: %s: %w", path, err)
	}
	return &settledQuorum{ClusterID: f.ClusterID, Voters: vs}, nil
}

// gatherVoters returns the quorum's voter set, gathering and persisting it
// on a voter's first start (see above). self is this voter; settled is
// told the set once it is persisted, for ChannelIdentity to answer.
func gatherVoters(ctx context.Context, fsys segment.FS, dir string, self caspaxos.Voter, voters []config.Voter, listener string,
	settled func(settledQuorum), logger *slog.Logger) (settledQuorum, error) {
	if sq, err := readSettledVoters(fsys, dir, listener); err != nil || sq != nil {
		if sq == nil {
			return settledQuorum{}, err
		}
		return *sq, err
	}
	got := map[int32]caspaxos.Voter{self.ID: self}
	for attempt := 0; ; attempt++ {
		for _, v := range voters {
			if _, ok := got[v.ID]; ok {
				continue
			}
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			raw, err := quorumnet.Ask(actx, v.Addr(), self.ID, quorumnet.ChannelIdentity, nil)
			cancel()
			if err != nil {
				if attempt%20 == 0 {
					logger.Info("waiting for controller voter to tell its identity", "voter", v.String(), "err", err)
				}
				continue
			}
			var id quorumIdentity
			if err := json.Unmarshal(raw, &id); err != nil {
				return settledQuorum{}, fmt.Errorf("broker: voter %s answered a malformed identity: %w", v, err)
			}
			if len(id.Voters) > 0 {
				// Another voter settled first: its set is the quorum's,
				// even if it names an older incarnation of this node.
				ms, err := decodeVoters(id.Voters, listener)
				if err != nil {
					return settledQuorum{}, fmt.Errorf("broker: voter %s: %w", v, err)
				}
				sq := settledQuorum{ClusterID: id.ClusterID, Voters: ms}
				return sq, persistVoters(fsys, dir, sq, settled, logger, "adopted from node "+fmt.Sprint(v.ID))
			}
			one, err := quorumVoterJSON{ID: id.NodeID, Incarnation: id.Incarnation}.voter()
			if err != nil || one.ID != v.ID {
				return settledQuorum{}, fmt.Errorf("broker: voter %s answered as node %d (%v): check controller.quorum.voters", v, id.NodeID, err)
			}
			got[v.ID] = one
		}
		if len(got) == len(voters) {
			var sq settledQuorum
			for _, v := range got {
				sq.Voters = append(sq.Voters, caspaxos.Member{Voter: v})
			}
			slices.SortFunc(sq.Voters, func(a, b caspaxos.Member) int { return int(a.Voter.ID) - int(b.Voter.ID) })
			return sq, persistVoters(fsys, dir, sq, settled, logger, "gathered")
		}
		select {
		case <-ctx.Done():
			return settledQuorum{}, fmt.Errorf("broker: gathering the controller voters' identities (%d of %d answered): %w", len(got), len(voters), ctx.Err())
		case <-time.After(min(50*time.Millisecond<<min(attempt, 5), time.Second)):
		}
	}
}

func persistVoters(fsys segment.FS, dir string, sq settledQuorum, settled func(settledQuorum), logger *slog.Logger, how string) error {
	raw, err := json.Marshal(quorumVotersJSON{ClusterID: sq.ClusterID, Voters: encodeVoters(sq.Voters)})
	if err != nil {
		return err
	}
	if err := segment.WriteFileAtomic(fsys, filepath.Join(dir, quorumVotersFile), raw); err != nil {
		return fmt.Errorf("broker: write %s: %w", filepath.Join(dir, quorumVotersFile), err)
	}
	settled(sq)
	logger.Info("controller quorum voters settled", "how", how, "voters", fmt.Sprint(memberVoters(sq.Voters)))
	return nil
}

// quorumClusterID is the cluster id every voter of a new quorum derives
// from the same voter set, so their bootstrap proposals agree (the first
// to be chosen wins either way): Kafka's shape, 16 bytes in URL-safe
// base64.
func quorumClusterID(vs []caspaxos.Voter) string {
	h := sha256.New()
	for _, v := range vs {
		_ = binary.Write(h, binary.BigEndian, v.ID)
		h.Write(v.Incarnation[:])
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}
