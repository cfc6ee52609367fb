package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const partitionsUsage = `usage: sluice partitions <subcommand> [flags]

subcommands:
  elect-leaders   elect preferred or unclean leaders (kafka-leader-election.sh)
  reassign        move replicas between brokers (kafka-reassign-partitions.sh)

Run "sluice partitions <subcommand> --help" for its flags.
`

const electLeadersUsage = `usage: sluice partitions elect-leaders --election-type preferred|unclean
       (--topic TOPIC [--partition N] | --all-topic-partitions) [flags]

Asks the controller to elect leaders (ElectLeaders) and prints the outcome
per partition as kafka-leader-election.sh does:

  Successfully completed leader election (PREFERRED) for partitions t-0, t-1
  Valid replica already elected for partitions t-2
  Error completing leader election (PREFERRED) for partition: t-3: ...

preferred moves leadership back to the first replica of each partition if it
is in sync; unclean elects any live replica of a partition without an in-sync
one, which can lose acknowledged records. A partition whose leader is already
the right one (ELECTION_NOT_NEEDED) is not an error; any other error makes
the exit code 1.

flags:
  --election-type TYPE     preferred or unclean (required)
  --topic TOPIC            the topic whose partitions to elect
  --partition N            only this partition of --topic
  --all-topic-partitions   every partition of every topic
` + commonFlagsUsage

func runPartitions(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, partitionsUsage)
		return exitUsage
	}
	switch args[0] {
	case "elect-leaders":
		return runElectLeaders(args[1:], stdout, stderr)
	case "reassign":
		return runReassign(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, partitionsUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "sluice: unknown partitions subcommand %q\n\n%s", args[0], partitionsUsage)
		return exitUsage
	}
}

// electedPartition is one partition's outcome; its json tags are part of
// the --json interface.
type electedPartition struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Status    string  `json:"status"` // "elected", "not-needed" or "error"
	Error     *string `json:"error"`
}

type electResult struct {
	ElectionType string             `json:"election_type"`
	Partitions   []electedPartition `json:"partitions"`
}

func runElectLeaders(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("partitions elect-leaders")
	electionType := fs.String("election-type", "", "")
	topic := fs.String("topic", "", "")
	partition := fs.Int("partition", -1, "")
	all := fs.Bool("all-topic-partitions", false, "")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, electLeadersUsage, stdout, stderr)
	}
	var how int8
	switch strings.ToLower(*electionType) {
	case "preferred":
		how = 0
	case "unclean":
		how = 1
	case "":
		return reportUsage(stderr, electLeadersUsage, usagef("--election-type preferred|unclean is required"))
	default:
		return reportUsage(stderr, electLeadersUsage, usagef("unknown --election-type %q (want preferred or unclean)", *electionType))
	}
	switch {
	case len(rest) > 0:
		return reportUsage(stderr, electLeadersUsage, usagef("unexpected argument %q", rest[0]))
	case *all == (*topic != ""):
		return reportUsage(stderr, electLeadersUsage, usagef("give either --topic or --all-topic-partitions"))
	case *partition != -1 && *topic == "":
		return reportUsage(stderr, electLeadersUsage, usagef("--partition needs --topic"))
	case *partition < -1 || *partition > 1<<31-1:
		return reportUsage(stderr, electLeadersUsage, usagef("--partition must not be negative, got %d", *partition))
	}
	typeName := strings.ToUpper(*electionType)

	return runWithClient(cf, electLeadersUsage, stderr, func(ctx context.Context, c *client) error {
		if err := requireKeys(ctx, c, kmsg.ElectLeaders); err != nil {
			return err
		}
		req := kmsg.NewPtrElectLeadersRequest()
		req.ElectionType = how
		req.TimeoutMillis = int32(min(cf.timeout.Milliseconds(), 1<<31-1))
		if *topic != "" {
			parts, err := electionPartitions(ctx, c, *topic, int32(*partition))
			if err != nil {
				return err
			}
			rt := kmsg.NewElectLeadersRequestTopic()
			rt.Topic, rt.Partitions = *topic, parts
			req.Topics = []kmsg.ElectLeadersRequestTopic{rt}
		} // no topics (null) asks for every partition
		resp, err := req.RequestWith(ctx, c.kgo)
		if err != nil {
			return fmt.Errorf("electing leaders: %w", err)
		}
		if resp.Version == 0 && how != 0 {
			return errors.New("the brokers only speak ElectLeaders v0, which has no unclean election")
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("electing leaders: %w", err)
		}
		res := electResult{ElectionType: strings.ToLower(typeName), Partitions: []electedPartition{}}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				ep := electedPartition{Topic: t.Topic, Partition: p.Partition, Status: "elected"}
				switch err := kerr.ErrorForCode(p.ErrorCode); {
				case errors.Is(err, kerr.ElectionNotNeeded):
					ep.Status = "not-needed"
				case err != nil:
					ep.Status = "error"
					msg := errWithMessage(err, p.ErrorMessage)
					ep.Error = &msg
				}
				res.Partitions = append(res.Partitions, ep)
			}
		}
		sort.Slice(res.Partitions, func(i, j int) bool {
			a, b := res.Partitions[i], res.Partitions[j]
			return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
		})
		if cf.json {
			err = writeJSON(stdout, res)
		} else {
			printElection(stdout, typeName, res.Partitions)
		}
		if err != nil {
			return err
		}
		failed := 0
		for _, p := range res.Partitions {
			if p.Status == "error" {
				failed++
			}
		}
		if failed > 0 {
			fmt.Fprintf(stderr, "sluice: %s could not be elected\n", plural(int64(failed), "partition"))
			return errReported
		}
		return nil
	})
}

// electionPartitions is the request's partition list for --topic: the one
// --partition names, or every partition of the topic.
func electionPartitions(ctx context.Context, c *client, topic string, partition int32) ([]int32, error) {
	if partition >= 0 {
		return []int32{partition}, nil
	}
	md, err := c.adm.Metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		return nil, singleTopicError(topic, orNotFound(ok, td.Err), "")
	}
	var out []int32
	for _, p := range td.Partitions.Sorted() {
		out = append(out, p.Partition)
	}
	return out, nil
}

// orNotFound is err, or UNKNOWN_TOPIC_OR_PARTITION when the topic was
// missing from an answer altogether.
func orNotFound(present bool, err error) error {
	if !present {
		return kerr.UnknownTopicOrPartition
	}
	return err
}

// printElection writes kafka-leader-election.sh's three kinds of lines.
func printElection(w io.Writer, typeName string, ps []electedPartition) {
	var elected, notNeeded []string
	for _, p := range ps {
		switch p.Status {
		case "elected":
			elected = append(elected, fmt.Sprintf("%s-%d", p.Topic, p.Partition))
		case "not-needed":
			notNeeded = append(notNeeded, fmt.Sprintf("%s-%d", p.Topic, p.Partition))
		}
	}
	if len(elected) > 0 {
		fmt.Fprintf(w, "Successfully completed leader election (%s) for partitions %s\n", typeName, strings.Join(elected, ", "))
	}
	if len(notNeeded) > 0 {
		fmt.Fprintf(w, "Valid replica already elected for partitions %s\n", strings.Join(notNeeded, ", "))
	}
	for _, p := range ps {
		if p.Status == "error" {
			fmt.Fprintf(w, "Error completing leader election (%s) for partition: %s-%d: %s\n", typeName, p.Topic, p.Partition, oneLine(*p.Error))
		}
	}
}
