// Package cli implements sluice's admin commands, which talk to any
// Kafka-compatible cluster over the wire protocol (through franz-go) rather
// than to a broker's internals, so they work against Sluice and Kafka alike.
//
// The package deliberately does not import the broker: the admin tools must
// keep building while the broker changes, and must not carry its code.
package cli

import (
	"fmt"
	"io"
)

const usage = `usage: sluice <command> <subcommand> [flags]

admin commands:
  group list            list consumer groups
  group describe        show a group's members, committed offsets and lag
  topic create          create topics
  topic list            list topics
  topic describe        show a topic's partitions, offsets and configs
  topic delete          delete topics
  topic alter-config    set or delete a topic's config overrides
  topic add-partitions  grow a topic's partition count

Run "sluice group --help" or "sluice topic --help" for flags.
`

// Run executes an admin command. args starts with the command name (for
// example "group", "describe", "my-group", "--json"); output goes to stdout,
// diagnostics to stderr. It returns the process exit code: 0 on success, 1
// when the cluster could not be reached or reported an error, 2 when the
// command line is wrong.
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
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}
