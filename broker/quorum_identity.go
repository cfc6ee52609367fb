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
// a membership change admits its new self. Before any voter settled, all
// of them must be up once (as with Kafka's format step, on every
// controller).

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
}

type quorumVoterJSON struct {
	ID          int32  `json:"id"`
	Incarnation string `json:"incarnation"`
}

func voterJSON(v caspaxos.Voter) quorumVoterJSON {
	return quorumVoterJSON{ID: v.ID, Incarnation: hex.EncodeToString(v.Incarnation[:])}
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

func encodeVoters(vs []caspaxos.Voter) []quorumVoterJSON {
	out := make([]quorumVoterJSON, len(vs))
	for i, v := range vs {
		out[i] = voterJSON(v)
	}
	return out
}

func decodeVoters(js []quorumVoterJSON) ([]caspaxos.Voter, error) {
	out := make([]caspaxos.Voter, len(js))
	for i, j := range js {
		v, err := j.voter()
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// readSettledVoters reads the voter set this voter settled on, nil if it
// has none yet. A file that exists but does not read is an error: the
// quorum's membership is never guessed again.
func readSettledVoters(fsys segment.FS, dir string) ([]caspaxos.Voter, error) {
	raw, err := segment.ReadFile(fsys, filepath.Join(dir, quorumVotersFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("broker: read %s: %w", filepath.Join(dir, quorumVotersFile), err)
	}
	var js []quorumVoterJSON
	if err := json.Unmarshal(raw, &js); err != nil {
		return nil, fmt.Errorf("broker: %s is damaged (%v): restore it from another voter's copy", filepath.Join(dir, quorumVotersFile), err)
	}
	vs, err := decodeVoters(js)
	if err != nil {
		return nil, fmt.Errorf("broker: %s: %w", filepath.Join(dir, quorumVotersFile), err)
	}
	return vs, nil
}

// gatherVoters returns the quorum's voter set, gathering and persisting it
// on a voter's first start (see above). self is this voter; settled is
// told the set once it is persisted, for ChannelIdentity to answer.
func gatherVoters(ctx context.Context, fsys segment.FS, dir string, self caspaxos.Voter, voters []config.Voter,
	settled func([]caspaxos.Voter), logger *slog.Logger) ([]caspaxos.Voter, error) {
	vs, err := readSettledVoters(fsys, dir)
	if err != nil || vs != nil {
		return vs, err
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
				return nil, fmt.Errorf("broker: voter %s answered a malformed identity: %w", v, err)
			}
			if len(id.Voters) > 0 {
				// Another voter settled first: its set is the quorum's,
				// even if it names an older incarnation of this node.
				if vs, err = decodeVoters(id.Voters); err != nil {
					return nil, fmt.Errorf("broker: voter %s: %w", v, err)
				}
				return vs, persistVoters(fsys, dir, vs, settled, logger, "adopted from node "+fmt.Sprint(v.ID))
			}
			one, err := quorumVoterJSON{ID: id.NodeID, Incarnation: id.Incarnation}.voter()
			if err != nil || one.ID != v.ID {
				return nil, fmt.Errorf("broker: voter %s answered as node %d (%v): check controller.quorum.voters", v, id.NodeID, err)
			}
			got[v.ID] = one
		}
		if len(got) == len(voters) {
			vs = make([]caspaxos.Voter, 0, len(got))
			for _, v := range got {
				vs = append(vs, v)
			}
			slices.SortFunc(vs, func(a, b caspaxos.Voter) int { return int(a.ID) - int(b.ID) })
			return vs, persistVoters(fsys, dir, vs, settled, logger, "gathered")
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("broker: gathering the controller voters' identities (%d of %d answered): %w", len(got), len(voters), ctx.Err())
		case <-time.After(min(50*time.Millisecond<<min(attempt, 5), time.Second)):
		}
	}
}

func persistVoters(fsys segment.FS, dir string, vs []caspaxos.Voter, settled func([]caspaxos.Voter), logger *slog.Logger, how string) error {
	raw, err := json.Marshal(encodeVoters(vs))
	if err != nil {
		return err
	}
	if err := segment.WriteFileAtomic(fsys, filepath.Join(dir, quorumVotersFile), raw); err != nil {
		return fmt.Errorf("broker: write %s: %w", filepath.Join(dir, quorumVotersFile), err)
	}
	settled(vs)
	logger.Info("controller quorum voters settled", "how", how, "voters", fmt.Sprint(vs))
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
