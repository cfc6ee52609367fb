package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// Process is one running plugin process serving one connector. It is
// watched from the moment it starts: missed health checks, a call past
// its deadline or resident memory over the limit kill it, and Done is
// closed once it is gone, with Err saying why. A Process is never
// restarted; a Supervisor starts a fresh one (go-plugin#306: a Client
// must not be reused).
type Process struct {
	host      *Host
	plugin    Plugin
	connector string
	limits    Limits
	log       *slog.Logger

	client    *plugin.Client
	conn      *grpc.ClientConn
	pid       int
	socketDir string
	stderr    *logWriter

	connectorClient connectv1.ConnectorPluginClient
	sourceClient    connectv1.SourceTaskClient
	sinkClient      connectv1.SinkTaskClient

	killOnce sync.Once
	mu       sync.Mutex
	reason   error
	done     chan struct{} // closed when the process is gone and cleaned up
	release  chan struct{} // closed to let the spawner thread exit
}

// Limits are the per-process knobs. Zero values take the Host's defaults.
type Limits struct {
	// MemoryBytes kills the process when its resident set exceeds it; 0 =
	// no limit.
	MemoryBytes int64
	// Env is added to the process's environment (e.g. GOMEMLIMIT).
	Env []string
}

// Pid is the process id.
func (p *Process) Pid() int { return p.pid }

// Done is closed when the process has exited and been cleaned up.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err says why the process is gone (nil while it runs, or after Close).
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reason
}

// ResidentBytes is the process's resident memory now (for metrics).
func (p *Process) ResidentBytes() (int64, error) { return residentBytes(p.pid) }

// Connector is the connector this process serves.
func (p *Process) Connector() string { return p.connector }

// launch starts the plugin binary for connector. The exec happens on a
// goroutine locked to its own OS thread that lives until the process is
// gone: Linux sends the parent-death signal when the forking *thread*
// exits (golang/go#27505), so forking from an arbitrary goroutine's thread
// could SIGKILL the plugin whenever the Go runtime retires that thread.
func (h *Host) launch(ctx context.Context, pl Plugin, connector string, lim Limits) (*Process, error) {
	if lim.MemoryBytes == 0 {
		lim.MemoryBytes = h.opts.MemoryLimit
	}
	sum, err := hex.DecodeString(pl.SHA256)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("pluginhost: plugin %s has no valid sha256 %q", pl.Path, pl.SHA256)
	}
	sockDir, err := os.MkdirTemp(h.opts.SocketDir, "p")
	if err != nil {
		return nil, fmt.Errorf("pluginhost: socket dir: %w", err)
	}
	log := h.opts.Logger.With("plugin", filepath.Base(pl.Path))
	if connector != "" {
		log = log.With("connector", connector)
	}
	p := &Process{
		host: h, plugin: pl, connector: connector, limits: lim, log: log, socketDir: sockDir,
		stderr: newLogWriter(log), done: make(chan struct{}), release: make(chan struct{}),
	}

	cmd := exec.Command(pl.Path)
	cmd.Env = append(pluginEnv(os.Environ(), lim.Env),
		plugin.EnvUnixSocketDir+"="+sockDir,
		connectv1.EnvConnector+"="+connector)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Pdeathsig: syscall.SIGKILL, // dies with the worker, even after kill -9
		Setpgid:   true,            // its own group: we kill the group, children included
	}
	cfg := &plugin.ClientConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			MagicCookieKey:   connectv1.MagicCookieKey,
			MagicCookieValue: connectv1.MagicCookieValue,
		},
		VersionedPlugins: map[int]plugin.PluginSet{
			connectv1.ProtocolVersion: {connectv1.PluginName: hostPlugin{}},
		},
		Cmd:              cmd,
		SecureConfig:     &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     h.opts.StartTimeout,
		// Stderr lines are ours to route (logWriter); go-plugin's own
		// parsing and logging stay off so each line is logged once.
		Stderr:     p.stderr,
		SyncStdout: p.stderr,
		SyncStderr: p.stderr,
		Logger:     hclog.NewNullLogger(),
	}

	type started struct {
		client *plugin.Client
		rpc    plugin.ClientProtocol
		err    error
	}
	res := make(chan started, 1)
	go func() {
		// Never unlocked: the thread exits with this goroutine, and only
		// after the process is gone.
		runtime.LockOSThread()
		c := plugin.NewClient(cfg)
		rpc, err := c.Client()
		res <- started{c, rpc, err}
		if err != nil {
			return
		}
		<-p.release
	}()
	var st started
	select {
	case st = <-res:
	case <-ctx.Done():
		go func() { // reap whatever the spawner ends up with
			if st := <-res; st.client != nil {
				st.client.Kill()
			}
			close(p.release) // lets the spawner thread go
			_ = os.RemoveAll(sockDir)
		}()
		return nil, ctx.Err()
	}
	if st.err != nil {
		st.client.Kill()
		if errors.Is(st.err, plugin.ErrChecksumsDoNotMatch) {
			st.err = ErrChecksum
		}
		_ = os.RemoveAll(sockDir)
		return nil, fmt.Errorf("pluginhost: start %s: %w%s", pl.Path, st.err, p.stderr.tailNote())
	}
	p.client = st.client
	p.pid = cmd.Process.Pid
	gc, ok := st.rpc.(*plugin.GRPCClient)
	if !ok {
		p.kill(errors.New("not a gRPC plugin"))
		<-p.done
		return nil, fmt.Errorf("pluginhost: %s does not speak gRPC", pl.Path)
	}
	p.conn = gc.Conn
	p.connectorClient = connectv1.NewConnectorPluginClient(gc.Conn)
	p.sourceClient = connectv1.NewSourceTaskClient(gc.Conn)
	p.sinkClient = connectv1.NewSinkTaskClient(gc.Conn)
	p.stderr.setPID(p.pid)
	h.track(p)
	go p.watch(gc)
	return p, nil
}

// hostPlugin is the host half of go-plugin's plugin: the typed clients
// are built from the raw connection instead.
type hostPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (hostPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("pluginhost: the host does not serve")
}

func (hostPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

// watch checks the process every HealthInterval until it is gone: exit,
// health checks and resident memory.
func (p *Process) watch(gc *plugin.GRPCClient) {
	opts := p.host.opts
	tick := time.NewTicker(opts.HealthInterval)
	defer tick.Stop()
	missed := 0
	exitPoll := time.NewTicker(50 * time.Millisecond)
	defer exitPoll.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-exitPoll.C:
			if p.client.Exited() {
				p.kill(fmt.Errorf("plugin process exited unexpectedly%s", p.stderr.tailNote()))
				return
			}
		case <-tick.C:
			if p.limits.MemoryBytes > 0 {
				if rss, err := residentBytes(p.pid); err == nil && rss > p.limits.MemoryBytes {
					p.kill(fmt.Errorf("memory limit exceeded: resident %d MiB > limit %d MiB", rss>>20, p.limits.MemoryBytes>>20))
					return
				}
			}
			if err := p.ping(gc); err != nil {
				missed++
				if missed >= opts.MaxMissedPings {
					p.kill(fmt.Errorf("plugin hung: %d health checks missed (last: %v)", missed, err))
					return
				}
			} else {
				missed = 0
			}
		}
	}
}

func (p *Process) ping(gc *plugin.GRPCClient) error {
	errc := make(chan error, 1)
	go func() { errc <- gc.Ping() }() // Ping takes no context
	select {
	case err := <-errc:
		return err
	case <-time.After(p.host.opts.HealthInterval):
		return errors.New("health check timed out")
	case <-p.done:
		return errors.New("process gone")
	}
}

// kill ends the process for reason (nil = an orderly Close): a failed
// process is SIGKILLed with its process group at once, since a hung or
// bloated one would not answer a graceful shutdown; an orderly close asks
// go-plugin's controller first and kills the group if that takes too long.
func (p *Process) kill(reason error) {
	p.killOnce.Do(func() {
		p.mu.Lock()
		p.reason = reason
		p.mu.Unlock()
		if reason != nil {
			p.log.Error("killing plugin process", "pid", p.pid, "reason", reason.Error())
			p.killGroup()
		}
		go func() {
			if p.client != nil {
				graceful := make(chan struct{})
				go func() { p.client.Kill(); close(graceful) }()
				select {
				case <-graceful:
				case <-time.After(p.host.opts.KillGrace):
					p.killGroup()
					<-graceful
				}
			}
			p.killGroup() // the plugin's own children, if any
			close(p.release)
			_ = os.RemoveAll(p.socketDir)
			p.host.untrack(p)
			close(p.done)
		}()
	})
}

func (p *Process) killGroup() {
	if p.pid > 0 {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
}

// Kill kills the process for reason; it returns at once, Done tells when
// it is gone.
func (p *Process) Kill(reason error) {
	if reason == nil {
		reason = errors.New("killed")
	}
	p.kill(reason)
}

// Close stops the process in an orderly way and waits until it is gone.
func (p *Process) Close() error {
	p.kill(nil)
	<-p.done
	return nil
}

// call runs an RPC with a deadline; an RPC that outlives the deadline
// means the plugin is hung (a healthy plugin answers or returns on
// cancel), so the process is killed and the caller gets the reason.
func (p *Process) call(ctx context.Context, what string, timeout time.Duration, f func(context.Context) error) error {
	select {
	case <-p.done:
		return p.goneErr()
	default:
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := f(cctx)
	if err == nil {
		return nil
	}
	// The server side may cancel at the deadline a moment before our own
	// timer fires, so a DEADLINE_EXCEEDED status close to it counts too.
	deadline, _ := cctx.Deadline()
	timedOut := errors.Is(cctx.Err(), context.DeadlineExceeded) ||
		(status.Code(err) == codes.DeadlineExceeded && time.Until(deadline) < deadlineSlack)
	if ctx.Err() == nil && timedOut {
		reason := fmt.Errorf("plugin hung: %s did not return within %v", what, timeout)
		p.kill(reason)
		return reason
	}
	select {
	case <-p.done:
		return p.goneErr()
	default:
	}
	return rpcError(what, err)
}

// deadlineSlack is how close to a call's deadline a DEADLINE_EXCEEDED
// answer must come to count as the deadline passing.
const deadlineSlack = 250 * time.Millisecond

func (p *Process) goneErr() error {
	if err := p.Err(); err != nil {
		return fmt.Errorf("pluginhost: plugin process gone: %w", err)
	}
	return errors.New("pluginhost: plugin process closed")
}

// pluginGOGC is the GC target plugins get unless the worker's environment
// (or Limits.Env) sets GOGC: a plugin's heap is mostly short-lived batch
// garbage, and GOGC=400 measured +48% records/s end to end
// (perf/results/connect-profile.md). Non-Go plugins ignore it.
const pluginGOGC = "GOGC=400"

// pluginEnv is a plugin's environment: the worker's, then extra, with
// GOGC=400 added when neither sets GOGC.
func pluginEnv(worker, extra []string) []string {
	env := append(slices.Clip(worker), extra...)
	for _, kv := range env {
		if strings.HasPrefix(kv, "GOGC=") {
			return env
		}
	}
	return append(env, pluginGOGC)
}
