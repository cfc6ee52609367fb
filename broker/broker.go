// Package broker is the Kafka protocol front of Sluice: it answers each Kafka
// API (one file per API, named after it) on top of the partition replicas
// (package replica), the cluster metadata (package controller) and a network
// engine (package netio).
//
// A request's path: netio frames it and calls Broker.Handle (dispatch.go),
// which decodes it with kmsg, checks the version against versions.go, and calls
// the API's handler; the handler returns a kmsg response (encoded here) or, for
// Fetch, a netio.Response of header bytes plus file ranges sent zero-copy.
package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/admin"
	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/controllerlink"
	"github.com/sluice-io/sluice/coordinator"
	"github.com/sluice-io/sluice/fetcher"
	"github.com/sluice-io/sluice/internal/clock"
	"github.com/sluice-io/sluice/netio"
	"github.com/sluice-io/sluice/purgatory"
	"github.com/sluice-io/sluice/replicamgr"
	"github.com/sluice-io/sluice/segment"
)

// cleanShutdownFile marks a log directory whose logs were all flushed and
// closed; its absence at start means the previous run died.
const cleanShutdownFile = ".sluice-clean-shutdown"

// Broker is one Sluice node.
type Broker struct {
	cfg    *config.Broker
	logger *slog.Logger
	fs     segment.FS
	files  *segment.FileCache // bounds the segment files open (segment_files.go)
	clock  clock.Clock
	now    func() time.Time // clock.Now
	locks  dirLocks         // on every log dir, from before the first read to the end of Shutdown

	meta     MetadataSource
	replicas *replicamgr.Manager // this node's partitions (package replicamgr)
	topics   *topicRegistry      // the broker's view of them (topics.go)
	alters   *alterBatcher       // its leaders' ISR changes on their way to the controller
	sessions *fetchSessionCache
	groups   *coordinator.Coordinator
	imageCache
	fetchWaits *fetchPurgatory // long-polling fetches (fetch.go)
	// produceWaits holds acks=all produces waiting for replication
	// (produce_wait.go).
	produceWaits *producePurgatory
	liveness     brokerSessions   // the controller's broker sessions (broker_heartbeat.go)
	fetcher      *fetcher.Manager // copies followed partitions from their leaders (replica_fetcher.go)
	throttles    replicationThrottles
	metaWatch    metaSignal    // fired at every metadata change: wakes metadata fetches (cluster_metadata.go)
	snapshots    snapshotCache // the metadata snapshot being sent in chunks
	// incarnation is this process's random id, sent with its registration
	// to a controller elsewhere: a restart is a new incarnation.
	incarnation [16]byte

	network    func(netio.Config, netio.Handler, *slog.Logger) (netio.Engine, string, error) // nil: no network
	engine     netio.Engine
	engineName string // the engine actually running: std or uring
	listener   net.Listener
	// ctrlListener is the CONTROLLER listener of a node with the
	// controller role in a cluster (nil otherwise): other brokers fetch
	// the metadata and register there.
	ctrlListener net.Listener
	// quorum serves the controller quorum's internal request on the
	// CONTROLLER listener (quorum_transport.go); nil until set.
	quorum atomic.Pointer[quorumHandlers]
	// ctrl is the controller role of a voter in a controller quorum
	// (two or more controller.quorum.voters; quorum_role.go), nil
	// otherwise; ctrlServing says its CONTROLLER listener is served
	// already, before New returns (the voters need each other to start).
	ctrl        *quorumRole
	ctrlServing bool
	// imageReady is set once the replicas and topics exist: before, a
	// controller handler's applyImage only wakes metadata fetches.
	imageReady atomic.Bool

	metrics *metrics
	storage *storageHealth // failing log dirs, for /readyz and the log
	admin   *admin.Server  // nil when admin.listener is empty
	// What /readyz and the metrics collector may look at: they run on the
	// admin server's goroutines from the start of New.
	loaded    atomic.Bool // logs and groups recovered: New is done
	listening atomic.Bool // engine and listener set
	stopping  atomic.Bool // Shutdown began

	stop     chan struct{}
	tasks    sync.WaitGroup
	shutdown sync.Once
}

// Deps are what a Broker takes from its surroundings instead of reaching
// for them, so that a whole broker can run in memory: on a segment.MemFS
// that a test crashes, with a fake clock, with no network, its requests
// handed to Handle.
type Deps struct {
	// FS holds the log dirs; every durable write of the broker (logs,
	// checkpoints, partition.metadata, meta.properties, the cluster
	// metadata, the clean-shutdown marker) goes through it. Required.
	FS segment.FS
	// Clock is the time the broker decides and waits by: flush.ms,
	// retention.ms, segment.ms, producer expiry, LogAppendTime, group
	// session and rebalance timers, offsets expiry, fetch long-poll
	// deadlines and storage-error timing. Nil means the wall clock; a
	// clock.Fake makes all of them fire when a test moves it.
	Clock clock.Clock
	// Metadata is where the cluster metadata comes from and where the
	// broker's changes to it go. Nil means the local store: the
	// cluster-metadata.log in whichever log dir holds it (created in the
	// first on a new cluster), as a single node keeps it. A source given
	// here is the caller's to open; the broker checks its log dirs'
	// identity against its cluster id and closes it on Shutdown.
	Metadata MetadataSource
	// Logger receives the broker's log; nil discards it.
	Logger *slog.Logger
	// Network builds the engine that serves the Kafka listener (New uses
	// netio.NewEngine). Nil means none: no port is bound, Listen only
	// starts the background tasks, and requests reach the broker through
	// Handle alone.
	Network func(netio.Config, netio.Handler, *slog.Logger) (netio.Engine, string, error)
}

// New opens the log directories and metadata on the OS's file system and
// clock, serving the Kafka listener with the netio engine the config asks
// for; it recovers every partition before it returns, so a Broker that New
// returns is ready to serve.
//
// In a cluster (controller.quorum.voters set) a broker-only node follows
// the controller's metadata (controllerlink), waiting for the controller
// up to controllerWaitTimeout; a node with the controller role keeps the
// metadata in its log dirs and also serves its CONTROLLER listener.
func New(cfg *config.Broker, logger *slog.Logger) (*Broker, error) {
	deps := Deps{FS: segment.OSFS(), Logger: logger, Network: netio.NewEngine}
	if cfg.IsController() && !cfg.IsBroker() && len(cfg.Voters) < 2 {
		return nil, errors.New("broker: process.roles=controller (a controller with no broker) runs only in a controller quorum of two or more controller.quorum.voters; a single controller must be process.roles=broker,controller")
	}
	if cfg.ClusterMode() && !cfg.IsController() {
		link, err := dialController(cfg, logger)
		if err != nil {
			return nil, err
		}
		deps.Metadata = link
		b, err := NewWith(cfg, deps)
		if err != nil {
			_ = link.Close()
		}
		return b, err
	}
	return NewWith(cfg, deps)
}

// controllerWaitTimeout is how long a starting broker waits for its
// controller's metadata before it gives up.
const controllerWaitTimeout = 2 * time.Minute

// dialController links a broker-only node to the one voter of
// controller.quorum.voters.
func dialController(cfg *config.Broker, logger *slog.Logger) (*controllerlink.Link, error) {
	ctx, cancel := context.WithTimeout(context.Background(), controllerWaitTimeout)
	defer cancel()
	return dialVoters(ctx, cfg, logger)
}

// dialVoters links to whichever of controller.quorum.voters is the active
// controller (the one voter of a single-controller cluster).
func dialVoters(ctx context.Context, cfg *config.Broker, logger *slog.Logger) (*controllerlink.Link, error) {
	voters := make([]controllerlink.Voter, len(cfg.Voters))
	for i, v := range cfg.Voters {
		voters[i] = controllerlink.Voter{ID: v.ID, Addr: v.Addr()}
	}
	link, err := controllerlink.Dial(ctx, controllerlink.Config{NodeID: cfg.NodeID, Voters: voters, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("broker: %w; check that the controllers (controller.quorum.voters=%s) are running and reachable", err, cfg.Raw["controller.quorum.voters"])
	}
	return link, nil
}

// open is New on a given file system (tests inject failing ones).
func open(cfg *config.Broker, logger *slog.Logger, fsys segment.FS) (*Broker, error) {
	return NewWith(cfg, Deps{FS: fsys, Logger: logger, Network: netio.NewEngine})
}

// NewWith is New on the given dependencies. Its order is what keeps a
// failed start from touching a log directory: lock every directory before
// reading anything (a second broker stops here), bind the Kafka listener
// before writing anything (a busy port stops here), and only then write
// identities, take the clean-shutdown markers and recover logs
// (openLogDirs).
func NewWith(cfg *config.Broker, deps Deps) (_ *Broker, err error) {
	if deps.FS == nil {
		return nil, errors.New("broker: Deps.FS is nil")
	}
	if deps.Clock == nil {
		deps.Clock = clock.Real()
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkLogDirs(cfg.LogDirs); err != nil {
		return nil, err
	}
	logger := deps.Logger
	b := &Broker{
		cfg:          cfg,
		logger:       logger,
		clock:        deps.Clock,
		now:          deps.Clock.Now,
		network:      deps.Network,
		sessions:     newFetchSessionCache(maxFetchSessions),
		fetchWaits:   purgatory.New[sessionKey](deps.Clock),
		produceWaits: purgatory.New[sessionKey](deps.Clock),
		stop:         make(chan struct{}),
	}
	_, _ = rand.Read(b.incarnation[:])
	b.files = newSegmentFileCache(cfg)
	b.metrics = newMetrics(b, cfg.MetricsPartitionLevel)
	b.storage = newStorageHealth(cfg.LogDirs, b.metrics, logger, b.now)
	b.fs = timedFS{FS: healthFS{FS: deps.FS, h: b.storage}, observe: b.metrics.observeFlush}
	if b.locks, err = lockLogDirs(b.fs, cfg.LogDirs); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			b.locks.release()
		}
	}()
	// The admin endpoint comes up next, so /healthz answers and /readyz
	// says why not while a long recovery runs.
	if cfg.AdminListener != "" {
		if b.admin, err = admin.Start(cfg.AdminListener, b.metrics.reg, b.readiness, logger); err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
		logger.Info("admin listening", "addr", b.admin.Addr().String(), "paths", "/metrics /healthz /readyz")
		defer func() {
			if err != nil {
				_ = b.admin.Close()
			}
		}()
	}
	if b.network != nil {
		if err := b.bind(); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				_ = b.engine.Close()
				if b.listener != nil {
					_ = b.listener.Close()
				}
				if b.ctrlListener != nil {
					_ = b.ctrlListener.Close()
				}
			}
		}()
	}
	if deps.Metadata == nil && cfg.IsController() && len(cfg.Voters) > 1 {
		// A voter of a controller quorum: its controller role starts
		// first, serving the CONTROLLER listener, since the voters
		// need each other before any of them can register a broker.
		var src *quorumSource
		if src, err = b.startQuorum(); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				_ = src.Close()
			}
		}()
		deps.Metadata = src
	}
	_, remote := deps.Metadata.(registrar)
	if remote && cfg.IsBroker() {
		// A controller elsewhere registers this node before the log
		// dirs are touched: a refused or timed-out registration must
		// leave them as they were (their clean-shutdown markers too).
		b.meta = deps.Metadata
		// A clean last stop left this node's epoch in the markers: the
		// controller keeps it eligible where it was (KIP-966).
		b.notePreviousBrokerEpoch(deps.Metadata)
		if err := b.registerSelf(); err != nil {
			return nil, err
		}
	}
	meta, unclean, err := openLogDirs(b.fs, deps.FS, cfg.LogDirs, cfg.NodeID, deps.Metadata, logger)
	if err != nil {
		return nil, err
	}
	b.meta = meta
	if !remote && cfg.IsBroker() {
		// Registering is also a new leadership for every partition
		// this node leads (image.go), before any partition opens with
		// its epoch.
		if err := b.registerSelf(); err != nil {
			return nil, err
		}
	}
	started := b.now()
	b.throttles = newReplicationThrottles(cfg)
	b.fetcher = b.newFetcher()
	b.alters = newAlterBatcher(b.sendAlterBatch)
	if b.replicas, err = replicamgr.New(replicamgr.Deps{
		FS: b.fs, Files: b.files, Config: cfg, NodeID: b.localID(), Clock: b.clock, Logger: logger,
		OnHighWatermark: b.onHighWatermark,
		AlterPartition:  b.alterPartition,
		Followers:       followers{b},
	}); err != nil {
		return nil, err
	}
	b.topics = newTopicRegistry(b.replicas, b.metrics)
	b.imageReady.Store(true)
	if err := b.replicas.Load(b.metaImage()); err != nil {
		_ = b.replicas.Close() // logs each failure; the start's error is the one to return
		return nil, err
	}
	took := b.now().Sub(started)
	b.metrics.recovery.Set(took.Seconds())
	metaFrom := "a source given to the broker"
	if st, ok := meta.(*controller.Store); ok {
		metaFrom = st.Dir()
	}
	logger.Info("logs loaded", "topics", b.topics.count(), "unclean_shutdown", unclean, "metadata_dir", metaFrom, "took", took.Round(time.Millisecond))
	if b.groups, err = b.newCoordinator(); err != nil {
		_ = b.replicas.Close() // logs each failure; the start's error is the one to return
		return nil, err
	}
	if f, ok := b.meta.(followed); ok {
		// From here on the controller's changes reach the replicas as
		// they arrive, not only after this node's own requests.
		f.OnChange(func() { b.applyImage() })
		f.Start()
	}
	if hb, ok := b.meta.(heartbeater); ok && cfg.IsBroker() {
		// Loaded: the controller may unfence this broker now.
		hb.StartHeartbeats(time.Duration(cfg.BrokerHeartbeatIntervalMs) * time.Millisecond)
	}
	b.reportFileDescriptors()
	b.loaded.Store(true)
	return b, nil
}

// readiness is /readyz: logs and groups recovered (New returned), the
// listener accepting, no shutdown under way, and every log dir taking
// writes (a full disk fails every produce to it, so a load balancer or an
// operator must see it).
func (b *Broker) readiness() error {
	switch {
	case b.stopping.Load():
		return errors.New("shutting down")
	case !b.loaded.Load():
		return errors.New("recovering logs")
	case !b.listening.Load():
		return errors.New("the Kafka listener is not accepting yet")
	}
	return b.storage.err()
}

// Stats exposes the network engine's counters.
func (b *Broker) Stats() netio.Stats {
	if b.engine == nil {
		return netio.Stats{}
	}
	return b.engine.Stats()
}

// Shutdown stops serving, flushes and closes every log, writes the clean
// shutdown marker and releases the log directories. It is safe to call more
// than once.
func (b *Broker) Shutdown(ctx context.Context) error {
	var err error
	b.shutdown.Do(func() {
		defer b.locks.release() // last: nothing of this broker writes after it
		b.stopping.Store(true)
		if store, ok := b.meta.(*controller.Store); ok && b.ctrl == nil && b.cfg.ClusterMode() && b.cfg.ControlledShutdownEnable && b.loaded.Load() {
			// This node is the controller too: its leaderships move
			// away, decided here, while it still serves.
			cctx, cancel := context.WithTimeout(ctx, controlledShutdownTimeout)
			if e := b.controlledShutdownSelf(cctx, store); e != nil {
				b.logger.Warn("controlled shutdown", "err", e)
			} else {
				b.logger.Info("controlled shutdown: this node's leaderships moved to other brokers")
			}
			cancel()
		}
		if hb, ok := b.meta.(heartbeater); ok && b.cfg.IsBroker() && b.cfg.ControlledShutdownEnable && b.loaded.Load() {
			// Leaderships move away while this broker still serves, so
			// producers find the new leaders without losing a request.
			cctx, cancel := context.WithTimeout(ctx, controlledShutdownTimeout)
			began := b.now()
			if e := hb.ControlledShutdown(cctx, time.Duration(b.cfg.BrokerHeartbeatIntervalMs)*time.Millisecond); e != nil {
				b.logger.Warn("controlled shutdown", "err", e, "took", b.now().Sub(began))
			} else {
				b.logger.Info("controlled shutdown: the controller moved this broker's leaderships away", "took", b.now().Sub(began))
			}
			cancel()
		}
		if b.ctrl != nil {
			// A voter's controller role stops before its broker side:
			// another voter takes over without waiting for this one's
			// lease to lapse while its listeners close.
			b.ctrl.close()
		}
		b.metrics.ready.Set(0)
		close(b.stop)
		// Parked JoinGroup/SyncGroup requests are answered (coordinator
		// not available) before the engine stops, so clients move on.
		b.groups.Close()
		if b.engine != nil {
			// Closes the listener too when it was served; a bound one
			// that never was is closed below.
			if e := b.engine.Close(); e != nil {
				b.logger.Warn("closing network engine", "err", e)
			}
		}
		if b.ctrlListener != nil && !b.listening.Load() {
			_ = b.ctrlListener.Close()
		}
		if b.listener != nil && !b.listening.Load() {
			_ = b.listener.Close()
		}
		b.tasks.Wait()
		if b.admin != nil {
			if e := b.admin.Close(); e != nil {
				b.logger.Warn("closing admin listener", "err", e)
			}
		}
		b.fetcher.Close() // no follower append after this
		closing := b.now()
		if e := b.replicas.Close(); e != nil {
			err = e
			b.logger.Error("closing logs; not marking a clean shutdown", "err", e)
			return
		}
		b.logger.Info("logs flushed and closed", "took", b.now().Sub(closing))
		if e := b.meta.Close(); e != nil {
			// The metadata log still holds every change; the next
			// start replays it.
			b.logger.Warn("folding the cluster metadata log into its snapshot", "err", e)
		}
		for _, dir := range b.cfg.LogDirs {
			if e := segment.WriteFileAtomic(b.fs, filepath.Join(dir, cleanShutdownFile), cleanShutdownMarker(b.cleanShutdownEpoch())); e != nil {
				b.logger.Warn("writing clean shutdown marker", "dir", dir, "err", e)
			}
		}
		b.logger.Info("broker stopped cleanly")
	})
	return err
}

// startBackgroundTasks runs the replica manager's periodic work (flush,
// retention, producer expiry), the log cleaner and the group
// coordinator's offset expiry.
func (b *Broker) startBackgroundTasks() {
	b.tasks.Add(2)
	go func() {
		defer b.tasks.Done()
		b.replicas.Run(b.stop)
	}()
	go func() {
		defer b.tasks.Done()
		b.replicas.RunCleaner(b.stop)
	}()
	every := func(interval time.Duration, fn func()) {
		if interval <= 0 {
			return
		}
		b.tasks.Add(1)
		go func() {
			defer b.tasks.Done()
			due := make(chan struct{}, 1)
			for {
				disarm := b.clock.AfterFunc(interval, func() {
					select {
					case due <- struct{}{}:
					default:
					}
				})
				select {
				case <-b.stop:
					disarm()
					return
				case <-due:
					fn()
				}
			}
		}()
	}
	every(time.Duration(b.cfg.OffsetsRetentionCheckMs)*time.Millisecond, b.groups.ExpireOffsets)
	if b.isControllerNode() {
		// The controller fences brokers whose heartbeats stopped (a
		// single node has none to fence: the check is a map lookup).
		every(fenceCheckInterval, b.fenceExpiredBrokers)
		if b.cfg.AutoLeaderRebalanceEnable {
			every(time.Duration(b.cfg.LeaderImbalanceCheckIntervalSeconds)*time.Second, b.rebalanceLeaders)
		}
	}
}
