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
	"github.com/sluice-io/sluice/cmd/sluice/cli"
	"github.com/sluice-io/sluice/config"
)

// setFlags collects repeated --set key=value flags.
type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, ",") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

const brokerUsage = `usage: sluice broker [--config FILE] [--set KEY=VALUE]... [flags]

Runs a single-node broker until Ctrl-C or SIGTERM. Settings have Kafka's
names (docs/configuration.md lists them): built-in defaults, then the
properties file, then each --set.

flags:
  --config FILE            properties file in Kafka's server.properties format
                           (default: built-in defaults only)
  --set KEY=VALUE          override one setting (repeatable); applied after
                           --config, e.g. --set admin.listener= turns the
                           HTTP admin endpoint off
  --engine ENGINE          network engine: auto (default), uring or std; the
                           same as --set netio.engine=ENGINE
  --log-format FORMAT      log lines as text (default) or json; the same as
                           --set log.format=FORMAT
`

func runBroker(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // help and errors are written below, in our words
	cfgFile := fs.String("config", "", "")
	var sets setFlags
	fs.Var(&sets, "set", "")
	engine := fs.String("engine", "", "")
	logFormat := fs.String("log-format", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, brokerUsage)
			return 0
		}
		fmt.Fprintf(stderr, "sluice broker: %v\n\n%s", cli.FlagError(err, args), brokerUsage)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice broker: unexpected argument %q\n\n%s", fs.Arg(0), brokerUsage)
		return 2
	}
	// The two shorthand flags are checked here so that a bad value is
	// blamed on the flag the user typed, not on a --set they never wrote.
	for _, f := range []struct{ flag, setting, value string }{
		{"--engine", "netio.engine", *engine},
		{"--log-format", "log.format", *logFormat},
	} {
		if f.value == "" {
			continue
		}
		if err := config.CheckValue(f.setting, f.value); err != nil {
			fmt.Fprintf(stderr, "sluice broker: %s %q: %v\n", f.flag, f.value, err)
			return 2
		}
		sets = append(sets, f.setting+"="+f.value)
	}
	cfg, err := config.Load(*cfgFile, sets)
	if err != nil {
		fmt.Fprintf(stderr, "sluice broker: %v\n", err)
		return 2
	}
	logger := newLogger(cfg, stderr)
	if len(cfg.Ignored) > 0 {
		logger.Warn("ignoring Kafka settings that have no meaning in Sluice", "settings", strings.Join(cfg.Ignored, ","))
	}
	// Listen for SIGINT/SIGTERM before anything else: a signal that arrives
	// while the logs recover is kept and answered with a clean shutdown
	// once the broker is up, instead of killing it halfway.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	logger.Info("starting sluice broker", "node_id", cfg.NodeID, "listeners", cfg.Raw["listeners"], "log_dirs", cfg.LogDirs, "config_file", *cfgFile)
	logConfig(logger, cfg)

	b, err := broker.New(cfg, logger)
	if err != nil {
		logger.Error("broker failed to start", "err", explainBind(err, cfg))
		return 1
	}
	if err := b.Listen(); err != nil {
		logger.Error("broker failed to listen", "err", explainListen(err, cfg))
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
