package controllerlink

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// quorum is the link's view of the controller quorum: the voter it takes
// for the active controller (its guess, where every request goes), the
// highest controller epoch a metadata answer carried, and the active
// controller as last learned. It does no I/O: the link tells it how each
// voter answered and asks where to go next. Safe for concurrent use.
//
// Controller epochs of 0 or less are "absent" (a single controller sends
// none): they are never fenced while no real epoch has been seen, so a
// one-voter link behaves as it did before there were quorums.
type quorum struct {
	voters []Voter

	mu          sync.Mutex
	guess       int   // index in voters of the voter requests go to
	highest     int32 // highest controller epoch seen, 0 before any
	activeID    int32 // the active controller as last learned, -1 before
	activeEpoch int32
}

func newQuorum(voters []Voter) *quorum {
	return &quorum{voters: voters, activeID: -1, activeEpoch: -1}
}

// size is the number of voters.
func (q *quorum) size() int { return len(q.voters) }

// voter is voter i.
func (q *quorum) voter(i int) Voter { return q.voters[i] }

// current is the index of the voter requests go to now.
func (q *quorum) current() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.guess
}

// miss says voter i did not serve as the active controller: unreachable,
// too slow, not the controller, or a deposed one. If it is still the
// guess, the guess moves to the next voter; if another request's miss
// already moved it, nothing changes (two failures of one voter move the
// guess once).
func (q *quorum) miss(i int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.guess == i {
		q.guess = (i + 1) % len(q.voters)
	}
}

// redirect says voter i is not the controller and named leader at epoch
// as the one that is (a Fetch answer's CurrentLeader). The guess goes
// straight to that voter when it is another of the voters and its epoch
// is not older than one seen; otherwise this is a plain miss.
func (q *quorum) redirect(i int, leader, epoch int32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.guess != i {
		return
	}
	q.guess = (i + 1) % len(q.voters)
	if leader < 0 || leader == q.voters[i].ID || realEpoch(epoch) < q.highest {
		return
	}
	for j, v := range q.voters {
		if v.ID == leader {
			q.guess = j
			if realEpoch(epoch) > realEpoch(q.activeEpoch) {
				// A voter's register names a newer controller: it is the
				// active one from now, as a Kafka broker learns a new
				// leader at its election, before it commits anything.
				q.activeID, q.activeEpoch = leader, epoch
			}
			return
		}
	}
}

// answered says voter i answered a metadata fetch with data, naming the
// active controller leader at epoch (either -1 when the answer does not
// say). ok says the answer may be applied: false when its epoch is below
// one already seen, a deposed controller still answering as active; the
// guess then moves on. changed says the answer made a new active
// controller known (another id or epoch than the last learned).
func (q *quorum) answered(i int, leader, epoch int32) (ok, changed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if realEpoch(epoch) < q.highest {
		if q.guess == i {
			q.guess = (i + 1) % len(q.voters)
		}
		return false, false
	}
	q.highest = realEpoch(epoch)
	q.guess = i // an accepted answer is the best evidence there is
	if leader < 0 {
		leader = q.voters[i].ID
	}
	if epoch <= 0 {
		epoch = -1 // absent, however the answer spelled it
	}
	changed = leader != q.activeID || epoch != q.activeEpoch
	q.activeID, q.activeEpoch = leader, epoch
	return true, changed
}

// active is the active controller as last learned, (-1, -1) before any
// metadata answer; its epoch is -1 when the answers carry none.
func (q *quorum) active() (id, epoch int32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.activeID, q.activeEpoch
}

// highestEpoch is the highest controller epoch seen (0 before any).
func (q *quorum) highestEpoch() int32 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.highest
}

// String lists the voters as controller.quorum.voters does: id@host:port.
func (q *quorum) String() string {
	parts := make([]string, len(q.voters))
	for i, v := range q.voters {
		parts[i] = fmt.Sprintf("%d@%s", v.ID, v.Addr)
	}
	return strings.Join(parts, ",")
}

// realEpoch maps the absent epochs (-1, 0) to 0.
func realEpoch(epoch int32) int32 { return max(epoch, 0) }

// errStaleController says a voter answered as the active controller with
// an epoch below one already seen: its answer was dropped.
var errStaleController = errors.New("controllerlink: answer from a deposed controller")

// movesOn reports whether err is one after which the link tries the next
// voter at once: the voter was unreachable or too slow (any error that is
// not a Kafka error code), is not the active controller, or is a deposed
// one. Other Kafka errors are the active controller's answer; the caller
// waits before asking it again.
func movesOn(err error) bool {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return true
	}
	return notController(err)
}

// notController reports whether err is a voter's answer that it is not
// the active controller: NOT_CONTROLLER, or NOT_LEADER_OR_FOLLOWER as a
// node that is not the controller answers a metadata fetch (code 6,
// which franz-go still calls NOT_LEADER_FOR_PARTITION).
func notController(err error) bool {
	return errors.Is(err, kerr.NotController) || errors.Is(err, kerr.NotLeaderForPartition)
}

// unsent reports whether err means the request never left: the voter
// could not be connected to. Only such a request may go to another voter
// without risk of being done twice.
func unsent(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// retryWait is how long to wait before the next try after failures
// consecutive failures of which err is the last: nothing while the round
// of voters that err moved the link through is not over, a backoff after
// a full round or an answer that does not move it.
func retryWait(voters, failures int, err error) time.Duration {
	if movesOn(err) && failures%voters != 0 {
		return 0
	}
	d := backoff(max(failures-1, 0) / voters)
	if voters > 1 {
		// A quorum elects a new controller within its takeover
		// timeout: a link must not sleep through most of a second
		// after it, so rounds are at most quorumMaxBackoff apart.
		d = min(d, quorumMaxBackoff)
	}
	return d
}

// quorumMaxBackoff bounds the pause between rounds of voters.
const quorumMaxBackoff = 200 * time.Millisecond

// warnAt reports whether the failures-th consecutive failure is one to
// log: the end of the first full round, then every 20th. A move that
// finds the new controller within one round logs no warning.
func warnAt(voters, failures int) bool {
	return failures >= voters && (failures-voters)%20 == 0
}
