// Package pluginhost runs Sluice connector plugins: it finds plugin
// binaries in plugin.path directories, starts one process per connector
// through hashicorp/go-plugin (gRPC only, Unix sockets, automatic mutual
// TLS, the binary's sha256 checked at every exec), routes their stderr to
// the worker's log, watches them (health checks, call deadlines, resident
// memory) and kills them when they misbehave, and restarts them with
// capped exponential backoff (Supervisor). Plugins die with the worker:
// each is forked from a thread that lives as long as it does with a
// parent-death SIGKILL, in its own process group, and the SDK's parent
// watch covers the rest.
//
// Typed clients (Process.Describe, SourceTask, SinkTask) convert between
// the wire contract (connect/proto/connectv1) and connect/data.
package pluginhost

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Options configure a Host. Zero values take the defaults noted.
type Options struct {
	// SocketDir is where each process's Unix socket directory is made
	// (default os.TempDir()). Keep it short: socket paths are limited to
	// 108 bytes.
	SocketDir string
	Logger    *slog.Logger // default slog.Default()
	// StartTimeout bounds exec to handshake (default 1m).
	StartTimeout time.Duration
	// CallTimeout bounds every RPC but Poll (default 1m).
	CallTimeout time.Duration
	// PollGrace is added to a Poll's max wait for its deadline (default 10s).
	PollGrace time.Duration
	// HealthInterval is how often each process is pinged and its memory
	// checked (default 2s); MaxMissedPings in a row mean hung (default 3).
	HealthInterval time.Duration
	MaxMissedPings int
	// MemoryLimit is the default per-process resident memory limit in
	// bytes (0 = none); Limits.MemoryBytes overrides it.
	MemoryLimit int64
	// KillGrace is how long an orderly close waits for the plugin to exit
	// before killing it (default 5s).
	KillGrace time.Duration
}

func (o *Options) defaults() {
	if o.SocketDir == "" {
		o.SocketDir = os.TempDir()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = time.Minute
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = time.Minute
	}
	if o.PollGrace <= 0 {
		o.PollGrace = 10 * time.Second
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = 2 * time.Second
	}
	if o.MaxMissedPings <= 0 {
		o.MaxMissedPings = 3
	}
	if o.KillGrace <= 0 {
		o.KillGrace = 5 * time.Second
	}
}

// Host starts and tracks plugin processes. Close kills every process it
// started.
type Host struct {
	opts Options

	mu     sync.Mutex
	procs  map[*Process]struct{}
	sups   map[*Supervisor]struct{}
	closed bool
}

// New returns a Host; it creates SocketDir if needed.
func New(opts Options) (*Host, error) {
	opts.defaults()
	if err := os.MkdirAll(opts.SocketDir, 0o700); err != nil {
		return nil, fmt.Errorf("pluginhost: socket dir: %w", err)
	}
	return &Host{opts: opts, procs: map[*Process]struct{}{}, sups: map[*Supervisor]struct{}{}}, nil
}

// Launch starts pl for connector and returns once it answered the
// handshake. The caller owns the Process: Close it, or Host.Close will.
func (h *Host) Launch(ctx context.Context, pl Plugin, connector string, lim Limits) (*Process, error) {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("pluginhost: host closed")
	}
	return h.launch(ctx, pl, connector, lim)
}

func (h *Host) track(p *Process) {
	h.mu.Lock()
	closed := h.closed
	if !closed {
		h.procs[p] = struct{}{}
	}
	h.mu.Unlock()
	if closed { // lost a race with Close
		p.Kill(fmt.Errorf("host closed"))
	}
}

func (h *Host) untrack(p *Process) {
	h.mu.Lock()
	delete(h.procs, p)
	h.mu.Unlock()
}

// Close stops every supervisor and process the host started and waits
// until they are gone.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	sups := make([]*Supervisor, 0, len(h.sups))
	for s := range h.sups {
		sups = append(sups, s)
	}
	procs := make([]*Process, 0, len(h.procs))
	for p := range h.procs {
		procs = append(procs, p)
	}
	h.mu.Unlock()
	for _, s := range sups {
		s.Close()
	}
	for _, p := range procs {
		p.kill(nil)
	}
	for _, p := range procs {
		<-p.done
	}
	return nil
}
