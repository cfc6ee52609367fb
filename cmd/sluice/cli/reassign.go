package cli

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const reassignUsage = `usage: sluice partitions reassign --generate --topics-to-move-json-file FILE --broker-list IDS [flags]
       sluice partitions reassign --execute --reassignment-json-file FILE [--throttle BYTES] [--additional] [flags]
       sluice partitions reassign --verify --reassignment-json-file FILE [--preserve-throttles] [flags]
       sluice partitions reassign --cancel --reassignment-json-file FILE [--preserve-throttles] [flags]

Moves partition replicas between brokers, as kafka-reassign-partitions.sh
does and with its files:

  --generate  proposes a plan that spreads the partitions of the topics in
              FILE ({"version":1,"topics":[{"topic":"t"}]}) over the
              brokers of --broker-list, keeping each topic's replication
              factor and, when the brokers have racks (broker.rack),
              putting a partition's replicas in as many racks as it
              can. It prints the current assignment (keep it to roll
              back) and the proposal, both as reassignment files:
              {"version":1,"partitions":[{"topic":"t","partition":0,
              "replicas":[1,2],"log_dirs":["any","any"]}]}
              Nothing changes on the cluster.
  --execute   starts the moves of FILE (AlterPartitionReassignments) and
              prints the current assignment for a rollback. With
              --throttle, replication for the move is limited to BYTES per
              second: leader.replication.throttled.rate and
              follower.replication.throttled.rate on every broker involved,
              leader/follower.replication.throttled.replicas on the topics.
              Run --verify until it reports completion to remove them.
  --verify    reports each partition of FILE as completed, still in
              progress, or differing from the plan with no move under way;
              once none is in progress it removes the throttles.
  --cancel    stops the moves of FILE that are still in progress (their
              replicas return to the previous set) and removes the
              throttles.

The exit code is 1 if the cluster rejected any partition.

flags:
  --generate               propose a plan
  --execute                start a plan
  --verify                 check a plan's progress
  --cancel                 stop a plan's moves
  --topics-to-move-json-file FILE  the topics to spread (--generate)
  --broker-list IDS        comma-separated broker IDs to spread over
                           (--generate)
  --disable-rack-aware     ignore the brokers' racks (--generate)
  --reassignment-json-file FILE  the plan (--execute, --verify, --cancel)
  --throttle BYTES         replication limit in bytes per second per broker
                           while the plan runs (--execute)
  --additional             start the plan even though other moves are in
                           progress (--execute)
  --preserve-throttles     leave the throttles in place (--verify, --cancel)
` + commonFlagsUsage

type reassignFlags struct {
	generate, execute, verify, cancel bool
	topicsFile, planFile, brokerList  string
	throttle                          int64
	additional, preserveThrottles     bool
	disableRackAware                  bool
	timeout                           time.Duration
}

func runReassign(args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("partitions reassign")
	var f reassignFlags
	fs.BoolVar(&f.generate, "generate", false, "")
	fs.BoolVar(&f.execute, "execute", false, "")
	fs.BoolVar(&f.verify, "verify", false, "")
	fs.BoolVar(&f.cancel, "cancel", false, "")
	fs.StringVar(&f.topicsFile, "topics-to-move-json-file", "", "")
	fs.StringVar(&f.brokerList, "broker-list", "", "")
	fs.StringVar(&f.planFile, "reassignment-json-file", "", "")
	fs.Int64Var(&f.throttle, "throttle", -1, "")
	fs.BoolVar(&f.additional, "additional", false, "")
	fs.BoolVar(&f.preserveThrottles, "preserve-throttles", false, "")
	fs.BoolVar(&f.disableRackAware, "disable-rack-aware", false, "")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, reassignUsage, stdout, stderr)
	}
	if len(rest) > 0 {
		return reportUsage(stderr, reassignUsage, usagef("unexpected argument %q", rest[0]))
	}
	if err := f.check(); err != nil {
		return reportUsage(stderr, reassignUsage, err)
	}
	var brokers []int32
	if f.generate {
		if brokers, err = parseBrokerList(f.brokerList); err != nil {
			return reportUsage(stderr, reassignUsage, err)
		}
	}
	// The file is read before connecting: a bad one needs no cluster.
	var plan reassignmentPlan
	var topics []string
	if f.generate {
		topics, err = readInput(f.topicsFile, parseTopicsToMove)
	} else {
		plan, err = readInput(f.planFile, parsePlan)
	}
	if err != nil {
		return report(stderr, reassignUsage, cf.timeout, err)
	}

	f.timeout = cf.timeout
	return runWithClient(cf, reassignUsage, stderr, func(ctx context.Context, c *client) error {
		setAdminTimeout(c, cf.timeout)
		if !f.generate {
			if err := requireKeys(ctx, c, kmsg.AlterPartitionAssignments, kmsg.ListPartitionReassignments); err != nil {
				return err
			}
		}
		switch {
		case f.generate:
			return reassignGenerate(ctx, c, cf.json, stdout, topics, brokers, f.disableRackAware)
		case f.execute:
			return reassignExecute(ctx, c, cf.json, stdout, stderr, plan, f)
		case f.verify:
			return reassignVerify(ctx, c, cf.json, stdout, plan, f.preserveThrottles)
		default:
			return reassignCancel(ctx, c, cf.json, stdout, stderr, plan, f.preserveThrottles)
		}
	})
}

// check enforces one action and the flags each action takes.
func (f reassignFlags) check() error {
	n := 0
	for _, b := range []bool{f.generate, f.execute, f.verify, f.cancel} {
		if b {
			n++
		}
	}
	switch {
	case n != 1:
		return usagef("give exactly one of --generate, --execute, --verify, --cancel")
	case f.generate && (f.topicsFile == "" || f.brokerList == ""):
		return usagef("--generate needs --topics-to-move-json-file and --broker-list")
	case f.generate && f.planFile != "":
		return usagef("--generate takes --topics-to-move-json-file, not --reassignment-json-file")
	case !f.generate && f.planFile == "":
		return usagef("--reassignment-json-file is required")
	case !f.generate && (f.topicsFile != "" || f.brokerList != ""):
		return usagef("--topics-to-move-json-file and --broker-list go with --generate")
	case f.throttle != -1 && !f.execute:
		return usagef("--throttle goes with --execute")
	case f.execute && f.throttle != -1 && f.throttle <= 0:
		return usagef("--throttle must be positive, got %d", f.throttle)
	case f.additional && !f.execute:
		return usagef("--additional goes with --execute")
	case f.disableRackAware && !f.generate:
		return usagef("--disable-rack-aware goes with --generate")
	case f.preserveThrottles && !f.verify && !f.cancel:
		return usagef("--preserve-throttles goes with --verify or --cancel")
	}
	return nil
}

func readInput[T any](path string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	data, err := os.ReadFile(path)
	if err != nil {
		return zero, err
	}
	v, err := parse(data)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// currentAssignment reads the replicas of every partition of topics. A
// topic that does not exist is an error: a plan for it cannot run.
func currentAssignment(ctx context.Context, c *client, topics []string) (map[string][][]int32, kadm.Metadata, error) {
	md, err := c.adm.Metadata(ctx, topics...)
	if err != nil {
		return nil, md, err
	}
	out := make(map[string][][]int32, len(topics))
	for _, t := range topics {
		td, ok := md.Topics[t]
		if !ok || td.Err != nil {
			return nil, md, singleTopicError(t, orNotFound(ok, td.Err), "")
		}
		parts := make([][]int32, len(td.Partitions))
		for _, p := range td.Partitions {
			if int(p.Partition) >= len(parts) || p.Partition < 0 {
				return nil, md, fmt.Errorf("topic %q: partition %d out of range of its %d partitions", t, p.Partition, len(parts))
			}
			parts[p.Partition] = p.Replicas
		}
		out[t] = parts
	}
	return out, md, nil
}

type generateResult struct {
	Current  reassignmentPlan `json:"current"`
	Proposed reassignmentPlan `json:"proposed"`
}

func reassignGenerate(ctx context.Context, c *client, asJSON bool, stdout io.Writer, topics []string, brokers []int32, disableRackAware bool) error {
	current, md, err := currentAssignment(ctx, c, topics)
	if err != nil {
		return err
	}
	if unknown := unknownBrokers(md, brokers); len(unknown) > 0 {
		return fmt.Errorf("--broker-list names brokers the cluster does not have: %s", formatNodes(unknown))
	}
	racks, err := brokerRacks(md, brokers, disableRackAware)
	if err != nil {
		return err
	}
	proposed, err := proposePlan(current, topics, brokers, racks)
	if err != nil {
		return err
	}
	res := generateResult{Current: reassignmentPlan{Version: 1, Partitions: []plannedPartition{}}, Proposed: proposed}
	for _, t := range topics {
		for p, replicas := range current[t] {
			res.Current.Partitions = append(res.Current.Partitions, newPlannedPartition(t, int32(p), replicas))
		}
	}
	if asJSON {
		return writeJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "Current partition replica assignment\n%s\n\nProposed partition reassignment configuration\n%s\n",
		res.Current.compact(), res.Proposed.compact())
	return nil
}

// brokerRacks is the rack of each broker of the list for a rack-aware
// plan, or nil for a plan that ignores racks: when told to, or when no
// broker has a rack. As in Kafka, some brokers with racks and some without
// is an error: the placement could not be what the racks ask for.
func brokerRacks(md kadm.Metadata, brokers []int32, disable bool) (map[int32]string, error) {
	if disable {
		return nil, nil
	}
	racks := map[int32]string{}
	for _, b := range md.Brokers {
		if b.Rack != nil && *b.Rack != "" && slices.Contains(brokers, b.NodeID) {
			racks[b.NodeID] = *b.Rack
		}
	}
	switch len(racks) {
	case 0:
		return nil, nil
	case len(brokers):
		return racks, nil
	}
	return nil, fmt.Errorf("only %d of the %d brokers have a rack (broker.rack): set one on every broker, or give --disable-rack-aware", len(racks), len(brokers))
}

// unknownBrokers are the IDs not among the cluster's live brokers.
func unknownBrokers(md kadm.Metadata, ids []int32) []int32 {
	live := md.Brokers.NodeIDs()
	var out []int32
	for _, id := range ids {
		if !slices.Contains(live, id) {
			out = append(out, id)
		}
	}
	return out
}

// planTopics are the distinct topics of a plan, sorted.
func planTopics(plan reassignmentPlan) []string {
	var out []string
	for _, pp := range plan.Partitions {
		out = append(out, pp.Topic)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// partitionError is a partition the cluster rejected; its json tags are
// part of the --json interface.
type partitionError struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Error     string `json:"error"`
}

type partitionRef struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

type executeResult struct {
	Current  reassignmentPlan `json:"current"` // for a rollback
	Throttle *int64           `json:"throttle"`
	Started  []partitionRef   `json:"started"`
	Errors   []partitionError `json:"errors"`
}

func reassignExecute(ctx context.Context, c *client, asJSON bool, stdout, stderr io.Writer, plan reassignmentPlan, f reassignFlags) error {
	topics := planTopics(plan)
	current, md, err := currentAssignment(ctx, c, topics)
	if err != nil {
		return err
	}
	res := executeResult{Current: reassignmentPlan{Version: 1, Partitions: []plannedPartition{}},
		Started: []partitionRef{}, Errors: []partitionError{}}
	currentByName := map[string][]int32{}
	var targets []int32
	for _, pp := range plan.Partitions {
		parts := current[pp.Topic]
		if int(pp.Partition) >= len(parts) {
			return fmt.Errorf("partition %s does not exist", pp.name())
		}
		currentByName[pp.name()] = parts[pp.Partition]
		res.Current.Partitions = append(res.Current.Partitions, newPlannedPartition(pp.Topic, pp.Partition, parts[pp.Partition]))
		targets = append(targets, pp.Replicas...)
	}
	slices.Sort(targets)
	if unknown := unknownBrokers(md, slices.Compact(targets)); len(unknown) > 0 {
		return fmt.Errorf("the plan names brokers the cluster does not have: %s", formatNodes(unknown))
	}
	if !f.additional {
		ongoing, err := ongoingReassignments(ctx, c, f.timeout)
		if err != nil {
			return err
		}
		if ongoing > 0 {
			return fmt.Errorf("%s already being reassigned: let them finish (--verify), cancel them, or add --additional to start this plan as well",
				plural(int64(ongoing), "partition is"))
		}
	}
	if f.throttle > 0 {
		if err := setThrottles(ctx, c, computeThrottles(plan, currentByName), f.throttle); err != nil {
			return err
		}
		res.Throttle = &f.throttle
	}

	var req kadm.AlterPartitionAssignmentsReq
	for _, pp := range plan.Partitions {
		req.Assign(pp.Topic, pp.Partition, pp.Replicas)
	}
	resps, err := c.adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return fmt.Errorf("starting the reassignment: %w", err)
	}
	for _, pp := range plan.Partitions {
		r, ok := resps[pp.Topic][pp.Partition]
		switch {
		case !ok:
			res.Errors = append(res.Errors, partitionError{pp.Topic, pp.Partition, "missing from the broker's response"})
		case r.Err != nil:
			res.Errors = append(res.Errors, partitionError{pp.Topic, pp.Partition, errWithMessage(r.Err, &r.ErrMessage)})
		default:
			res.Started = append(res.Started, partitionRef{pp.Topic, pp.Partition})
		}
	}
	if asJSON {
		if err := writeJSON(stdout, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "Current partition replica assignment\n\n%s\n\nSave this to use as the --reassignment-json-file option during rollback\n", res.Current.compact())
		if res.Throttle != nil {
			fmt.Fprintf(stdout, "Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed.\n")
			fmt.Fprintf(stdout, "The inter-broker throttle limit was set to %d B/s\n", *res.Throttle)
		}
		if len(res.Started) > 0 {
			fmt.Fprintf(stdout, "Successfully started partition reassignments for %s\n", joinRefs(res.Started))
		}
	}
	return reportPartitionErrors(stderr, res.Errors)
}

func joinRefs(rs []partitionRef) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.Topic + "-" + strconv.Itoa(int(r.Partition))
	}
	return strings.Join(s, ",")
}

func reportPartitionErrors(stderr io.Writer, errs []partitionError) error {
	for _, e := range errs {
		fmt.Fprintf(stderr, "sluice: partition %s-%d: %s\n", e.Topic, e.Partition, oneLine(e.Error))
	}
	if len(errs) > 0 {
		return errReported
	}
	return nil
}

// ongoingReassignments counts the partitions being reassigned anywhere in
// the cluster: a request naming no topics lists them all, which kadm's
// helper cannot send.
func ongoingReassignments(ctx context.Context, c *client, timeout time.Duration) (int, error) {
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	req.TimeoutMillis = int32(min(timeout.Milliseconds(), math.MaxInt32))
	resp, err := req.RequestWith(ctx, c.kgo)
	if err != nil {
		return 0, fmt.Errorf("listing reassignments: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return 0, fmt.Errorf("listing reassignments: %s", errWithMessage(err, resp.ErrorMessage))
	}
	n := 0
	for _, t := range resp.Topics {
		n += len(t.Partitions)
	}
	return n, nil
}

// setThrottles applies the topic throttles, then the broker rates, as
// Kafka's tool does, so no broker is rate-limited for replicas that were
// not marked yet.
func setThrottles(ctx context.Context, c *client, th reassignThrottles, rate int64) error {
	for _, t := range slices.Sorted(mapsKeys(th.leader, th.follower)) {
		var ops []kadm.AlterConfig
		if v, ok := th.leader[t]; ok {
			ops = append(ops, kadm.AlterConfig{Op: kadm.SetConfig, Name: leaderThrottledReplicas, Value: kadm.StringPtr(v)})
		}
		if v, ok := th.follower[t]; ok {
			ops = append(ops, kadm.AlterConfig{Op: kadm.SetConfig, Name: followerThrottledReplica, Value: kadm.StringPtr(v)})
		}
		if err := alterConfigs(c.adm.AlterTopicConfigs(ctx, ops, t)); err != nil {
			return fmt.Errorf("throttling topic %q: %w", t, err)
		}
	}
	v := kadm.StringPtr(strconv.FormatInt(rate, 10))
	ops := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: leaderThrottledRate, Value: v}, {Op: kadm.SetConfig, Name: followerThrottledRate, Value: v}}
	if err := alterConfigs(c.adm.AlterBrokerConfigs(ctx, ops, th.brokers...)); err != nil {
		return fmt.Errorf("throttling brokers %s: %w", formatNodes(th.brokers), err)
	}
	return nil
}

// clearThrottles removes what setThrottles set: the rates on every broker
// (a broker that left the plan keeps none) and the replica lists on the
// plan's topics.
func clearThrottles(ctx context.Context, c *client, w io.Writer, asJSON bool, brokers []int32, topics []string) error {
	if !asJSON {
		fmt.Fprintf(w, "Clearing broker-level throttles on brokers %s\n", formatNodes(brokers))
	}
	ops := []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: leaderThrottledRate}, {Op: kadm.DeleteConfig, Name: followerThrottledRate}}
	if err := alterConfigs(c.adm.AlterBrokerConfigs(ctx, ops, brokers...)); err != nil {
		return fmt.Errorf("clearing broker throttles: %w", err)
	}
	ops = []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: leaderThrottledReplicas}, {Op: kadm.DeleteConfig, Name: followerThrottledReplica}}
	for _, t := range topics {
		if !asJSON {
			fmt.Fprintf(w, "Clearing topic-level throttles on topic %s\n", t)
		}
		if err := alterConfigs(c.adm.AlterTopicConfigs(ctx, ops, t)); err != nil {
			return fmt.Errorf("clearing the throttles of topic %q: %w", t, err)
		}
	}
	return nil
}

// alterConfigs turns an IncrementalAlterConfigs answer into its first error.
func alterConfigs(rs kadm.AlterConfigsResponses, err error) error {
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r.Err != nil {
			return fmt.Errorf("%s: %s", r.Name, errWithMessage(r.Err, &r.ErrMessage))
		}
	}
	return nil
}

func mapsKeys(ms ...map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range ms {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					if !yield(k) {
						return
					}
				}
			}
		}
	}
}
