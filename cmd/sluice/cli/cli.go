// Package cli implements sluice's client commands, which talk to any
// Kafka-compatible cluster over the wire protocol (through franz-go) rather
// than to a broker's internals, so they work against Sluice and Kafka alike.
//
// The package deliberately does not import the broker: the admin tools must
// keep building while the broker changes, and must not carry its code.
package cli

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: sluice <command> [<subcommand>] [flags]

admin commands:
  topic create            create topics
  topic list              list topics
  topic describe          show a topic's partitions (leader, ISR, ELR),
                          offsets and configs; filter unhealthy partitions
  topic delete            delete topics
  topic alter-config      set or delete a topic's config overrides
  topic add-partitions    grow a topic's partition count
  group list              list consumer groups
  group describe          show a group's members, committed offsets and lag
  group reset-offsets     move a group's committed offsets
  group delete            delete empty groups
  group delete-offsets    delete a group's committed offsets of some partitions
  cluster info            show the cluster's ID, controller, brokers and APIs
  cluster describe        the same, plus under-replicated, under-min-ISR
                          and offline partitions
  partitions elect-leaders  elect preferred or unclean partition leaders
  partitions reassign     move replicas between brokers, with throttles
  connect list|status|... manage connectors on a Kafka Connect REST API
                          (sluice connect --help)

data commands:
  produce TOPIC           produce the lines of a file or standard input
  consume TOPIC...        print records, directly or as a group member

other commands:
  completion bash|zsh|fish  print a shell completion script

Run "sluice <command> --help" (or "sluice <command> <subcommand> --help")
for its flags.
`

// Run executes a client command. args starts with the command name (for
// example "group", "describe", "my-group", "--json"); output goes to stdout,
// diagnostics to stderr, and produce reads standard input. It returns the
// process exit code: 0 on success, 1 when the cluster could not be reached
// or reported an error, 2 when the command line is wrong.
func Run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "group":
		return runGroup(args[1:], stdout, stderr)
	case "topic":
		return runTopic(args[1:], stdout, stderr)
	case "cluster":
		return runCluster(args[1:], stdout, stderr)
	case "partitions":
		return runPartitions(args[1:], stdout, stderr)
	case "completion":
		return runCompletion(args[1:], stdout, stderr)
	case "connect":
		return RunConnect(args[1:], stdout, stderr)
	case "produce", "consume":
		ctx, stop := interruptible()
		defer stop()
		if args[0] == "produce" {
			return runProduce(ctx, args[1:], os.Stdin, stdout, stderr)
		}
		// A reader that goes away (consume | head) must surface as EPIPE
		// on the next write, so that consume commits what was written and
		// stops; by default Go dies of SIGPIPE on a write to stdout.
		signal.Ignore(syscall.SIGPIPE)
		return runConsume(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}
