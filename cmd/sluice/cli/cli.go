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
  group list       list consumer groups
  group describe   show a group's members, committed offsets and lag

Run "sluice group --help" for flags.
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
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}
