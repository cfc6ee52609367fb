package netio

import (
	"fmt"
	"log/slog"
)

// Engine names accepted by NewEngine (and Config.Engine).
const (
	EngineAuto  = "auto"  // io_uring when the probe says it works, else std
	EngineUring = "uring" // io_uring or an error
	EngineStd   = "std"   // the portable engine on Go's net package
)

// RingStats are the counters of one io_uring ring. Each field is read
// atomically, but the snapshot as a whole is not.
type RingStats struct {
	Submissions     int64 // SQEs handed to the kernel
	Completions     int64 // CQEs reaped
	BufferExhausted int64 // receives that found the provided-buffer ring empty (ENOBUFS)
	BytesSpliced    int64 // file bytes moved pipe -> socket with IORING_OP_SPLICE
}

// RingStatsReporter is implemented by engines built on io_uring rings. A
// metrics exporter type-asserts an Engine to it; the std engine does not
// implement it.
type RingStatsReporter interface {
	// RingStats returns one snapshot per ring, in ring order.
	RingStats() []RingStats
}

// RingModes are the values of Config.UringMode besides "auto": how an
// io_uring ring waits for completions (docs/architecture.md, "Network
// engines", says what each is).
var RingModes = []string{"defer", "defer-block", "coop", "plain"}

// pinnedMode reports whether cfg names a ring mode instead of measuring.
func pinnedMode(cfg Config) bool { return cfg.UringMode != "" && cfg.UringMode != "auto" }

// NewEngine builds the engine named by cfg.Engine (EngineAuto, EngineUring
// or EngineStd; "" means EngineAuto) and returns it with the name of the one
// chosen. EngineUring fails with the reason io_uring cannot be used;
// EngineAuto then falls back to std and logs why, in one line.
func NewEngine(cfg Config, h Handler, logger *slog.Logger) (Engine, string, error) {
	name := cfg.Engine
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	switch name {
	case EngineStd:
		return NewStdEngine(cfg, h, logger), EngineStd, nil
	case EngineUring:
		e, err := NewUringEngine(cfg, h, logger)
		if err != nil {
			return nil, "", fmt.Errorf("netio: io_uring engine requested but unavailable: %w", err)
		}
		return e, EngineUring, nil
	case EngineAuto, "":
		if err := UringSupported(); err != nil {
			logger.Info("io_uring unavailable; using the std network engine", "reason", err)
			return NewStdEngine(cfg, h, logger), EngineStd, nil
		}
		if pinnedMode(cfg) {
			e, err := NewUringEngine(cfg, h, logger)
			if err != nil {
				return nil, "", fmt.Errorf("netio: io_uring ring mode %q: %w", cfg.UringMode, err)
			}
			return e, EngineUring, nil
		}
		// io_uring only where it answers an idle request as fast as the
		// std engine: the default must never be the slower choice here.
		if w := UringWake(); !w.Pass {
			logger.Warn("io_uring answers an idle request slower than the std network engine on this machine; using std (set netio.engine=uring to force it)",
				"uring_round_trip", w.chosen().RTT, "std_round_trip", w.chosen().RTTStd, "self_test", w.String())
			return NewStdEngine(cfg, h, logger), EngineStd, nil
		}
		e, err := NewUringEngine(cfg, h, logger)
		if err == nil {
			return e, EngineUring, nil
		}
		logger.Info("io_uring unavailable; using the std network engine", "reason", err)
		return NewStdEngine(cfg, h, logger), EngineStd, nil
	default:
		return nil, "", fmt.Errorf("netio: unknown network engine %q (want %q, %q or %q)", name, EngineAuto, EngineUring, EngineStd)
	}
}
