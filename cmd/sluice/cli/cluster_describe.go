package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

const clusterDescribeUsage = `usage: sluice cluster describe [flags]

Shows what "cluster info" shows (cluster ID, the active controller, every
broker with its address and rack), then the partitions that need attention,
counted and listed with their leader, replicas and ISR:

  under-replicated   fewer in-sync replicas than replicas
  under-min-isr      no leader, or fewer in-sync replicas than the topic's
                     min.insync.replicas (acks=all produce fails)
  offline            no leader, or a leader that is not a live broker

These are kafka-topics.sh's definitions, as "topic describe" filters use.
It also shows the metadata quorum, as kafka-metadata-quorum describe
--replication does: the controller leading the metadata log, its high
watermark, and each voter and observer (broker) with its log end and lag.
Internal topics count. A topic whose min.insync.replicas could not be read
is reported on stderr and makes the exit code 1; its partitions are then
only checked for a missing leader.

flags:
` + commonFlagsUsage

// clusterDescription is "cluster info" plus the partition health lists;
// its json tags are the --json interface.
type clusterDescription struct {
	clusterInfo
	UnderReplicated []partitionState `json:"under_replicated_partitions"`
	UnderMinISR     []partitionState `json:"under_min_isr_partitions"`
	Offline         []partitionState `json:"offline_partitions"`
	// Quorum is the metadata quorum; null when the cluster has none to
	// describe.
	Quorum *quorumState `json:"quorum"`
}

// partitionState is one partition in a health list.
type partitionState struct {
	Topic       string  `json:"topic"`
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"` // -1 without a leader
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	MinISR      *int    `json:"min_insync_replicas"` // null if unknown
}

func runClusterDescribe(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("cluster describe")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, clusterDescribeUsage, stdout, stderr)
	}
	if len(rest) > 0 {
		return reportUsage(stderr, clusterDescribeUsage, usagef("unexpected argument %q", rest[0]))
	}
	return runWithClient(cf, clusterDescribeUsage, stderr, func(ctx context.Context, c *client) error {
		info, md, err := clusterDetails(ctx, c)
		if err != nil {
			return err
		}
		minISR, problems, err := minInsyncReplicas(ctx, c, md.Topics.Names())
		if err != nil {
			return err
		}
		d := describeHealth(info, md, minISR)
		if d.Quorum, err = describeQuorum(ctx, c, info); err != nil {
			return err
		}
		if cf.json {
			err = writeJSON(stdout, d)
		} else {
			err = printClusterDescription(stdout, d)
		}
		if err != nil {
			return err
		}
		brokersFailed := reportBrokerErrors(stderr, info)
		if err := reportTopicErrors(stderr, nil, problems); err != nil || brokersFailed {
			return errReported
		}
		return nil
	})
}

// describeHealth sorts every partition of md into the health lists.
func describeHealth(info clusterInfo, md kadm.Metadata, minISR map[string]int) clusterDescription {
	d := clusterDescription{clusterInfo: info,
		UnderReplicated: []partitionState{}, UnderMinISR: []partitionState{}, Offline: []partitionState{}}
	live := make(map[int32]bool, len(md.Brokers))
	for _, b := range md.Brokers {
		live[b.NodeID] = true
	}
	for _, td := range md.Topics.Sorted() {
		if td.Err != nil {
			continue // a topic being deleted or created: nothing to judge yet
		}
		var topicMin *int
		if n, ok := minISR[td.Topic]; ok {
			topicMin = &n
		}
		for _, p := range td.Partitions.Sorted() {
			h := classifyPartition(p.Leader, p.Replicas, p.ISR, minISR[td.Topic], live)
			ps := partitionState{Topic: td.Topic, Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), MinISR: topicMin}
			if h.UnderReplicated {
				d.UnderReplicated = append(d.UnderReplicated, ps)
			}
			if h.UnderMinISR {
				d.UnderMinISR = append(d.UnderMinISR, ps)
			}
			if h.Unavailable {
				d.Offline = append(d.Offline, ps)
			}
		}
	}
	return d
}

func printClusterDescription(w io.Writer, d clusterDescription) error {
	err := printClusterInfo(w, d.clusterInfo, [][2]string{
		{"Under-replicated partitions", strconv.Itoa(len(d.UnderReplicated))},
		{"Under-min-ISR partitions", strconv.Itoa(len(d.UnderMinISR))},
		{"Offline partitions", strconv.Itoa(len(d.Offline))},
	})
	if err != nil {
		return err
	}
	// One row per troubled partition, whatever its troubles, in the
	// order of the lists.
	type row struct {
		ps     partitionState
		status []string
	}
	var rows []row
	index := map[string]int{}
	add := func(list []partitionState, label string) {
		for _, ps := range list {
			k := ps.Topic + "\x00" + strconv.Itoa(int(ps.Partition))
			i, ok := index[k]
			if !ok {
				i = len(rows)
				index[k] = i
				rows = append(rows, row{ps: ps})
			}
			rows[i].status = append(rows[i].status, label)
		}
	}
	add(d.Offline, "offline")
	add(d.UnderMinISR, "under-min-isr")
	add(d.UnderReplicated, "under-replicated")
	if d.Quorum != nil {
		if err := printQuorum(w, d.Quorum, time.Now()); err != nil {
			return err
		}
	}
	if len(rows) == 0 {
		return nil
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i].ps, rows[j].ps
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	fmt.Fprintln(w)
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tLEADER\tREPLICAS\tISR\tMIN-ISR\tSTATUS")
	for _, r := range rows {
		minCell := "-"
		if r.ps.MinISR != nil {
			minCell = strconv.Itoa(*r.ps.MinISR)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.ps.Topic, r.ps.Partition, formatLeader(r.ps.Leader),
			formatNodes(r.ps.Replicas), formatNodes(r.ps.ISR), minCell, strings.Join(r.status, ","))
	}
	return tw.Flush()
}

// formatLeader renders a leader ID, "-" for none.
func formatLeader(id int32) string {
	if id < 0 {
		return "-"
	}
	return strconv.Itoa(int(id))
}
