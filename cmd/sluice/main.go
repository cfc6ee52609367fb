// Command sluice is the single binary of Sluice: the broker and its tools.
//
//	sluice broker [--config FILE] [--set key=value]...
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/sluice-io/sluice/cmd/sluice/cli"
	"github.com/sluice-io/sluice/netio"
	"github.com/sluice-io/sluice/perf"
)

const usage = `usage: sluice <command> [flags]

commands:
  broker      run a broker (sluice broker --help for flags)
  engines     report which network engines (std, uring) this machine can run
  topic       create, list, describe, alter and delete topics (sluice topic --help)
  group       list, describe, reset offsets of and delete consumer groups
              (sluice group --help)
  produce     produce the lines of a file or of standard input to a topic
  consume     print a topic's records, directly or as a group member
  cluster     show the cluster: info (ID, controller, brokers, API versions), describe (health)
  partitions  elect leaders and reassign partitions (sluice partitions --help)
  completion  print a bash, zsh or fish completion script
  connect     run a Kafka Connect worker, or manage connectors on one
              (sluice connect --help)
  perf        load generator: produce, consume, e2e or rtt against any
              Kafka-compatible broker, with HDR latency histograms (sluice perf --help)
  version     print the version, commit, Go version and network engines
              (also sluice --version)
  help        print this text; sluice help COMMAND shows a command's flags
`

const enginesUsage = `usage: sluice engines

Reports which network engines this machine can run, one line each:
"std: available", and "uring: available" or "uring: unavailable: WHY".
The broker's --engine auto picks uring where it is available.
`

func main() {
	// First: a re-executed copy of this binary may be the network
	// engine self-test's client process, which must do nothing else.
	netio.ProbeClientMain()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "broker":
		return runBroker(args[1:], stdout, stderr)
	case "engines":
		if len(args) > 1 {
			if isHelp(args[1]) {
				fmt.Fprint(stdout, enginesUsage)
				return 0
			}
			fmt.Fprintf(stderr, "sluice engines: unexpected argument %q\n\n%s", args[1], enginesUsage)
			return 2
		}
		return runEngines(stdout)
	case "version", "--version", "-version":
		if len(args) > 1 && isHelp(args[1]) {
			fmt.Fprint(stdout, "usage: sluice version\n\nPrints the version, the commit it was built from, the Go version and the\nnetwork engines this machine can run.\n")
			return 0
		}
		return runVersion(stdout)
	case "connect":
		return runConnect(args[1:], stdout, stderr)
	case "perf":
		return perf.Run(args[1:], stdout, stderr)
	case "group", "topic", "produce", "consume", "cluster", "partitions", "completion":
		return cli.Run(args, stdout, stderr)
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[1] != "help" && !isHelp(args[1]) {
			// "sluice help produce" is "sluice produce --help".
			return run(append(args[1:], "--help"), stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
