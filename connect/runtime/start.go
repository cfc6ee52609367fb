package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/connect/api"
	"github.com/sluice-io/sluice/connect/convert"
	"github.com/sluice-io/sluice/connect/distributed"
	"github.com/sluice-io/sluice/connect/pluginhost"
	"github.com/sluice-io/sluice/connect/rest"
	"github.com/sluice-io/sluice/connect/storage"
	"github.com/sluice-io/sluice/connect/transform"
)

// Options are what a worker needs besides its WorkerConfig.
type Options struct {
	// Standalone runs without a group or internal topics: configs in
	// memory, offsets in offset.storage.file.filename.
	Standalone bool
	// Connectors are connector configs to create at start (standalone's
	// command-line connector files).
	Connectors []map[string]string
	Logger     *slog.Logger
	LogLevel   *slog.LevelVar
	Registerer prometheus.Registerer
	Version    api.ServerInfo
	// OnListening is called with the REST URLs once they accept requests.
	OnListening func(urls []string)
}

// Run runs a worker until ctx ends: plugins discovered in plugin.path,
// the stores, the REST API on listeners, and in distributed mode the
// connect group. It returns nil after a clean stop.
func Run(ctx context.Context, cfg *WorkerConfig, o Options) error {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	logger := o.Logger
	for _, k := range cfg.Unknown {
		logger.Warn("the worker configuration '" + k + "' was supplied but isn't a known config")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	clientOpts := []kgo.Opt{kgo.SeedBrokers(cfg.BootstrapServers...), kgo.ClientID(clientID(cfg))}

	socketDir, err := os.MkdirTemp("", "sluice-connect-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(socketDir)
	host, err := pluginhost.New(pluginhost.Options{SocketDir: socketDir, Logger: logger})
	if err != nil {
		return err
	}
	defer host.Close()
	cfg.PluginPath = absPluginPath(cfg.PluginPath)
	found, errs := host.Discover(ctx, cfg.PluginPath)
	for _, e := range errs {
		logger.Warn("plugin discovery", "err", e)
	}
	for _, p := range found {
		for _, d := range p.Connectors {
			logger.Info("found connector plugin", "class", d.ClassName, "aliases", d.Aliases, "version", d.Version, "path", p.Path)
		}
	}
	memLimit, err := bytesSetting(cfg.Raw, "plugin.memory.limit.bytes")
	if err != nil {
		return err
	}
	gen := func() int32 { return 0 }
	plugins := &hostPlugins{host: host, plugins: found, generation: func() int32 { return gen() }, memLimit: memLimit}

	admin, err := kgo.NewClient(clientOpts...)
	if err != nil {
		return fmt.Errorf("connect: reaching the cluster: %w", err)
	}
	defer admin.Close()

	var (
		configs ConfigBackend
		status  StatusBackend
		offsets OffsetStore
		ga      *groupAssignment
		assign  Assignment = Standalone{}
	)
	var gaMu sync.Mutex
	if o.Standalone {
		if cfg.OffsetFile == "" {
			return errors.New("connect: standalone mode needs offset.storage.file.filename")
		}
		fo, err := storage.OpenFileOffsetStore(cfg.OffsetFile, logger)
		if err != nil {
			return err
		}
		defer fo.Close()
		configs, status, offsets = NewMemoryConfigs(), NewMemoryStatus(), storageOffsets{fo}
	} else {
		onUpdate := func(u storage.ConfigUpdate) {
			gaMu.Lock()
			g := ga
			gaMu.Unlock()
			if g != nil {
				g.onConfigUpdate(u)
			}
		}
		cs, err := storage.OpenConfigStore(ctx, storage.ConfigStoreOptions{Client: clientOpts, Logger: logger, OnUpdate: onUpdate,
			Topic: storage.TopicSettings{Topic: cfg.ConfigTopic, ReplicationFactor: cfg.ConfigRF}})
		if err != nil {
			return err
		}
		defer cs.Close()
		ko, err := storage.OpenKafkaOffsetStore(ctx, storage.KafkaOffsetStoreOptions{Client: clientOpts, Logger: logger,
			Topic: storage.TopicSettings{Topic: cfg.OffsetTopic, Partitions: cfg.OffsetPartitions, ReplicationFactor: cfg.OffsetRF}})
		if err != nil {
			return err
		}
		defer ko.Close()
		ks, err := storage.OpenKafkaStatusStore(ctx, storage.KafkaStatusStoreOptions{Client: clientOpts, Logger: logger,
			Topic: storage.TopicSettings{Topic: cfg.StatusTopic, Partitions: cfg.StatusPartitions, ReplicationFactor: cfg.StatusRF}})
		if err != nil {
			return err
		}
		defer ks.Close()
		g := &groupAssignment{configs: cs, owned: map[distributed.ID]bool{}}
		gen = g.gen
		configs, offsets = topicConfigs{cs}, storageOffsets{ko}
		status = newAsyncStatus(ctx, ks, g.gen, logger)
		assign = g
		gaMu.Lock()
		ga = g
		gaMu.Unlock()
	}

	metrics := NewMetrics(o.Registerer)
	mode := "distributed"
	if o.Standalone {
		mode = "standalone"
	}
	metrics.SetWorker(o.Version.Version, cfg.GroupID, mode)
	worker := NewWorker(cfg, Deps{
		Launcher: plugins, Offsets: offsets, Status: status,
		NewConverter: func(class string, props map[string]string, isKey bool) (Converter, error) {
			return convert.New(class, props, isKey)
		},
		NewTransforms: func(c map[string]string) (Transformer, error) {
			chain, err := transform.NewChain(c)
			if err != nil || chain.Len() == 0 {
				return nil, err
			}
			return chain, nil
		},
		ClientOpts: clientOpts, Metrics: metrics, Logger: logger,
	})
	herder := NewHerder(cfg, worker, HerderOptions{
		Configs: configs, Status: status, Offsets: offsets, SinkOffsets: groupOffsets{kadm.NewClient(admin)},
		Catalog: plugins, Assignment: assign, Logger: logger, LogLevel: o.LogLevel, Version: o.Version,
		ClusterID: func(ctx context.Context) (string, error) {
			m, err := kadm.NewClient(admin).BrokerMetadata(ctx)
			return m.Cluster, err
		},
	})
	if mc, ok := configs.(*MemoryConfigs); ok {
		mc.OnRestart(herder.ApplyRestart)
	}
	server, err := rest.NewServer(herder, cfg.Listeners, rest.Config{Logger: logger})
	if err != nil {
		return err
	}
	if err := server.Start(); err != nil {
		return err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = server.Shutdown(sctx)
	}()
	urls := server.URLs()
	if _, explicit := cfg.Raw["rest.advertised.host.name"]; !explicit || cfg.Raw["rest.advertised.host.name"] == "" {
		if len(urls) > 0 {
			cfg.AdvertisedURL = strings.TrimSuffix(urls[0], "/")
			worker.id = strings.TrimPrefix(cfg.AdvertisedURL, "http://")
		}
	}
	logger.Info("connect worker listening", "urls", urls, "mode", map[bool]string{true: "standalone", false: "distributed"}[o.Standalone])

	herderDone := make(chan struct{})
	go func() { defer close(herderDone); herder.Run(ctx) }()
	if ga != nil {
		member, err := distributed.NewMember(distributed.Config{
			Client: admin, GroupID: cfg.GroupID, URL: cfg.AdvertisedURL,
			SessionTimeout:    time.Duration(cfg.SessionTimeoutMs) * time.Millisecond,
			HeartbeatInterval: time.Duration(cfg.HeartbeatIntervalMs) * time.Millisecond,
			RebalanceTimeout:  time.Duration(cfg.RebalanceTimeoutMs) * time.Millisecond,
			MaxDelay:          maxDelay(cfg.ScheduledRebalanceMaxDelayMs),
			Snapshot:          ga.snapshot, OnAssignment: ga.onAssignment, Logger: logger,
		})
		if err != nil {
			return err
		}
		ga.mu.Lock()
		ga.member, ga.worker, ga.herder = member, worker, herder
		ga.mu.Unlock()
		memberDone := make(chan struct{})
		go func() { defer close(memberDone); _ = member.Run(ctx) }()
		// Wait for LeaveGroup on the way out, so the other workers take
		// this one's work at once rather than after a session timeout.
		defer func() { <-memberDone }()
	}
	for _, c := range o.Connectors {
		name := c["name"]
		if _, _, err := herder.PutConnectorConfig(ctx, name, maps.Clone(c)); err != nil {
			logger.Error("creating connector from the command line", "connector", name, "err", err)
		}
	}
	if o.OnListening != nil {
		o.OnListening(urls)
	}
	<-ctx.Done()
	<-herderDone
	return nil
}

func maxDelay(ms int64) time.Duration {
	if ms <= 0 {
		return -1
	}
	return time.Duration(ms) * time.Millisecond
}

func clientID(cfg *WorkerConfig) string {
	if id := cfg.Raw["client.id"]; id != "" {
		return id
	}
	return "sluice-connect-" + cfg.GroupID
}

func bytesSetting(raw map[string]string, key string) (int64, error) {
	v := strings.TrimSpace(raw[key])
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("connect: %s=%q: want a number of bytes", key, v)
	}
	return n, nil
}

// groupOffsets is SinkOffsets over the consumer group connect-<name>,
// through connect/storage's helpers.
type groupOffsets struct{ adm *kadm.Client }

func (g groupOffsets) Read(ctx context.Context, connector string) ([]api.ConnectorOffset, error) {
	offs, err := storage.SinkOffsets(ctx, g.adm, connector)
	if err != nil {
		return nil, err
	}
	out := make([]api.ConnectorOffset, 0, len(offs))
	for _, o := range offs {
		out = append(out, api.ConnectorOffset(o))
	}
	return out, nil
}

func (g groupOffsets) Alter(ctx context.Context, connector string, offs []api.ConnectorOffset) error {
	parsed, err := parseSinkOffsets(offs)
	if err != nil {
		return err
	}
	return storage.AlterSinkOffsets(ctx, g.adm, connector, parsed)
}

func (g groupOffsets) Reset(ctx context.Context, connector string) error {
	return storage.ResetSinkOffsets(ctx, g.adm, connector)
}

// absPluginPath resolves relative plugin.path entries against the working
// directory, as Kafka does, so log lines name real directories.
func absPluginPath(dirs []string) []string {
	out := make([]string, 0, len(dirs))
	for _, d := range dirs {
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		out = append(out, d)
	}
	return out
}
