package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"
)

// "sluice connect <verb>" is a client of the Kafka Connect REST API. It
// speaks only HTTP and JSON, with Kafka's routes and entity shapes, so it
// drives a Sluice worker and an Apache Kafka Connect cluster alike. The
// worker itself ("sluice connect --config FILE") is package main's: it
// calls IsConnectVerb to tell the two apart.

// ConnectUsage is the help text of the client subcommands, for the
// worker's usage to include.
const ConnectUsage = `usage: sluice connect <subcommand> [flags]

Client of a Kafka Connect REST API: a Sluice worker or Apache Kafka Connect.

subcommands:
  list                    list connectors; --expand adds type, state and tasks
  status NAME             a connector's state and its tasks' states and workers
  describe NAME           a connector's type, state, config and tasks
  create -f FILE          create a connector from a JSON or .properties file
  config NAME             show a connector's config; --set and --unset change it
  delete NAME...          delete connectors
  pause NAME...           pause connectors (their tasks stay assigned)
  resume NAME...          resume paused or stopped connectors
  stop NAME...            stop connectors (tasks shut down; offsets may change)
  restart NAME            restart a connector and, optionally, its tasks
  restart-task NAME ID    restart one task of a connector
  offsets NAME            show a connector's offsets; --reset or --set change them
  plugins                 list the worker's connector plugins
  validate CLASS -f FILE  validate a config against a plugin; exit 1 on errors
  health                  the worker's health

Run "sluice connect <subcommand> --help" for its flags.
`

const (
	connectURLEnv     = "SLUICE_CONNECT_URL"
	defaultConnectURL = "http://127.0.0.1:8083"
	// A Connect worker answers a write only once the config topic has it,
	// after a rebalance at worst; Kafka's own REST timeout is 90s.
	defaultConnectTimeout = 30 * time.Second
)

const connectFlagsUsage = `  --url URL                the Connect REST endpoint (default:
                           $SLUICE_CONNECT_URL, else http://127.0.0.1:8083);
                           http://USER:PASSWORD@HOST:PORT for basic auth
  --timeout DURATION       time limit for the whole command (default 30s)
  --json                   print the worker's JSON answer instead of tables
`

// connectVerbs maps each subcommand to the function that runs it.
var connectVerbs map[string]func(args []string, stdout, stderr io.Writer) int

func init() {
	connectVerbs = map[string]func([]string, io.Writer, io.Writer) int{
		"list":         runConnectList,
		"status":       runConnectStatus,
		"describe":     runConnectDescribe,
		"create":       runConnectCreate,
		"config":       runConnectConfig,
		"delete":       connectTargetCommand(deleteTarget),
		"pause":        connectTargetCommand(pauseTarget),
		"resume":       connectTargetCommand(resumeTarget),
		"stop":         connectTargetCommand(stopTarget),
		"restart":      runConnectRestart,
		"restart-task": runConnectRestartTask,
		"offsets":      runConnectOffsets,
		"plugins":      runConnectPlugins,
		"validate":     runConnectValidate,
		"health":       runConnectHealth,
	}
}

// IsConnectVerb reports whether arg, the word after "sluice connect", is
// a client subcommand (or "help") rather than the worker's flags.
func IsConnectVerb(arg string) bool {
	_, ok := connectVerbs[arg]
	return ok || arg == "help"
}

// RunConnect runs a client subcommand. args are the words after "sluice
// connect", the subcommand first ("status", "my-connector", "--json").
// It returns the exit code: 0 on success, 1 when the worker could not be
// reached or answered with an error (or validate found errors), 2 when
// the command line is wrong.
func RunConnect(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, ConnectUsage)
		return exitUsage
	}
	if run, ok := connectVerbs[args[0]]; ok {
		return run(args[1:], stdout, stderr)
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, ConnectUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "sluice: unknown connect subcommand %q\n\n%s", args[0], ConnectUsage)
	return exitUsage
}

// connectFlags are the flags every connect subcommand takes.
type connectFlags struct {
	url     string
	timeout time.Duration
	json    bool
}

func newConnectFlagSet(name string) (*flag.FlagSet, *connectFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cf := &connectFlags{}
	fs.StringVar(&cf.url, "url", "", "")
	fs.DurationVar(&cf.timeout, "timeout", defaultConnectTimeout, "")
	fs.BoolVar(&cf.json, "json", false, "")
	return fs, cf
}

// parseConnectArgs parses a subcommand's command line and checks that it
// has between least and most positional arguments (most < 0: no limit). On a
// bad command line it has already answered and returns ok false with the
// exit code.
func parseConnectArgs(fs *flag.FlagSet, args []string, usage string, least, most int, stdout, stderr io.Writer) (rest []string, code int, ok bool) {
	rest, err := parseArgs(fs, args)
	if err != nil {
		return nil, handleParseError(err, usage, stdout, stderr), false
	}
	switch {
	case len(rest) < least:
		return nil, reportUsage(stderr, usage, usagef("missing arguments")), false
	case most >= 0 && len(rest) > most:
		return nil, reportUsage(stderr, usage, usagef("unexpected argument %q", rest[most])), false
	}
	return rest, exitOK, true
}

// runConnectCmd is the frame of every subcommand: one deadline for the
// whole command (409 retries included), and whatever fn returns turned
// into one stderr line and an exit code.
func runConnectCmd(cf *connectFlags, usage string, stderr io.Writer, fn func(context.Context, *connectClient) error) int {
	if cf.timeout <= 0 {
		return reportUsage(stderr, usage, usagef("--timeout must be positive, got %s", cf.timeout))
	}
	c, err := newConnectClient(cf.url)
	if err != nil {
		return reportUsage(stderr, usage, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
	defer cancel()
	return report(stderr, usage, cf.timeout, fn(ctx, c))
}

// The command table entries of the connect subcommands, for completion.
func connectFlagSpecs(fs ...flagSpec) []flagSpec {
	return append(fs, valueFlag("--url"), valueFlag("--timeout"), boolFlag("--json"))
}

// connectCommandSpecs are the subcommands of "sluice connect" as the
// completion table describes them; package main's worker flags are not
// among them.
var connectCommandSpecs = []cmdSpec{
	{name: "list", flags: connectFlagSpecs(boolFlag("--expand"))},
	{name: "status", flags: connectFlagSpecs()},
	{name: "describe", flags: connectFlagSpecs()},
	{name: "create", flags: connectFlagSpecs(fileFlag("--file"), fileFlag("-f"), enumFlag("--initial-state", "RUNNING", "PAUSED", "STOPPED"))},
	{name: "config", flags: connectFlagSpecs(valueFlag("--set"), valueFlag("--unset"))},
	{name: "delete", flags: connectFlagSpecs()},
	{name: "pause", flags: connectFlagSpecs()},
	{name: "resume", flags: connectFlagSpecs()},
	{name: "stop", flags: connectFlagSpecs()},
	{name: "restart", flags: connectFlagSpecs(boolFlag("--include-tasks"), boolFlag("--only-failed"))},
	{name: "restart-task", flags: connectFlagSpecs()},
	{name: "offsets", flags: connectFlagSpecs(boolFlag("--reset"), fileFlag("--set"))},
	{name: "plugins", flags: connectFlagSpecs(boolFlag("--all"))},
	{name: "validate", flags: connectFlagSpecs(fileFlag("--file"), fileFlag("-f"))},
	{name: "health", flags: connectFlagSpecs()},
}
