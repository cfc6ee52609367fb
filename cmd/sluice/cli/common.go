package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Exit codes shared by every command, so scripts can tell a typo in the
// command line (2) from a cluster that said no or could not be reached (1).
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const (
	brokersEnv     = "SLUICE_BROKERS"
	defaultBrokers = "127.0.0.1:9092"
	defaultTimeout = 10 * time.Second
)

// errReported means the command already told the user what went wrong on
// stderr (for example, one line per missing group) and only the exit code
// is left to set.
var errReported = errors.New("already reported")

// exitStatus ends a command with a given exit code once it has itself told
// the user what happened (an interrupted produce exits 130 after its counts).
type exitStatus struct{ code int }

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError is a bad command line: Run answers it with exit code 2 and the
// command's usage text rather than with a runtime error.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// commonFlags are the flags every cluster-facing command takes.
type commonFlags struct {
	brokers string
	timeout time.Duration
	json    bool
}

const commonFlagsUsage = `  --brokers HOST:PORT,...  brokers to bootstrap from
                           (default: $SLUICE_BROKERS, else 127.0.0.1:9092)
  --timeout DURATION       time limit for the whole command (default 10s)
  --json                   print one JSON document instead of tables
`

// newFlagSet returns a flag set that prints nothing itself: parseArgs
// decides where help and errors go (help to stdout, errors to stderr).
func newFlagSet(name string) (*flag.FlagSet, *commonFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cf := &commonFlags{}
	fs.StringVar(&cf.brokers, "brokers", "", "")
	fs.DurationVar(&cf.timeout, "timeout", defaultTimeout, "")
	fs.BoolVar(&cf.json, "json", false, "")
	return fs, cf
}

// parseArgs parses flags wherever they appear, so that the natural
// "describe my-group --json" works; the flag package alone stops at the
// first positional argument. A "--" ends flag parsing.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	typed := args
	for {
		if err := fs.Parse(args); err != nil {
			return nil, FlagError(err, typed)
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// listFlag collects a flag that may be repeated or given comma-separated
// ("--state Stable --state Empty" or "--state Stable,Empty").
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// resolveBrokers applies the precedence flag > environment > default and
// splits the comma-separated list.
func resolveBrokers(flagValue string) ([]string, error) {
	raw, from := flagValue, "--brokers"
	if raw == "" {
		raw, from = os.Getenv(brokersEnv), "$"+brokersEnv
	}
	if raw == "" {
		raw = defaultBrokers
	}
	var out []string
	for _, b := range strings.Split(raw, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		if strings.ContainsAny(b, " \t/") {
			return nil, usagef("%s: %q is not a host:port address", from, b)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, usagef("%s: no broker addresses given", from)
	}
	return out, nil
}

// client bundles the low-level client (for requests kadm does not wrap the
// way we need) with the admin client built on it.
type client struct {
	kgo *kgo.Client
	adm *kadm.Client
	// opts are the connection options kgo was built with, so a command can
	// open a second client (a consumer) to the same brokers on the same
	// terms.
	opts []kgo.Opt
}

// connect builds a client and proves a broker answers before any real work
// starts. Without the ping, a dead broker surfaces as retries inside the
// first request until the deadline, and the error then says only
// "context deadline exceeded" instead of naming the address that failed.
// extra adds producer or consumer options to the client.
func connect(ctx context.Context, cf *commonFlags, extra ...kgo.Opt) (*client, error) {
	brokers, err := resolveBrokers(cf.brokers)
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("sluice-cli"),
		// The context does not bound a connection's ApiVersions handshake
		// or reads; these options do, so a silent broker cannot outlast
		// --timeout.
		kgo.DialTimeout(cf.timeout),
		kgo.RequestTimeoutOverhead(cf.timeout),
		kgo.RetryTimeout(cf.timeout),
	}
	kcl, err := kgo.NewClient(append(opts[:len(opts):len(opts)], extra...)...)
	if err != nil {
		return nil, usagef("invalid brokers %s: %v", strings.Join(brokers, ","), err)
	}
	if err := kcl.Ping(ctx); err != nil {
		kcl.Close()
		return nil, fmt.Errorf("cannot reach brokers %s: %w", strings.Join(brokers, ","), err)
	}
	return &client{kgo: kcl, adm: kadm.NewClient(kcl), opts: opts}, nil
}

func (c *client) close() { c.kgo.Close() }

// runWithClient is the frame of every cluster-facing command: it connects
// within the --timeout budget, runs fn, and turns whatever fn returns into
// one stderr line and an exit code.
func runWithClient(cf *commonFlags, usage string, stderr io.Writer, fn func(context.Context, *client) error) int {
	if cf.timeout <= 0 {
		return reportUsage(stderr, usage, usagef("--timeout must be positive, got %s", cf.timeout))
	}
	// One deadline for the whole command: however many requests it takes,
	// a dead or stuck broker cannot hold the terminal longer than --timeout.
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
	defer cancel()

	c, err := connect(ctx, cf)
	if err == nil {
		defer c.close()
		err = fn(ctx, c)
	}
	return report(stderr, usage, cf.timeout, err)
}

// runStreaming is the frame of produce and consume, which run as long as
// their input or the user wants: --timeout bounds connecting and each
// request rather than the whole command, and ctx (cancelled on Ctrl-C) tells
// fn to wind down. fn decides what an interruption means for the exit code.
func runStreaming(ctx context.Context, cf *commonFlags, usage string, stderr io.Writer, opts []kgo.Opt, fn func(context.Context, *client) error) int {
	if cf.timeout <= 0 {
		return reportUsage(stderr, usage, usagef("--timeout must be positive, got %s", cf.timeout))
	}
	cctx, cancel := context.WithTimeout(ctx, cf.timeout)
	c, err := connect(cctx, cf, opts...)
	cancel()
	if err == nil {
		defer c.close()
		err = fn(ctx, c)
	}
	return report(stderr, usage, cf.timeout, err)
}

// report maps an error to its exit code, printing it on one line.
func report(stderr io.Writer, usage string, timeout time.Duration, err error) int {
	var ue *usageError
	var es exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &es):
		return es.code
	case errors.Is(err, errReported):
		return exitError
	case errors.As(err, &ue):
		return reportUsage(stderr, usage, err)
	}
	fmt.Fprintf(stderr, "sluice: %s\n", errorLine(err, timeout))
	return exitError
}

func reportUsage(stderr io.Writer, usage string, err error) int {
	fmt.Fprintf(stderr, "sluice: %s\n\n%s", oneLine(err.Error()), usage)
	return exitUsage
}

// errorLine renders err for a human. Timeouts get a hint because "i/o
// timeout" or "context deadline exceeded" alone does not tell the user
// that the limit is theirs to raise.
func errorLine(err error, timeout time.Duration) string {
	msg := err.Error()
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		msg += fmt.Sprintf(" (no answer within %s; raise --timeout?)", timeout)
	}
	return oneLine(msg)
}

// oneLine keeps every message to a single line so that callers can grep
// stderr and nothing looks like a stack trace.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// handleParseError answers a flag parsing failure: help goes to stdout with
// success, anything else is a usage error.
func handleParseError(err error, usage string, stdout, stderr io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	return reportUsage(stderr, usage, err)
}

// newTable returns the writer all human-readable tables go through, so
// every command aligns columns the same way.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// writeJSON emits one indented document; field names come from the
// json tags of the result types, which are the stable scripting interface.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// orDash stands in for an empty cell so table columns stay aligned and
// "nothing here" is visible.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// brokerRef identifies a broker in output.
type brokerRef struct {
	NodeID int32  `json:"node_id"`
	Host   string `json:"host"`
	Port   int32  `json:"port"`
}

func newBrokerRef(m kgo.BrokerMetadata) brokerRef {
	return brokerRef{NodeID: m.NodeID, Host: m.Host, Port: m.Port}
}

// String formats like kafka-consumer-groups.sh does: "host:port (id)".
func (b brokerRef) String() string {
	return fmt.Sprintf("%s (%d)", net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), b.NodeID)
}
