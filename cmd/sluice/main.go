// Command sluice is the single binary of Sluice: the broker and its tools.
//
//	sluice broker [--config FILE] [--set key=value]...
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/sluice-io/sluice/cmd/sluice/cli"
)

const usage = `usage: sluice <command> [flags]

commands:
  broker    run a broker (sluice broker --help for flags)
  engines   report which network engines (std, uring) this machine can run
  group     list and describe consumer groups (sluice group --help)
  topic     create, list, describe, alter and delete topics (sluice topic --help)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "broker":
		return runBroker(args[1:], stderr)
	case "engines":
		return runEngines(stdout)
	case "group", "topic":
		return cli.Run(args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
