package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-io/sluice/admin"
	"github.com/sluice-io/sluice/cmd/sluice/cli"
	"github.com/sluice-io/sluice/connect/api"
	"github.com/sluice-io/sluice/connect/runtime"
)

const connectWorkerUsage = `usage: sluice connect [--config FILE] [--set KEY=VALUE]... [flags]
       sluice connect --standalone WORKER.properties CONNECTOR-FILE...
       sluice connect <subcommand> ...   (list, status, create, ...: see below)

Runs a Kafka Connect worker until Ctrl-C or SIGTERM: connectors run as
plugin processes (from plugin.path, by default the plugins directory next
to this binary), records move over the Kafka protocol, and the Kafka
Connect REST API answers on listeners (default http://127.0.0.1:8083).
Settings have Kafka Connect's names, so Kafka's connect-distributed.properties
works with only bootstrap.servers changed.

Distributed mode (the default) keeps configs, offsets and statuses in the
compacted topics connect-configs, connect-offsets and connect-status and
shares work with every worker of the same group.id. Standalone mode keeps
offsets in offset.storage.file.filename and runs the connectors given as
files (Kafka's POST body, a config object, or a .properties file).

flags:
  --config FILE            worker properties file (default: built-in defaults)
  --set KEY=VALUE          override one setting (repeatable), after --config
  --standalone             standalone mode: the first argument is the worker
                           properties file, the others connector files
  --log-format FORMAT      text (default) or json
  --log-level LEVEL        debug, info (default), warn or error

Sluice-specific settings: admin.listener (host:port serving /metrics,
default 127.0.0.1:9645, empty = off), plugin.memory.limit.bytes (per plugin
process, 0 = none). Connector settings restart.policy (always|never),
restart.backoff.ms and restart.backoff.max.ms control automatic restarts of
failed tasks.

`

func runConnect(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && cli.IsConnectVerb(args[0]) {
		return cli.RunConnect(args, stdout, stderr)
	}
	fs := flag.NewFlagSet("connect", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgFile := fs.String("config", "", "")
	var sets setFlags
	fs.Var(&sets, "set", "")
	standalone := fs.Bool("standalone", false, "")
	logFormat := fs.String("log-format", "text", "")
	logLevel := fs.String("log-level", "info", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, connectWorkerUsage+cli.ConnectUsage)
			return 0
		}
		fmt.Fprintf(stderr, "sluice connect: %v\n\n%s", cli.FlagError(err, args), connectWorkerUsage)
		return 2
	}
	rest := fs.Args()
	var connectorFiles []string
	switch {
	case *standalone:
		if len(rest) == 0 && *cfgFile == "" {
			fmt.Fprintf(stderr, "sluice connect: --standalone needs the worker properties file\n\n%s", connectWorkerUsage)
			return 2
		}
		if *cfgFile == "" {
			*cfgFile, rest = rest[0], rest[1:]
		}
		connectorFiles = rest
	case len(rest) > 0:
		fmt.Fprintf(stderr, "sluice connect: unexpected argument %q (connector files are for --standalone; create connectors with the REST API or sluice connect create)\n\n%s", rest[0], connectWorkerUsage)
		return 2
	}
	cfg, err := runtime.LoadWorkerConfig(*cfgFile, sets)
	if err != nil {
		fmt.Fprintf(stderr, "sluice connect: %v\n", err)
		return 2
	}
	var connectors []map[string]string
	for _, f := range connectorFiles {
		c, err := cli.ReadConnectorFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "sluice connect: %v\n", err)
			return 2
		}
		connectors = append(connectors, c)
	}
	level := new(slog.LevelVar)
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "sluice connect: --log-level %q: want debug, info, warn or error\n", *logLevel)
		return 2
	}
	opts := &slog.HandlerOptions{Level: level}
	var logger *slog.Logger
	switch *logFormat {
	case "json":
		logger = slog.New(slog.NewJSONHandler(stderr, opts))
	case "text":
		logger = slog.New(slog.NewTextHandler(stderr, opts))
	default:
		fmt.Fprintf(stderr, "sluice connect: --log-format %q: want text or json\n", *logFormat)
		return 2
	}
	if os.Getenv("GOGC") == "" {
		// A worker moves records through short-lived buffers: Go's
		// default GC target spent a fifth of its CPU collecting them
		// (perf/results/connect-profile.md); 400 measured +48% records/s.
		// GOGC in the environment still wins, and GOMEMLIMIT bounds memory.
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if addr := strings.TrimSpace(cfg.Raw["admin.listener"]); addr != "" {
		srv, err := admin.Start(addr, reg, func() error { return nil }, logger)
		if err != nil {
			logger.Error("connect worker failed to start its admin listener", "admin.listener", addr, "err", err)
			return 1
		}
		defer srv.Close()
		logger.Info("admin listening", "addr", srv.Addr().String(), "paths", "/metrics /healthz /readyz")
	}
	err = runtime.Run(ctx, cfg, runtime.Options{
		Standalone: *standalone, Connectors: connectors, Logger: logger, LogLevel: level, Registerer: reg,
		Version: api.ServerInfo{Version: version, Commit: buildCommit()},
	})
	if err != nil {
		logger.Error("connect worker failed", "err", err)
		return 1
	}
	return 0
}
