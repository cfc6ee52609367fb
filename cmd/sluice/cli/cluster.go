package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const clusterUsage = `usage: sluice cluster <subcommand> [flags]

subcommands:
  info          show the cluster ID, controller, brokers, topic counts and API versions
  describe      info, plus under-replicated, under-min-ISR and offline partitions
  add-voter     add a controller to the controller quorum (AddRaftVoter)
  remove-voter  remove a controller from the controller quorum (RemoveRaftVoter)

Run "sluice cluster <subcommand> --help" for its flags.
`

const clusterInfoUsage = `usage: sluice cluster info [flags]

Shows the cluster ID, the controller, every broker (node ID, address and
rack), how many topics and partitions the cluster holds, and how many APIs
each broker supports. --json also lists every broker's API versions (min and
max per API key, as ApiVersions reports them). A broker whose API versions
could not be read is reported on stderr and makes the exit code 1.

flags:
` + commonFlagsUsage

// The cluster info types: their json tags are the --json interface.
type clusterInfo struct {
	ClusterID              *string         `json:"cluster_id"` // null if the brokers do not report one
	Controller             *int32          `json:"controller"` // null if unknown
	Brokers                []clusterBroker `json:"brokers"`
	TopicCount             int             `json:"topic_count"`
	PartitionCount         int             `json:"partition_count"`
	InternalTopicCount     int             `json:"internal_topic_count"`
	InternalPartitionCount int             `json:"internal_partition_count"`
}

type clusterBroker struct {
	NodeID      int32        `json:"node_id"`
	Host        string       `json:"host"`
	Port        int32        `json:"port"`
	Rack        *string      `json:"rack"`
	APIVersions []apiVersion `json:"api_versions"`
	Error       *string      `json:"error"` // why api_versions is empty
}

type apiVersion struct {
	Key        int16  `json:"key"`
	Name       string `json:"name"`
	MinVersion int16  `json:"min_version"`
	MaxVersion int16  `json:"max_version"`
}

func runCluster(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, clusterUsage)
		return exitUsage
	}
	switch args[0] {
	case "info":
		return runClusterInfo(args[1:], stdout, stderr)
	case "describe":
		return runClusterDescribe(args[1:], stdout, stderr)
	case "add-voter":
		return runClusterAddVoter(args[1:], stdout, stderr)
	case "remove-voter":
		return runClusterRemoveVoter(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, clusterUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "sluice: unknown cluster subcommand %q\n\n%s", args[0], clusterUsage)
		return exitUsage
	}
}

func runClusterInfo(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("cluster info")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, clusterInfoUsage, stdout, stderr)
	}
	if len(rest) > 0 {
		return reportUsage(stderr, clusterInfoUsage, usagef("unexpected argument %q", rest[0]))
	}
	return runWithClient(cf, clusterInfoUsage, stderr, func(ctx context.Context, c *client) error {
		info, _, err := clusterDetails(ctx, c)
		if err != nil {
			return err
		}
		if cf.json {
			err = writeJSON(stdout, info)
		} else {
			err = printClusterInfo(stdout, info, nil)
		}
		if err != nil {
			return err
		}
		if reportBrokerErrors(stderr, info) {
			return errReported
		}
		return nil
	})
}

// reportBrokerErrors prints one stderr line per broker whose API versions
// could not be read, and says whether there was any.
func reportBrokerErrors(stderr io.Writer, info clusterInfo) bool {
	failed := false
	for _, b := range info.Brokers {
		if b.Error != nil {
			fmt.Fprintf(stderr, "sluice: broker %d: reading API versions: %s\n", b.NodeID, oneLine(*b.Error))
			failed = true
		}
	}
	return failed
}

// clusterDetails reads the summary of "cluster info"; it also returns the
// metadata of every topic it was built from, for "cluster describe".
func clusterDetails(ctx context.Context, c *client) (clusterInfo, kadm.Metadata, error) {
	md, err := c.adm.Metadata(ctx)
	if err != nil {
		return clusterInfo{}, md, fmt.Errorf("reading cluster metadata: %w", err)
	}
	info := clusterInfo{Brokers: []clusterBroker{}}
	if md.Cluster != "" {
		info.ClusterID = &md.Cluster
	}
	if md.Controller >= 0 {
		info.Controller = &md.Controller
	}
	for _, td := range md.Topics {
		if td.IsInternal {
			info.InternalTopicCount++
			info.InternalPartitionCount += len(td.Partitions)
		} else {
			info.TopicCount++
			info.PartitionCount += len(td.Partitions)
		}
	}
	versions, err := c.adm.ApiVersions(ctx)
	if err != nil {
		return clusterInfo{}, md, fmt.Errorf("reading API versions: %w", err)
	}
	for _, b := range md.Brokers {
		cb := clusterBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack, APIVersions: []apiVersion{}}
		v, ok := versions[b.NodeID]
		switch {
		case !ok:
			cb.Error = errString(fmt.Errorf("no answer"))
		case v.Err != nil:
			cb.Error = errString(v.Err)
		default:
			for _, k := range v.Raw().ApiKeys {
				cb.APIVersions = append(cb.APIVersions, apiVersion{
					Key: k.ApiKey, Name: kmsg.NameForKey(k.ApiKey), MinVersion: k.MinVersion, MaxVersion: k.MaxVersion,
				})
			}
			sort.Slice(cb.APIVersions, func(i, j int) bool { return cb.APIVersions[i].Key < cb.APIVersions[j].Key })
		}
		info.Brokers = append(info.Brokers, cb)
	}
	sort.Slice(info.Brokers, func(i, j int) bool { return info.Brokers[i].NodeID < info.Brokers[j].NodeID })
	return info, md, nil
}

// printClusterInfo prints the summary and the broker table; extra are more
// summary lines ("label", "value") that "cluster describe" adds.
func printClusterInfo(w io.Writer, info clusterInfo, extra [][2]string) error {
	tw := newTable(w)
	id, controller := "-", "-"
	if info.ClusterID != nil {
		id = *info.ClusterID
	}
	if info.Controller != nil {
		controller = strconv.Itoa(int(*info.Controller))
	}
	fmt.Fprintf(tw, "Cluster ID:\t%s\n", id)
	fmt.Fprintf(tw, "Controller:\t%s\n", controller)
	fmt.Fprintf(tw, "Topics:\t%d (%s)\n", info.TopicCount, plural(int64(info.PartitionCount), "partition"))
	fmt.Fprintf(tw, "Internal topics:\t%d (%s)\n", info.InternalTopicCount, plural(int64(info.InternalPartitionCount), "partition"))
	fmt.Fprintf(tw, "Brokers:\t%d\n", len(info.Brokers))
	for _, e := range extra {
		fmt.Fprintf(tw, "%s:\t%s\n", e[0], e[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "NODE-ID\tADDRESS\tRACK\tAPIS")
	for _, b := range info.Brokers {
		rack, apis := "-", strconv.Itoa(len(b.APIVersions))
		if b.Rack != nil && *b.Rack != "" {
			rack = *b.Rack
		}
		if b.Error != nil {
			apis = "error"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", b.NodeID, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), rack, apis)
	}
	return tw.Flush()
}
