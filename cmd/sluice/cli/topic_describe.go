package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const topicListUsage = `usage: sluice topic list [--internal] [flags]

Lists topics by name with their partition count, replication factor and
topic ID. Internal topics such as __consumer_offsets are left out unless
--internal is given.

flags:
  --internal               include internal topics
` + commonFlagsUsage

const topicDescribeUsage = `usage: sluice topic describe TOPIC... [flags]

For each topic: topic ID, partition count, replication factor,
min.insync.replicas, the configs that differ from the built-in defaults
with where they come from (a topic override, or the broker's
configuration), then one row per partition:

  PARTITION LEADER LEADER-EPOCH REPLICAS ISR ELR LAST-KNOWN-ELR OFFLINE
  LOG-START-OFFSET HIGH-WATERMARK

ELR and LAST-KNOWN-ELR are the eligible leader replicas of KIP-966; they
come from DescribeTopicPartitions and are "-" (null in --json) when the
brokers do not support it, in which case Metadata supplies the rest.
OFFLINE lists replicas on brokers that are down or whose disk failed.

With --sizes, a SIZES column gives each replica's bytes on disk as
BROKER:BYTES in replica order ("-" for a replica no broker reported, e.g.
its broker is down), from DescribeLogDirs: what retention and compaction
left. --json adds "replica_sizes" to each partition.

With a filter, only the partitions it selects are shown, as one table with
a TOPIC column, and TOPIC may be left out to check every topic (internal
ones included). Filters combine: a partition matching any is shown. They
use kafka-topics.sh's definitions.

Topics that do not exist are reported on stderr and make the exit code 1;
the others are still described.

flags:
  --under-replicated-partitions  only partitions with fewer in-sync
                           replicas than replicas
  --under-min-isr-partitions  only partitions without a leader or with
                           fewer in-sync replicas than min.insync.replicas
  --unavailable-partitions  only partitions without a live leader
  --sizes                  add each replica's size on disk (DescribeLogDirs)
` + commonFlagsUsage

// listedTopic is one row of "topic list"; its json tags are the --json
// interface.
type listedTopic struct {
	Topic             string `json:"topic"`
	TopicID           string `json:"topic_id"`
	PartitionCount    int    `json:"partition_count"`
	ReplicationFactor int    `json:"replication_factor"`
	Internal          bool   `json:"internal"`
}

type topicListResult struct {
	Topics []listedTopic `json:"topics"`
}

func runTopicList(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("topic list")
	internal := fs.Bool("internal", false, "")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, topicListUsage, stdout, stderr)
	}
	if len(rest) > 0 {
		return reportUsage(stderr, topicListUsage, usagef("unexpected argument %q (list takes no topic names; see describe)", rest[0]))
	}

	return runWithClient(cf, topicListUsage, stderr, func(ctx context.Context, c *client) error {
		tds, err := c.adm.ListTopicsWithInternal(ctx)
		if err != nil {
			return err
		}
		res := topicListResult{Topics: []listedTopic{}}
		var errs []topicError
		for _, td := range tds.Sorted() {
			if td.IsInternal && !*internal {
				continue
			}
			// A topic that failed to load is still listed, so the name is
			// not silently missing, but the command then fails.
			if td.Err != nil {
				errs = append(errs, topicError{td.Topic, td.Err.Error()})
			}
			res.Topics = append(res.Topics, listedTopic{
				Topic:             td.Topic,
				TopicID:           topicIDString(td.ID),
				PartitionCount:    len(td.Partitions),
				ReplicationFactor: replicationFactor(td.Partitions),
				Internal:          td.IsInternal,
			})
		}
		if cf.json {
			err = writeJSON(stdout, res)
		} else {
			tw := newTable(stdout)
			fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tREPLICATION-FACTOR\tTOPIC-ID")
			for _, t := range res.Topics {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", t.Topic, t.PartitionCount, t.ReplicationFactor, orDash(t.TopicID))
			}
			err = tw.Flush()
		}
		if err != nil {
			return err
		}
		return reportTopicErrors(stderr, nil, errs)
	})
}

// replicationFactor is the replica count of the lowest partition, as
// kafka-topics.sh reports it; partitions of a topic normally agree.
func replicationFactor(ps kadm.PartitionDetails) int {
	if len(ps) == 0 {
		return 0
	}
	return len(ps.Sorted()[0].Replicas)
}

// The describe result types: their json tags are the --json interface.
type topicDescribeResult struct {
	Topics   []describedTopic `json:"topics"`
	NotFound []string         `json:"not_found"`

	live map[int32]bool // the brokers in the metadata, for the filters
}

type describedTopic struct {
	Topic             string `json:"topic"`
	TopicID           string `json:"topic_id"`
	Internal          bool   `json:"internal"`
	PartitionCount    int    `json:"partition_count"`
	ReplicationFactor int    `json:"replication_factor"`
	MinISR            *int   `json:"min_insync_replicas"` // null if unknown
	// Configs are the settings whose source is not DEFAULT_CONFIG, the
	// same filter as kafka-topics.sh --describe: topic overrides and
	// values the broker's own configuration sets for its topics.
	Configs    []topicConfig    `json:"configs"`
	Partitions []topicPartition `json:"partitions"`
}

type topicConfig struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"` // null when sensitive
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive"`
}

// topicPartition is one partition row. Offsets are null when they could
// not be listed; error then says why.
type topicPartition struct {
	Partition       int32   `json:"partition"`
	Leader          int32   `json:"leader"` // -1 without a leader
	LeaderEpoch     int32   `json:"leader_epoch"`
	Replicas        []int32 `json:"replicas"`
	ISR             []int32 `json:"isr"`
	OfflineReplicas []int32 `json:"offline_replicas"`
	// The eligible leader replicas (KIP-966), null when the brokers do not
	// serve DescribeTopicPartitions.
	ELR            []int32 `json:"eligible_leader_replicas"`
	LastKnownELR   []int32 `json:"last_known_elr"`
	LogStartOffset *int64  `json:"log_start_offset"`
	HighWatermark  *int64  `json:"high_watermark"`
	Error          *string `json:"error"`
	// ReplicaSizes is one entry per replica, in replica order; only with
	// --sizes, so the document without it is unchanged.
	ReplicaSizes []replicaSize `json:"replica_sizes,omitempty"`
}

// replicaSize is one replica's log as its broker's DescribeLogDirs
// reports it. Size and Dir are null when the broker did not report the
// replica (it is down, or failed to answer).
type replicaSize struct {
	Broker    int32   `json:"broker"`
	Dir       *string `json:"dir"`
	Size      *int64  `json:"size"`
	OffsetLag *int64  `json:"offset_lag"`
}

func runTopicDescribe(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("topic describe")
	var filter partitionFilter
	fs.BoolVar(&filter.underReplicated, "under-replicated-partitions", false, "")
	fs.BoolVar(&filter.underMinISR, "under-min-isr-partitions", false, "")
	fs.BoolVar(&filter.unavailable, "unavailable-partitions", false, "")
	sizes := fs.Bool("sizes", false, "")
	names, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, topicDescribeUsage, stdout, stderr)
	}
	if len(names) == 0 && !filter.any() {
		return reportUsage(stderr, topicDescribeUsage, usagef("name at least one TOPIC to describe (or give a partition filter)"))
	}
	names = dedupe(names)

	return runWithClient(cf, topicDescribeUsage, stderr, func(ctx context.Context, c *client) error {
		res, problems, err := describeTopics(ctx, c, names)
		if err != nil {
			return err
		}
		if *sizes {
			if err := fillSizes(ctx, c, res.Topics); err != nil {
				return err
			}
		}
		switch {
		case filter.any():
			res.Topics = filter.apply(res)
			if cf.json {
				err = writeJSON(stdout, res)
			} else {
				err = printFilteredPartitions(stdout, res.Topics)
			}
		case cf.json:
			err = writeJSON(stdout, res)
		default:
			err = printTopicDescriptions(stdout, res.Topics, *sizes)
		}
		if err != nil {
			return err
		}
		return reportTopicErrors(stderr, res.NotFound, problems)
	})
}

// describeTopics gathers what "topic describe" shows from four sources:
// metadata (partitions, leaders, replicas), DescribeTopicPartitions when
// the brokers serve it (the same plus ELR), ListOffsets (log start and
// high watermark) and DescribeConfigs. Problems are per-topic failures of
// the latter two; err is reserved for failures that leave nothing to show.
// No names means every topic.
func describeTopics(ctx context.Context, c *client, names []string) (topicDescribeResult, []topicError, error) {
	res := topicDescribeResult{Topics: []describedTopic{}, NotFound: []string{}}
	var problems []topicError

	md, err := c.adm.Metadata(ctx, names...)
	if err != nil {
		return res, nil, err
	}
	if len(names) == 0 {
		names = md.Topics.Names()
		sort.Strings(names)
	}
	res.live = make(map[int32]bool, len(md.Brokers))
	for _, b := range md.Brokers {
		res.live[b.NodeID] = true
	}
	var found []string
	byName := make(map[string]*describedTopic)
	for _, n := range names {
		td, ok := md.Topics[n]
		switch {
		case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
			res.NotFound = append(res.NotFound, n)
			continue
		case td.Err != nil:
			problems = append(problems, topicError{n, td.Err.Error()})
			continue
		}
		t := &describedTopic{
			Topic:             n,
			TopicID:           topicIDString(td.ID),
			Internal:          td.IsInternal,
			PartitionCount:    len(td.Partitions),
			ReplicationFactor: replicationFactor(td.Partitions),
			Configs:           []topicConfig{},
			Partitions:        []topicPartition{},
		}
		for _, p := range td.Partitions.Sorted() {
			tp := topicPartition{
				Partition:       p.Partition,
				Leader:          p.Leader,
				LeaderEpoch:     p.LeaderEpoch,
				Replicas:        nonNil(p.Replicas),
				ISR:             nonNil(p.ISR),
				OfflineReplicas: nonNil(p.OfflineReplicas),
			}
			// A partition without a leader is a state the row shows,
			// not a failure of the command.
			if p.Err != nil && !errors.Is(p.Err, kerr.LeaderNotAvailable) {
				tp.Error = errString(p.Err)
			}
			t.Partitions = append(t.Partitions, tp)
		}
		found = append(found, n)
		byName[n] = t
	}
	if len(found) > 0 {
		if err := fillFromDescribePartitions(ctx, c, found, byName); err != nil {
			return res, nil, err
		}
		if err := fillOffsets(ctx, c, found, byName); err != nil {
			return res, nil, err
		}
		cfgProblems, err := fillConfigs(ctx, c, found, byName)
		if err != nil {
			return res, nil, err
		}
		problems = append(problems, cfgProblems...)
	}
	for _, n := range found {
		t := byName[n]
		for _, p := range t.Partitions {
			if p.Error != nil {
				problems = append(problems, topicError{n, fmt.Sprintf("partition %d: %s", p.Partition, *p.Error)})
			}
		}
		res.Topics = append(res.Topics, *t)
	}
	return res, problems, nil
}

// fillOffsets lists log start offsets and high watermarks of the
// partitions that have a leader: asking for a leaderless one would only
// retry until the deadline. A broker that fails leaves its partitions'
// offsets null with an error, not the command.
func fillOffsets(ctx context.Context, c *client, topics []string, byName map[string]*describedTopic) error {
	led := map[string][]int32{}
	for _, n := range topics {
		for _, p := range byName[n].Partitions {
			if p.Error == nil && p.Leader >= 0 {
				led[n] = append(led[n], p.Partition)
			}
		}
	}
	starts, err := listOffsetsOf(ctx, c, led, -2)
	if err != nil {
		return fmt.Errorf("listing log start offsets: %w", err)
	}
	ends, err := listOffsetsOf(ctx, c, led, -1)
	if err != nil {
		return fmt.Errorf("listing high watermarks: %w", err)
	}
	for _, n := range topics {
		t := byName[n]
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if p.Error != nil || p.Leader < 0 {
				continue // metadata error, or no leader to ask: offsets would only repeat it
			}
			start, serr := lookupEnd(starts, n, p.Partition)
			end, eerr := lookupEnd(ends, n, p.Partition)
			switch {
			case serr != nil:
				p.Error = errString(fmt.Errorf("log start offset: %w", serr))
			case eerr != nil:
				p.Error = errString(fmt.Errorf("high watermark: %w", eerr))
			}
			if serr == nil {
				p.LogStartOffset = &start
			}
			if eerr == nil {
				p.HighWatermark = &end
			}
		}
	}
	return nil
}

// tolerateShardErrors keeps partial results of a sharded request: the
// partitions of a failed shard are simply missing from them.
func tolerateShardErrors(ctx context.Context, err error) error {
	var se *kadm.ShardErrors
	if err != nil && (!errors.As(err, &se) || ctx.Err() != nil) {
		return err
	}
	return nil
}

func fillConfigs(ctx context.Context, c *client, topics []string, byName map[string]*describedTopic) ([]topicError, error) {
	rcs, err := c.adm.DescribeTopicConfigs(ctx, topics...)
	if err := tolerateShardErrors(ctx, err); err != nil {
		return nil, fmt.Errorf("describing configs: %w", err)
	}
	var problems []topicError
	seen := make(map[string]bool)
	for _, rc := range rcs {
		t := byName[rc.Name]
		if t == nil {
			continue
		}
		seen[rc.Name] = true
		if rc.Err != nil {
			problems = append(problems, topicError{rc.Name, "configs: " + topicFailure(rc.Err, rc.ErrMessage)})
			continue
		}
		for _, cfg := range rc.Configs {
			if cfg.Key == minISRConfig && cfg.Value != nil {
				if n, err := strconv.Atoi(*cfg.Value); err == nil {
					t.MinISR = &n
				}
			}
			if cfg.Source == kmsg.ConfigSourceDefaultConfig {
				continue
			}
			t.Configs = append(t.Configs, topicConfig{
				Name: cfg.Key, Value: cfg.Value, Source: cfg.Source.String(), Sensitive: cfg.Sensitive,
			})
		}
		sort.Slice(t.Configs, func(i, j int) bool { return t.Configs[i].Name < t.Configs[j].Name })
	}
	for _, n := range topics {
		if !seen[n] {
			problems = append(problems, topicError{n, "configs: not in the DescribeConfigs response"})
		}
	}
	return problems, nil
}

// fillSizes asks every broker for its log dirs (DescribeLogDirs) and gives
// each partition one size per replica. A broker that fails to answer
// leaves its replicas' sizes null rather than failing the command: sizes
// are most wanted when something is wrong.
func fillSizes(ctx context.Context, c *client, topics []describedTopic) error {
	var set kadm.TopicsSet
	for _, t := range topics {
		for _, p := range t.Partitions {
			set.Add(t.Topic, p.Partition)
		}
	}
	if len(set) == 0 {
		return nil
	}
	all, err := c.adm.DescribeAllLogDirs(ctx, set)
	if err := tolerateShardErrors(ctx, err); err != nil {
		return fmt.Errorf("describing log dirs: %w", err)
	}
	for i := range topics {
		t := &topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			p.ReplicaSizes = make([]replicaSize, 0, len(p.Replicas))
			for _, b := range p.Replicas {
				rs := replicaSize{Broker: b}
				// A broker reports a partition from one dir; a future
				// replica (being moved between dirs) would be a second,
				// and the current one is the size that counts.
				for _, d := range all[b] {
					dp, ok := d.Topics.Lookup(t.Topic, p.Partition)
					if !ok || (dp.IsFuture && rs.Size != nil) {
						continue
					}
					rs.Dir, rs.Size, rs.OffsetLag = &dp.Dir, &dp.Size, &dp.OffsetLag
				}
				p.ReplicaSizes = append(p.ReplicaSizes, rs)
			}
		}
	}
	return nil
}

// formatSizes renders replica sizes as "1:4096,2:-" so they fit a cell.
func formatSizes(rs []replicaSize) string {
	if len(rs) == 0 {
		return "-"
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		size := "-"
		if r.Size != nil {
			size = strconv.FormatInt(*r.Size, 10)
		}
		s[i] = fmt.Sprintf("%d:%s", r.Broker, size)
	}
	return strings.Join(s, ",")
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}

// printTopicDescriptions renders "topic describe" for people: a header
// block per topic, its non-default configs, then the partition table.
func printTopicDescriptions(w io.Writer, topics []describedTopic, sizes bool) error {
	for i, t := range topics {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := printTopicDescription(w, t, sizes); err != nil {
			return err
		}
	}
	return nil
}

func printTopicDescription(w io.Writer, t describedTopic, sizes bool) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "Topic:\t%s\n", t.Topic)
	fmt.Fprintf(tw, "Topic ID:\t%s\n", orDash(t.TopicID))
	fmt.Fprintf(tw, "Internal:\t%t\n", t.Internal)
	fmt.Fprintf(tw, "Partitions:\t%d\n", t.PartitionCount)
	fmt.Fprintf(tw, "Replication factor:\t%d\n", t.ReplicationFactor)
	fmt.Fprintf(tw, "Min in-sync replicas:\t%s\n", formatMinISR(t.MinISR))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	if len(t.Configs) == 0 {
		fmt.Fprintln(w, "No non-default configs.")
	} else {
		tw = newTable(w)
		fmt.Fprintln(tw, "CONFIG\tVALUE\tSOURCE")
		for _, c := range t.Configs {
			val := "-"
			switch {
			case c.Sensitive:
				val = "(sensitive)"
			case c.Value != nil:
				val = *c.Value
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, orDash(val), c.Source)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w)
	tw = newTable(w)
	header := "PARTITION\tLEADER\tLEADER-EPOCH\tREPLICAS\tISR\tELR\tLAST-KNOWN-ELR\tOFFLINE\tLOG-START-OFFSET\tHIGH-WATERMARK"
	if sizes {
		header += "\tSIZES"
	}
	fmt.Fprintln(tw, header)
	for _, p := range t.Partitions {
		row := fmt.Sprintf("%d\t%s\t%s\t%s\t%s", p.Partition, partitionCells(p),
			formatNodes(p.OfflineReplicas), formatOffset(p.LogStartOffset), formatOffset(p.HighWatermark))
		if sizes {
			row += "\t" + formatSizes(p.ReplicaSizes)
		}
		fmt.Fprintln(tw, row)
	}
	return tw.Flush()
}

// formatNodes renders broker IDs as "1,2,3" so a replica set fits a cell.
func formatNodes(ids []int32) string {
	if len(ids) == 0 {
		return "-"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}
