// Package controllerlink is a broker's link to the cluster's controller
// when the two are different nodes: it follows the controller's metadata
// log into a local copy (a controller.Observer) that the broker reads as
// its metadata source, registers the broker, forwards the requests only
// the controller may decide (CreateTopics and the like) and reserves
// producer ids. Everything travels as Kafka requests over the controller's
// listener: Fetch and FetchSnapshot of __cluster_metadata, BrokerRegistration,
// AllocateProducerIds, and the forwarded requests themselves.
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

// Config says which controller to follow and who this node is.
type Config struct {
	// NodeID is this broker's node.id.
	NodeID int32
	// ControllerID and ControllerAddr are the controller (the one voter
	// of controller.quorum.voters) and its controller listener.
	ControllerID   int32
	ControllerAddr string
	// MaxWait is how long one metadata fetch waits for a change (the
	// controller caps it); 0 means 500 ms.
	MaxWait time.Duration
	Logger  *slog.Logger
	// Clock times the heartbeat interval and the retry backoffs; nil
	// means the wall clock.
	Clock clock.Clock
}

// ErrNotController is Commit's answer: on this node the metadata is
// decided elsewhere; the broker forwards the request instead.
var ErrNotController = errors.New("controllerlink: this node is not the controller; the request must be forwarded")

// Link follows the controller's metadata and carries this broker's
// requests to it. Its methods are safe for concurrent use.
type Link struct {
	cfg    Config
	cl     *kgo.Client
	logger *slog.Logger
	obs    *controller.Observer

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

// Dial connects to the controller and takes the metadata's first
// snapshot, retrying until ctx ends (a broker starting before its
// controller waits for it). The copy does not follow the controller until
// Start.
func Dial(ctx context.Context, cfg Config) (*Link, error) {
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.ControllerAddr), kgo.ClientID(fmt.Sprintf("sluice-broker-%d", cfg.NodeID)),
		kgo.RetryTimeout(0), kgo.RequestRetries(0))
	if err != nil {
		return nil, fmt.Errorf("controllerlink: %w", err)
	}
	l := &Link{cfg: cfg, cl: cl, logger: cfg.Logger, done: make(chan struct{}), stopBeats: make(chan struct{})}
	l.epoch.Store(-1)
	l.previous.Store(-1)
	l.fenced.Store(true) // registrations start fenced
	l.cond = sync.NewCond(&l.mu)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	for attempt := 0; ; attempt++ {
		snap, err := l.fetchSnapshot(ctx)
		if err == nil {
			if l.obs, err = controller.NewObserver(snap, cfg.ControllerID); err == nil {
				break
			}
		}
		if attempt%20 == 0 {
			l.logger.Warn("waiting for the controller's metadata", "controller", cfg.ControllerAddr, "controller_id", cfg.ControllerID, "err", err)
		}
		if !l.sleep(ctx, nil, backoff(attempt)) {
			cl.Close()
			l.cancel()
			return nil, fmt.Errorf("controllerlink: no metadata from controller %d at %s: %w (last error: %v)", cfg.ControllerID, cfg.ControllerAddr, ctx.Err(), err)
		}
	}
	l.applied = l.obs.Next()
	l.logger.Info("following the controller's metadata", "controller_id", cfg.ControllerID, "controller", cfg.ControllerAddr,
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
	l.cl.Close()
	l.mu.Lock()
	l.cond.Broadcast()
	l.mu.Unlock()
	return nil
}

// request sends req to the controller, with no retries: callers decide.
func (l *Link) request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	seeds := l.cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, errors.New("controllerlink: no controller address")
	}
	return seeds[0].Request(ctx, req)
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
