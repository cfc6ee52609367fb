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
	"strings"
	"syscall"
	"time"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/config"
)

// setFlags collects repeated --set key=value flags.
type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, ",") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func runBroker(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgFile := fs.String("config", "", "properties `file` (Kafka's server.properties format); built-in defaults when empty")
	var sets setFlags
	fs.Var(&sets, "set", "override one setting, `key=value` (repeatable); applied after --config")
	engine := fs.String("engine", "", "network `engine`: auto, uring or std (the same as --set netio.engine=...)")
	logFormat := fs.String("log-format", "", "`format` of log lines: text or json (the same as --set log.format=...)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice broker: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *engine != "" {
		sets = append(sets, "netio.engine="+*engine)
	}
	if *logFormat != "" {
		sets = append(sets, "log.format="+*logFormat)
	}
	cfg, err := config.Load(*cfgFile, sets)
	if err != nil {
		fmt.Fprintf(stderr, "sluice broker: %v\n", err)
		return 2
	}
	logger := newLogger(cfg, stderr)
	// Listen for SIGINT/SIGTERM before anything else: a signal that arrives
	// while the logs recover is kept and answered with a clean shutdown
	// once the broker is up, instead of killing it halfway.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	logger.Info("starting sluice broker", "node_id", cfg.NodeID, "listeners", cfg.Raw["listeners"], "log_dirs", cfg.LogDirs, "config_file", *cfgFile)
	logConfig(logger, cfg)

	b, err := broker.New(cfg, logger)
	if err != nil {
		logger.Error("broker failed to start", "err", err)
		return 1
	}
	if err := b.Listen(); err != nil {
		logger.Error("broker failed to listen", "err", err)
		_ = b.Shutdown(context.Background())
		return 1
	}
	s := <-sig
	logger.Info("shutting down", "signal", s.String())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		logger.Error("unclean shutdown", "err", err)
		return 1
	}
	return 0
}

func newLogger(cfg *config.Broker, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// logConfig writes one line with every setting that differs from its
// built-in default and where it came from, so a log shows what ran.
func logConfig(logger *slog.Logger, cfg *config.Broker) {
	var attrs []any
	for _, e := range cfg.Describe() {
		if e.Source != config.SourceStaticBrokerConfig {
			continue
		}
		v := e.Value
		if e.Sensitive {
			v = "(hidden)"
		}
		attrs = append(attrs, slog.String(e.Name, v+" ("+e.Origin+")"))
	}
	logger.Info("config", slog.Group("overrides", attrs...))
}
