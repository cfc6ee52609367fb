// Package controllerlink is a broker's link to the cluster's controller
// when the two are different nodes: it follows the controller's metadata
// log into a local copy (a controller.Observer) that the broker reads as
// its metadata source, registers the broker, forwards the requests only
// the controller may decide (CreateTopics and the like) and reserves
// producer ids. Everything travels as Kafka requests over the controller's
// listener: Fetch and FetchSnapshot of __cluster_metadata, BrokerRegistration,
// AllocateProducerIds, and the forwarded requests themselves.
//
// The controller is a quorum of voters (controller.quorum.voters), at
// most one of them the active controller at a time, named by its node id
// and a controller epoch that only grows. The link keeps a guess of which
// voter is active and sends every request there. A voter that cannot be
// reached, does not answer within Config.RequestTimeout, or answers
// NOT_CONTROLLER (NOT_LEADER_OR_FOLLOWER for the metadata fetch) moves the
// guess to the next voter, round robin, with a backoff once every voter
// has failed in a row; a NOT_CONTROLLER fetch answer that names the
// leader sends the guess straight there. The follow loop's fetches keep
// the guess right: each answer carries the active controller's id and
// epoch (Fetch's CurrentLeader), and an answer whose epoch is below one
// already seen comes from a deposed controller: it is dropped, its
// records never applied, and the guess moves on. The metadata log is one
// replicated log, its committed offsets the same on every voter, so the
// copy carries on from its own end whichever voter serves it. A
// forwarded request goes to the guess once and is never sent to a second
// voter once it went out (only a voter that could not be connected to
// passes it on): a client that sees NOT_CONTROLLER in the answer retries,
// as with Kafka. A single controller (no epochs in its answers) is the
// one-voter case.
//
// It knows nothing of partitions' data; the broker imports it, never the
// other way round.
package controllerlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/clock"
)

// Voter is one of controller.quorum.voters: a controller's node id and
// its controller listener's host:port.
type Voter struct {
	ID   int32
	Addr string
}

// Config says which controllers to follow and who this node is.
type Config struct {
	// NodeID is this broker's node.id.
	NodeID int32
	// Voters are the controller quorum (controller.quorum.voters), each
	// at its controller listener; the link finds the active one. The
	// first is its first guess.
	Voters []Voter
	// ControllerID and ControllerAddr name a single controller: the
	// shorthand for Voters holding just it. Ignored when Voters is set.
	ControllerID   int32
	ControllerAddr string
	// MaxWait is how long one metadata fetch waits for a change (the
	// controller caps it); 0 means 500 ms.
	MaxWait time.Duration
	// RequestTimeout is how long a voter may take to answer (a metadata
	// fetch: on top of MaxWait) before the link takes it for gone and
	// tries the next; 0 means 5 s. Forwarded requests are bounded by
	// their caller's context and a 30 s cap instead: they go out once.
	RequestTimeout time.Duration
	Logger         *slog.Logger
	// Clock times the heartbeat interval and the retry backoffs; nil
	// means the wall clock.
	Clock clock.Clock
}

// voters is cfg's quorum, checked: the shorthand expanded, ids distinct.
func (cfg *Config) voters() ([]Voter, error) {
	vs := cfg.Voters
	if len(vs) == 0 {
		vs = []Voter{{ID: cfg.ControllerID, Addr: cfg.ControllerAddr}}
	}
	seen := map[int32]bool{}
	for _, v := range vs {
		if v.Addr == "" {
			return nil, fmt.Errorf("controllerlink: controller %d has no address", v.ID)
		}
		if seen[v.ID] {
			return nil, fmt.Errorf("controllerlink: controller %d listed twice among the voters", v.ID)
		}
		seen[v.ID] = true
	}
	return vs, nil
}

// ErrNotController is Commit's answer: on this node the metadata is
// decided elsewhere; the broker forwards the request instead.
var ErrNotController = errors.New("controllerlink: this node is not the controller; the request must be forwarded")

// Link follows the controller's metadata and carries this broker's
// requests to it. Its methods are safe for concurrent use.
type Link struct {
	cfg   Config
	cl    *kgo.Client
	seeds []*kgo.Broker // seeds[i] reaches q.voter(i)
	// side and sideSeeds carry the requests that must not wait behind
	// others (onSide), on connections of their own: a controller answers
	// a connection's requests in order.
	side      *kgo.Client
	sideSeeds []*kgo.Broker
	q         *quorum
	logger    *slog.Logger
	obs       *controller.Observer

	ctx     context.Context
	cancel  context.CancelFunc
	started atomic.Bool
	done    chan struct{} // closed when the follow loop ends

	mu       sync.Mutex
	cond     *sync.Cond
	applied  int64  // obs.Next() after the last fetch
	onChange func() // called after each batch applied; set before Start

	pidMu            sync.Mutex
	nextPID, pidLeft int64

	epoch     atomic.Int64 // the registration's broker epoch; -1 before
	previous  atomic.Int64 // the epoch of a clean shutdown before this start, or -1
	fenced    atomic.Bool  // the controller's last heartbeat answer said fenced
	beating   atomic.Bool  // StartHeartbeats ran
	stopBeats chan struct{}
	beatDone  chan struct{}
}

// Dial connects to the controller quorum and takes the metadata's first
// snapshot from the first voter that serves it, retrying until ctx ends
// (a broker starting before its controllers waits for them). The copy
// does not follow the controller until Start.
func Dial(ctx context.Context, cfg Config) (*Link, error) {
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 500 * time.Millisecond
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	voters, err := cfg.voters()
	if err != nil {
		return nil, err
	}
	addrs := make([]string, len(voters))
	for i, v := range voters {
		addrs[i] = v.Addr
	}
	// One client, each voter one of its seeds: seed i is voter i; and
	// another alike for the requests onSide.
	newClient := func() (*kgo.Client, error) {
		return kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ClientID(fmt.Sprintf("sluice-broker-%d", cfg.NodeID)),
			kgo.RetryTimeout(0), kgo.RequestRetries(0))
	}
	cl, err := newClient()
	if err != nil {
		return nil, fmt.Errorf("controllerlink: %w", err)
	}
	side, err := newClient()
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("controllerlink: %w", err)
	}
	l := &Link{cfg: cfg, cl: cl, seeds: cl.SeedBrokers(), side: side, sideSeeds: side.SeedBrokers(),
		q: newQuorum(voters), logger: cfg.Logger, done: make(chan struct{}), stopBeats: make(chan struct{})}
	if len(l.seeds) != len(voters) || len(l.sideSeeds) != len(voters) {
		l.closeClients()
		return nil, fmt.Errorf("controllerlink: %d voters gave %d connections", len(voters), len(l.seeds))
	}
	l.epoch.Store(-1)
	l.previous.Store(-1)
	l.fenced.Store(true) // registrations start fenced
	l.cond = sync.NewCond(&l.mu)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	var from int
	for failures := 1; ; failures++ {
		from = l.q.current()
		snap, err := l.fetchSnapshot(ctx, from)
		if err == nil {
			if l.obs, err = controller.NewObserver(snap, voters[0].ID); err == nil {
				break
			}
			l.q.miss(from) // a snapshot this copy cannot read: try another voter
		}
		if warnAt(len(voters), failures) {
			l.logger.Warn("waiting for the controller's metadata", "voters", l.q.String(), "err", err)
		}
		if !l.pause(ctx, failures, err) {
			l.closeClients()
			l.cancel()
			return nil, fmt.Errorf("controllerlink: no metadata from the controller quorum %s: %w (last error: %v)", l.q, ctx.Err(), err)
		}
	}
	l.applied = l.obs.Next()
	l.logger.Info("following the controller's metadata", "snapshot_from", voters[from].ID, "voters", l.q.String(),
		"cluster_id", l.obs.ClusterID(), "offset", l.applied)
	return l, nil
}

// OnChange sets what to call after each change applied to the copy (the
// broker applies the new image to its replicas). Call before Start.
func (l *Link) OnChange(fn func()) { l.onChange = fn }

// Start follows the controller's metadata log until Close.
func (l *Link) Start() {
	if l.started.CompareAndSwap(false, true) {
		go l.follow()
	}
}

// ClusterID is the cluster the controller's metadata names.
func (l *Link) ClusterID() string { return l.obs.ClusterID() }

// Image is the copy's newest metadata.
func (l *Link) Image() *controller.Image { return l.obs.Image() }

// Commit refuses: changes are the controller's (see Forward).
func (l *Link) Commit(controller.Plan) (*controller.Image, error) { return nil, ErrNotController }

// Close stops following and closes the connection.
func (l *Link) Close() error {
	l.cancel()
	if l.started.Load() {
		<-l.done
	}
	if l.beating.Load() {
		<-l.beatDone
	}
	l.closeClients()
	l.mu.Lock()
	l.cond.Broadcast()
	l.mu.Unlock()
	return nil
}

// Controller is the active controller as the link last learned it from
// a metadata fetch's answer: its node id and controller epoch (-1 when
// the controller sends none, or 0, as a single controller does); (-1, -1)
// before any answer. Register and WaitCaughtUp fetch, so it is known
// once the broker registered.
func (l *Link) Controller() (id int32, epoch int32) { return l.q.active() }

// send sends req to voter v and waits for its answer at most timeout (no
// bound of its own when 0). A voter that cannot be reached or is too
// slow is missed (the guess moves on), and so is one that answers at the
// top level that it is not the controller; the answer is still returned
// for the caller to read. When ctx itself ends the voter is not to blame.
func (l *Link) send(ctx context.Context, v int, req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	rctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	seeds := l.seeds
	if onSide(req) {
		seeds = l.sideSeeds
	}
	resp, err := seeds[v].Request(rctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		l.q.miss(v)
		if rctx.Err() != nil {
			err = fmt.Errorf("no answer within %v: %w", timeout, err)
		}
		return nil, err
	}
	if topLevelCode(resp) == kerr.NotController.Code {
		l.q.miss(v)
	}
	return resp, nil
}

// sendRound sends req to the guess and, while the outcome moves the link
// on (unreachable, too slow, NOT_CONTROLLER at the top level), to the
// next voters, each at most once: the caller (a heartbeat, a producer id
// block) is waiting, and asks again later. It returns the answer, or the
// last failure, and the voter it came from.
func (l *Link) sendRound(ctx context.Context, req kmsg.Request) (kmsg.Response, int32, error) {
	var err error
	var id int32
	for range l.q.size() {
		v := l.q.current()
		id = l.q.voter(v).ID
		var resp kmsg.Response
		if resp, err = l.send(ctx, v, cloneRequest(req), l.cfg.RequestTimeout); err == nil {
			if code := topLevelCode(resp); code != kerr.NotController.Code {
				return resp, id, nil
			}
			err = kerr.NotController
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, id, err
}

// sendOnce sends req to the guess, once: only a voter that could not even
// be connected to (the request never left) passes it to the next, for at
// most one round. An answer, whatever it says, or a failure after the
// request went out is the caller's: a forwarded request is never done
// twice. It returns the voter it went to.
func (l *Link) sendOnce(ctx context.Context, req kmsg.Request) (kmsg.Response, int32, error) {
	var err error
	var id int32
	for range l.q.size() {
		v := l.q.current()
		id = l.q.voter(v).ID
		var resp kmsg.Response
		if resp, err = l.send(ctx, v, cloneRequest(req), 0); err == nil || !unsent(err) || ctx.Err() != nil {
			return resp, id, err
		}
	}
	return nil, id, err
}

// cloneRequest is a copy of req for one attempt. The client sets a
// request's version as it sends it and may still be writing it after the
// attempt timed out, so the next attempt, to another voter, must not
// share it. req itself is never sent; the copy carries every field (it is
// encoded at the newest version), and the client picks its version again.
func cloneRequest(req kmsg.Request) kmsg.Request {
	out := kmsg.RequestForKey(req.Key())
	if out == nil {
		return req
	}
	req.SetVersion(req.MaxVersion())
	out.SetVersion(req.MaxVersion())
	if err := out.ReadFrom(req.AppendTo(nil)); err != nil {
		return req // kmsg reads what it writes; never reached
	}
	return out
}

// topLevelCode is the top-level error code of the controller APIs' answers
// that carry one; 0 for the others (their errors are per item).
func topLevelCode(resp kmsg.Response) int16 {
	switch r := resp.(type) {
	case *kmsg.FetchResponse:
		return r.ErrorCode
	case *kmsg.FetchSnapshotResponse:
		return r.ErrorCode
	case *kmsg.BrokerRegistrationResponse:
		return r.ErrorCode
	case *kmsg.BrokerHeartbeatResponse:
		return r.ErrorCode
	case *kmsg.AllocateProducerIDsResponse:
		return r.ErrorCode
	case *kmsg.AlterPartitionResponse:
		return r.ErrorCode
	case *kmsg.EnvelopeResponse:
		return r.ErrorCode
	}
	return 0
}

// pause waits before the next try after failures consecutive failures,
// the last err (retryWait), and reports false if ctx ended or the link
// closed meanwhile.
func (l *Link) pause(ctx context.Context, failures int, err error) bool {
	d := retryWait(l.q.size(), failures, err)
	if d == 0 {
		return ctx.Err() == nil && l.ctx.Err() == nil
	}
	return l.sleep(ctx, l.ctx.Done(), d)
}

// sleep waits d on the link's clock and reports true, or false as soon as
// ctx ends or stop (which may be nil) is closed.
func (l *Link) sleep(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	fired := make(chan struct{})
	cancel := l.cfg.Clock.AfterFunc(d, func() { close(fired) })
	defer cancel()
	select {
	case <-fired:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}

// backoff grows from 50 ms to 1 s.
func backoff(attempt int) time.Duration {
	return min(50*time.Millisecond<<min(attempt, 5), time.Second)
}

// codeErr is the Kafka error of a code, nil for none.
func codeErr(code int16) error { return kerr.ErrorForCode(code) }

func (l *Link) closeClients() {
	l.cl.Close()
	l.side.Close()
}

// onSide says which requests travel on the side connections:
//
//   - heartbeats: queued behind a burst of AlterPartitions (one per
//     partition after a restart) they missed the session timeout, and
//     the controller fenced live brokers (Kafka's brokers heartbeat on a
//     channel of their own too);
//   - metadata fetches that do not wait (the end offset WaitCaughtUp asks
//     for): queued behind the follow loop's long poll, parked at an idle
//     controller for its max wait, every forwarded request took 500 ms
//     more, and the quorum bench's DescribeQuorums, sent with a 500 ms
//     timeout, failed for up to a minute after a failover.
func onSide(req kmsg.Request) bool {
	switch r := req.(type) {
	case *kmsg.BrokerHeartbeatRequest:
		return true
	case *kmsg.FetchRequest:
		return r.MaxWaitMillis == 0
	}
	return false
}
