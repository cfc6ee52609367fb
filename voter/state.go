package voter

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/segment"
)

// StateFile is the name of the acceptor's state file in Config.Dir, and
// LockFile the lock a running Voter holds there so that two processes
// never answer as one acceptor.
const (
	StateFile = "quorum-state"
	LockFile  = "quorum-state.lock"
)

// The state file is a magic, the CRC-32C of the body, the body's length
// and the body. With stateMagic (the first format, still written while no
// membership change ever reached the voter) the body is
// caspaxos.AcceptorState's own versioned encoding; with stepMagic it is
// that encoding's length (uint32) and bytes, then the proposers' step
// record (stepRecord's versioned encoding). The acceptor state and the
// configuration the proposers use live in one file so that they are lost
// together: a voter that lost its configuration has lost its acceptor too,
// comes back with a new incarnation and proposes nothing until a change
// admits it. The checksum and the length are there so that a damaged file
// is an error: an acceptor that silently started empty would forget its
// promises, which lets two values be chosen, and a proposer that fell back
// to an older configuration could miss a quorum.
var (
	stateMagic = [4]byte{'S', 'L', 'Q', 'V'}
	stepMagic  = [4]byte{'S', 'L', 'Q', 'W'}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

const stateHeader = 4 + 4 + 4

// ErrCorruptState is wrapped by every error about a state file that exists
// but cannot be trusted. Nothing here resets such a file: an operator
// decides, and a voter whose state is removed comes back with a new
// incarnation, outside the register's ISR, as a wiped disk does.
var ErrCorruptState = errors.New("voter: acceptor state file is corrupt")

func encodeState(st caspaxos.AcceptorState, rec *stepRecord) ([]byte, error) {
	body, err := st.MarshalBinary()
	if err != nil {
		return nil, err
	}
	magic := stateMagic
	if rec != nil {
		rb, err := rec.MarshalBinary()
		if err != nil {
			return nil, err
		}
		body = append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
		body = append(body, rb...)
		magic = stepMagic
	}
	b := make([]byte, 0, stateHeader+len(body))
	b = append(b, magic[:]...)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(body, castagnoli))
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...), nil
}

func decodeState(b []byte) (caspaxos.AcceptorState, *stepRecord, error) {
	var st caspaxos.AcceptorState
	if len(b) < stateHeader {
		return st, nil, fmt.Errorf("%w: %d bytes, shorter than its header", ErrCorruptState, len(b))
	}
	magic := [4]byte(b[:4])
	if magic != stateMagic && magic != stepMagic {
		return st, nil, fmt.Errorf("%w: bad magic %x", ErrCorruptState, b[:4])
	}
	sum := binary.BigEndian.Uint32(b[4:8])
	n := binary.BigEndian.Uint32(b[8:12])
	body := b[stateHeader:]
	if uint64(len(body)) != uint64(n) {
		return st, nil, fmt.Errorf("%w: body of %d bytes, header says %d (torn write?)", ErrCorruptState, len(body), n)
	}
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return st, nil, fmt.Errorf("%w: checksum %08x, header says %08x", ErrCorruptState, got, sum)
	}
	var rec *stepRecord
	if magic == stepMagic {
		if len(body) < 4 || uint64(len(body)-4) < uint64(binary.BigEndian.Uint32(body)) {
			return st, nil, fmt.Errorf("%w: acceptor state longer than the body", ErrCorruptState)
		}
		an := binary.BigEndian.Uint32(body)
		rec = &stepRecord{}
		if err := rec.UnmarshalBinary(body[4+an:]); err != nil {
			return st, nil, fmt.Errorf("%w: %w", ErrCorruptState, err)
		}
		body = body[4 : 4+an]
	}
	if err := st.UnmarshalBinary(body); err != nil {
		return st, nil, fmt.Errorf("%w: %w", ErrCorruptState, err)
	}
	if st.Self.IsZero() {
		return st, nil, fmt.Errorf("%w: it names no voter", ErrCorruptState)
	}
	return st, rec, nil
}

// store is where one acceptor's state lives.
type store struct {
	fsys segment.FS
	dir  string
}

func (s store) path() string { return filepath.Join(s.dir, StateFile) }

// load reads the persisted state and step record (nil if no membership
// change ever reached this voter); ok is false when there is none (a new
// or wiped disk). Any other failure, a damaged file included, is an error.
func (s store) load() (st caspaxos.AcceptorState, rec *stepRecord, ok bool, err error) {
	b, err := segment.ReadFile(s.fsys, s.path())
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil, false, nil
	}
	if err != nil {
		return st, nil, false, fmt.Errorf("voter: read %s: %w", s.path(), err)
	}
	st, rec, err = decodeState(b)
	if err != nil {
		return st, nil, false, fmt.Errorf("%s: %w", s.path(), err)
	}
	return st, rec, true, nil
}

// save replaces the state and the step record durably: temp file, fsync,
// rename, fsync of the directory. Only after it returns nil may an answer
// (or a step acknowledgement) that depends on them leave. A failure leaves
// the file unknown (old or new), which is safe only because the answers
// are then never sent and the voter stops.
func (s store) save(st caspaxos.AcceptorState, rec *stepRecord) error {
	b, err := encodeState(st, rec)
	if err != nil {
		return fmt.Errorf("voter: encode acceptor state: %w", err)
	}
	if err := segment.WriteFileAtomic(s.fsys, s.path(), b); err != nil {
		return fmt.Errorf("voter: persist acceptor state: %w", err)
	}
	return nil
}

// open returns the acceptor state of voter nodeID in s and its step
// record, creating a fresh state (AcceptorState{Self} with a new
// incarnation, persisted before it is used) if the directory has none. A
// state of another voter id is an error: the directory belongs to someone
// else.
func (s store) open(nodeID int32) (st caspaxos.AcceptorState, rec *stepRecord, created bool, err error) {
	if nodeID == 0 {
		return st, nil, false, errors.New("voter: node id 0 is not a voter id")
	}
	if err := s.fsys.MkdirAll(s.dir, 0o755); err != nil {
		return st, nil, false, fmt.Errorf("voter: create %s: %w", s.dir, err)
	}
	st, rec, ok, err := s.load()
	if err != nil {
		return st, nil, false, err
	}
	if ok {
		if st.Self.ID != nodeID {
			return st, nil, false, fmt.Errorf("voter: %s holds the state of voter %s, not of node %d", s.path(), st.Self, nodeID)
		}
		return st, rec, false, nil
	}
	inc, err := newIncarnation()
	if err != nil {
		return st, nil, false, err
	}
	st = caspaxos.AcceptorState{Self: caspaxos.Voter{ID: nodeID, Incarnation: inc}}
	if err := s.save(st, nil); err != nil {
		return st, nil, false, err
	}
	return st, nil, true, nil
}

// newIncarnation draws a random version-4 UUID, the shape of Kafka's
// directory id. It must never repeat across a voter's disks, which 122
// random bits ensure.
func newIncarnation() (caspaxos.Incarnation, error) {
	var inc caspaxos.Incarnation
	if _, err := io.ReadFull(rand.Reader, inc[:]); err != nil {
		return inc, fmt.Errorf("voter: draw an incarnation id: %w", err)
	}
	inc[6] = inc[6]&0x0f | 0x40
	inc[8] = inc[8]&0x3f | 0x80
	return inc, nil
}

// Identity returns the identity (voter id, incarnation) of the voter whose
// state is in dir, creating a fresh state with a new incarnation if there
// is none. It is the format step: the cluster's bootstrap voter list
// (Config.Voters) names each voter with the incarnation Identity gave it,
// as Kafka's --initial-controllers names directory ids. A directory that
// is wiped and formatted again gets a new incarnation, which the register
// does not know: the voter can serve reads but never takes over until a
// membership change admits it.
func Identity(fsys segment.FS, dir string, nodeID int32) (caspaxos.Voter, error) {
	if fsys == nil {
		fsys = segment.OSFS()
	}
	s := store{fsys: fsys, dir: dir}
	if err := s.fsys.MkdirAll(dir, 0o755); err != nil {
		return caspaxos.Voter{}, fmt.Errorf("voter: create %s: %w", dir, err)
	}
	lock, err := fsys.Lock(filepath.Join(dir, LockFile))
	if err != nil {
		return caspaxos.Voter{}, fmt.Errorf("voter: lock %s: %w", dir, err)
	}
	defer lock.Close()
	st, _, _, err := s.open(nodeID)
	return st.Self, err
}
