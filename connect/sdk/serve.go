package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// realStdout is the handshake's stdout, set aside before anything can
// print to it; fd 1 then points at stderr (see init).
var (
	realStdout *os.File
	stderr     = os.Stderr
	parentPID  = os.Getppid()
)

// init runs before the plugin's own packages' init functions, so even a
// print there lands on stderr instead of breaking the handshake
// (hashicorp/go-plugin#164: maintainers won't relax the handshake). Only
// when started by a worker: a test binary importing the SDK keeps its
// stdout.
func init() {
	if os.Getenv(connectv1.MagicCookieKey) != connectv1.MagicCookieValue {
		return
	}
	fd, err := syscall.Dup(1)
	if err != nil {
		return
	}
	syscall.CloseOnExec(fd)
	if err := syscall.Dup2(2, 1); err != nil {
		_ = syscall.Close(fd)
		return
	}
	realStdout = os.NewFile(uintptr(fd), "/dev/stdout")
}

// Logger logs to the worker's log: JSON lines on stderr in hclog's shape,
// which the worker re-logs at their level with their attributes.
var Logger = slog.New(slog.NewJSONHandler(stderrWriter{}, &slog.HandlerOptions{
	Level: slog.LevelDebug,
	ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) > 0 {
			return a
		}
		switch a.Key {
		case slog.TimeKey:
			return slog.Attr{} // the worker stamps lines as it reads them
		case slog.LevelKey:
			return slog.String("@level", levelName(a.Value.Any()))
		case slog.MessageKey:
			a.Key = "@message"
		}
		return a
	},
}))

// stderrWriter writes to the process's real stderr even after go-plugin
// swaps os.Stderr for its stdio stream, which the worker does not read.
type stderrWriter struct{}

func (stderrWriter) Write(p []byte) (int, error) { return stderr.Write(p) }

func levelName(v any) string {
	l, _ := v.(slog.Level)
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warn"
	case l >= slog.LevelInfo:
		return "info"
	}
	return "debug"
}

// Serve serves connectors until the worker stops the plugin; it never
// returns. Call it from main. Run by hand (without the worker's
// environment) it prints what the binary is and exits 1.
func Serve(connectors ...Connector) {
	if err := validateConnectors(connectors); err != nil {
		fmt.Fprintln(stderr, "sluice plugin:", err)
		os.Exit(1)
	}
	if os.Getenv(connectv1.MagicCookieKey) != connectv1.MagicCookieValue {
		fmt.Fprintln(stderr, "This binary is a Sluice connector plugin: put it in a directory listed in the worker's plugin.path.")
		for _, c := range connectors {
			d := c.Describe()
			fmt.Fprintf(stderr, "  %s %s (%s)\n", typeName(d.Type), d.Class, d.Version)
		}
		os.Exit(1)
	}
	go watchParent(parentPID, time.Second, func() {
		Logger.Error("worker process went away; exiting")
		os.Exit(2)
	})
	if realStdout != nil {
		// go-plugin prints the handshake to os.Stdout.
		os.Stdout = realStdout
	}
	srv := newServer(connectors, os.Getenv(connectv1.EnvConnector))
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			MagicCookieKey:   connectv1.MagicCookieKey,
			MagicCookieValue: connectv1.MagicCookieValue,
		},
		VersionedPlugins: map[int]plugin.PluginSet{
			connectv1.ProtocolVersion: {connectv1.PluginName: &grpcPlugin{srv: srv}},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			// grpc's default 4 MiB receive limit is smaller than a large
			// Put batch (vault#4957); the host bounds batches itself.
			opts = append(opts, grpc.MaxRecvMsgSize(math.MaxInt32), grpc.MaxSendMsgSize(math.MaxInt32),
				grpc.ForceServerCodecV2(pollCodec{}))
			return grpc.NewServer(opts...)
		},
		Logger: hclogToStderr(),
	})
	os.Exit(0)
}

// watchParent calls exit when the process's parent changes: the worker
// died and the process was re-parented. Pdeathsig covers most deaths; this
// covers the rest (a missed signal, a non-Linux host).
func watchParent(ppid int, every time.Duration, exit func()) {
	for {
		if os.Getppid() != ppid {
			exit()
			return
		}
		time.Sleep(every)
	}
}

func typeName(t ConnectorType) string {
	if t == Sink {
		return "sink"
	}
	return "source"
}

func validateConnectors(cs []Connector) error {
	if len(cs) == 0 {
		return fmt.Errorf("no connectors to serve")
	}
	seen := map[string]bool{}
	for _, c := range cs {
		d := c.Describe()
		switch d.Type {
		case Source:
			if _, ok := c.(SourceConnector); !ok {
				return fmt.Errorf("%s: a source connector needs NewTask() SourceTask", d.Class)
			}
		case Sink:
			if _, ok := c.(SinkConnector); !ok {
				return fmt.Errorf("%s: a sink connector needs NewTask() SinkTask", d.Class)
			}
		default:
			return fmt.Errorf("%s: unknown connector type %d", d.Class, d.Type)
		}
		for _, n := range append([]string{d.Class}, d.Aliases...) {
			if seen[n] {
				return fmt.Errorf("connector class or alias %q twice", n)
			}
			seen[n] = true
		}
	}
	return nil
}

// grpcPlugin registers the three services on go-plugin's gRPC server.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv *server
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	connectv1.RegisterConnectorPluginServer(s, p.srv.connector)
	connectv1.RegisterSourceTaskServer(s, p.srv.source)
	connectv1.RegisterSinkTaskServer(s, p.srv.sink)
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, fmt.Errorf("sdk: plugins serve, they do not dial")
}

func hclogToStderr() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "go-plugin", Output: stderrWriter{}, JSONFormat: true, Level: hclog.Warn})
}
