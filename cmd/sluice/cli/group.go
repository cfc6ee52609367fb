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

const groupUsage = `usage: sluice group <subcommand> [flags]

subcommands:
  list            list consumer groups
  describe        show members, committed offsets, end offsets and lag of groups
  reset-offsets   move a group's committed offsets (dry run unless --execute)
  delete          delete empty groups and their committed offsets
  delete-offsets  delete a group's committed offsets for some partitions

Run "sluice group <subcommand> --help" for its flags.
`

const groupListUsage = `usage: sluice group list [--state STATE]... [--type classic|consumer] [flags]

Lists the groups of every broker: group id, state, type (classic, or
consumer for KIP-848 groups), protocol type and coordinator.

flags:
  --state STATE            only groups in this state (repeatable or
                           comma-separated), e.g. Stable, Empty, Reconciling
  --type TYPE              only groups of this type: classic or consumer
                           (share, streams also accepted); needs ListGroups v5
` + commonFlagsUsage

func runGroup(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, groupUsage)
		return exitUsage
	}
	switch args[0] {
	case "list", "ls":
		return runGroupList(args[1:], stdout, stderr)
	case "describe":
		return runGroupDescribe(args[1:], stdout, stderr)
	case "reset-offsets":
		return runGroupResetOffsets(args[1:], stdout, stderr)
	case "delete":
		return runGroupDelete(args[1:], stdout, stderr)
	case "delete-offsets":
		return runGroupDeleteOffsets(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, groupUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "sluice: unknown group subcommand %q\n\n%s", args[0], groupUsage)
		return exitUsage
	}
}

// groupStates maps lower-cased state names to the spelling brokers use:
// Kafka compares state filters case-sensitively, users type "stable".
var groupStates = func() map[string]string {
	m := make(map[string]string)
	for _, s := range []string{
		"Unknown", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Empty",
		"Assigning", "Reconciling", "NotReady",
	} {
		m[strings.ToLower(s)] = s
	}
	return m
}()

var groupTypes = map[string]bool{"classic": true, "consumer": true, "share": true, "streams": true}

// listedGroup is one row of "group list"; its json tags are the --json
// interface.
type listedGroup struct {
	GroupID      string    `json:"group_id"`
	State        string    `json:"state"`
	Type         string    `json:"type"` // empty when the broker predates ListGroups v5
	ProtocolType string    `json:"protocol_type"`
	Coordinator  brokerRef `json:"coordinator"`
}

type groupListResult struct {
	Groups []listedGroup `json:"groups"`
}

func runGroupList(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("group list")
	var states, types listFlag
	fs.Var(&states, "state", "")
	fs.Var(&types, "type", "")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, groupListUsage, stdout, stderr)
	}
	if len(rest) > 0 {
		return reportUsage(stderr, groupListUsage, usagef("unexpected argument %q", rest[0]))
	}
	for i, s := range states {
		if canon, ok := groupStates[strings.ToLower(s)]; ok {
			states[i] = canon
		}
	}
	for i, t := range types {
		types[i] = strings.ToLower(t)
		if !groupTypes[types[i]] {
			return reportUsage(stderr, groupListUsage, usagef("--type: unknown group type %q (want classic or consumer)", t))
		}
	}

	return runWithClient(cf, groupListUsage, stderr, func(ctx context.Context, c *client) error {
		groups, err := listGroups(ctx, c, states, types)
		if groups == nil && err != nil {
			return err
		}
		// A broker that failed leaves its groups out; print the rest,
		// then fail, so a partial list is never mistaken for a full one.
		if werr := printGroupList(stdout, cf.json, groups); werr != nil {
			return werr
		}
		return err
	})
}

// listGroups asks every broker for the groups it coordinates. It issues
// ListGroups itself instead of using kadm.ListGroupsByType because kadm
// drops the v5 GroupType field, which is the "type" column.
//
// On partial failure it returns the groups it got and an error naming the
// failed brokers; groups is nil only if nothing could be listed.
func listGroups(ctx context.Context, c *client, states, types []string) ([]listedGroup, error) {
	req := kmsg.NewPtrListGroupsRequest()
	req.StatesFilter = states
	req.TypesFilter = types

	var (
		groups = []listedGroup{} // "groups": [] rather than null for scripts
		errs   []string
		ok     bool
	)
	for _, shard := range c.kgo.RequestSharded(ctx, req) {
		if shard.Err != nil {
			errs = append(errs, fmt.Sprintf("broker %d: %v", shard.Meta.NodeID, shard.Err))
			continue
		}
		resp := shard.Resp.(*kmsg.ListGroupsResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			errs = append(errs, fmt.Sprintf("broker %d: %v", shard.Meta.NodeID, err))
			continue
		}
		// franz-go silently drops filter fields an older broker cannot
		// parse; an unfiltered answer must not pass for a filtered one.
		if len(types) > 0 && resp.Version < 5 {
			return nil, fmt.Errorf("broker %d cannot filter by group type (ListGroups v%d, needs v5)", shard.Meta.NodeID, resp.Version)
		}
		if len(states) > 0 && resp.Version < 4 {
			return nil, fmt.Errorf("broker %d cannot filter by group state (ListGroups v%d, needs v4)", shard.Meta.NodeID, resp.Version)
		}
		ok = true
		for _, g := range resp.Groups {
			groups = append(groups, listedGroup{
				GroupID:      g.Group,
				State:        g.GroupState,
				Type:         g.GroupType,
				ProtocolType: g.ProtocolType,
				Coordinator:  newBrokerRef(shard.Meta),
			})
		}
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].GroupID < groups[j].GroupID })
	if len(errs) > 0 {
		err := errors.New("listing groups failed on " + strings.Join(errs, "; "))
		if !ok {
			return nil, err
		}
		return groups, err
	}
	return groups, nil
}

func printGroupList(w io.Writer, asJSON bool, groups []listedGroup) error {
	if asJSON {
		return writeJSON(w, groupListResult{Groups: groups})
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "GROUP\tSTATE\tTYPE\tPROTOCOL-TYPE\tCOORDINATOR")
	for _, g := range groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n",
			g.GroupID, orDash(g.State), orDash(g.Type), orDash(g.ProtocolType), g.Coordinator)
	}
	return tw.Flush()
}
