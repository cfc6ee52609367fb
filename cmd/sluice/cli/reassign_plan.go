package cli

// The decisions of "partitions reassign" that need no cluster: reading and
// writing kafka-reassign-partitions.sh's JSON files, proposing a placement,
// working out which replicas and brokers to throttle, and judging whether a
// partition's move finished. Kept free of I/O so the tests can pin them.

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// reassignmentPlan is kafka-reassign-partitions.sh's reassignment file:
// {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],
// "log_dirs":["any","any"]}]}. --generate writes it, --execute, --verify
// and --cancel read it.
type reassignmentPlan struct {
	Version    int                `json:"version"`
	Partitions []plannedPartition `json:"partitions"`
}

type plannedPartition struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Replicas  []int32  `json:"replicas"`
	LogDirs   []string `json:"log_dirs"`
}

// anyLogDir is the log_dirs entry that leaves the directory to the broker.
const anyLogDir = "any"

// newPlannedPartition is a plan entry with log_dirs "any", as Kafka writes.
func newPlannedPartition(topic string, partition int32, replicas []int32) plannedPartition {
	dirs := make([]string, len(replicas))
	for i := range dirs {
		dirs[i] = anyLogDir
	}
	return plannedPartition{Topic: topic, Partition: partition, Replicas: slices.Clone(replicas), LogDirs: dirs}
}

func (p plannedPartition) name() string { return p.Topic + "-" + strconv.Itoa(int(p.Partition)) }

// compact renders the plan on one line, as Kafka's tool prints it, so it
// can be pasted into a file.
func (p reassignmentPlan) compact() string {
	b, _ := json.Marshal(p) // cannot fail: plain structs
	return string(b)
}

// parsePlan reads and checks a reassignment file. Moving replicas between
// log directories (log_dirs other than "any") is not supported.
func parsePlan(data []byte) (reassignmentPlan, error) {
	var p reassignmentPlan
	if err := json.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("not a reassignment file: %w", err)
	}
	if p.Version != 0 && p.Version != 1 {
		return p, fmt.Errorf("unsupported version %d (want 1)", p.Version)
	}
	p.Version = 1
	if len(p.Partitions) == 0 {
		return p, fmt.Errorf("no partitions to reassign")
	}
	seen := map[string]bool{}
	for i, pp := range p.Partitions {
		switch {
		case pp.Topic == "":
			return p, fmt.Errorf("partition entry %d has no topic", i)
		case pp.Partition < 0:
			return p, fmt.Errorf("%s: negative partition", pp.name())
		case seen[pp.name()]:
			return p, fmt.Errorf("%s is listed twice", pp.name())
		case len(pp.Replicas) == 0:
			return p, fmt.Errorf("%s: no replicas", pp.name())
		case pp.LogDirs != nil && len(pp.LogDirs) != len(pp.Replicas):
			return p, fmt.Errorf("%s: %d log_dirs for %d replicas", pp.name(), len(pp.LogDirs), len(pp.Replicas))
		}
		seen[pp.name()] = true
		for j, r := range pp.Replicas {
			if r < 0 || slices.Index(pp.Replicas, r) != j {
				return p, fmt.Errorf("%s: replicas %v must be distinct broker IDs", pp.name(), pp.Replicas)
			}
		}
		for _, d := range pp.LogDirs {
			if d != anyLogDir {
				return p, fmt.Errorf("%s: log_dirs %q: moving replicas between log directories is not supported (use \"any\")", pp.name(), d)
			}
		}
		if pp.LogDirs == nil {
			p.Partitions[i] = newPlannedPartition(pp.Topic, pp.Partition, pp.Replicas)
		}
	}
	return p, nil
}

// parseTopicsToMove reads --topics-to-move-json-file:
// {"version":1,"topics":[{"topic":"a"},{"topic":"b"}]}.
func parseTopicsToMove(data []byte) ([]string, error) {
	var doc struct {
		Version int `json:"version"`
		Topics  []struct {
			Topic string `json:"topic"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a topics-to-move file: %w", err)
	}
	if doc.Version != 0 && doc.Version != 1 {
		return nil, fmt.Errorf("unsupported version %d (want 1)", doc.Version)
	}
	var topics []string
	for i, t := range doc.Topics {
		if t.Topic == "" {
			return nil, fmt.Errorf("topic entry %d has no name", i)
		}
		topics = append(topics, t.Topic)
	}
	if len(topics) == 0 {
		return nil, fmt.Errorf("no topics to move")
	}
	slices.Sort(topics)
	return slices.Compact(topics), nil
}

// parseBrokerList reads --broker-list "1,2,3" into sorted distinct IDs.
func parseBrokerList(s string) ([]int32, error) {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || id < 0 {
			return nil, usagef("--broker-list: %q is not a broker ID", f)
		}
		out = append(out, int32(id))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// proposePlan places every partition of the topics on brokers as Kafka's
// assignment does. The first replica of successive partitions walks the
// broker list, and the followers are shifted from it by an amount that
// grows each time the walk wraps, so that the replicas of one broker's
// partitions spread over the others. With racks (broker -> rack, every
// broker named), the list alternates racks and a follower goes to a rack
// without a replica of the partition while there is one, as Kafka's
// rack-aware placement does. Kafka starts at a random broker; here the
// start moves on by each topic's partition count, which spreads leaders
// across topics and makes the plan repeatable. current maps a topic to its
// partitions' replicas (index = partition); each topic keeps its
// replication factor.
func proposePlan(current map[string][][]int32, topics []string, brokers []int32, racks map[int32]string) (reassignmentPlan, error) {
	plan := reassignmentPlan{Version: 1, Partitions: []plannedPartition{}}
	arranged, numRacks := brokers, 1
	if racks != nil {
		arranged, numRacks = rackAlternated(brokers, racks)
	}
	n := len(arranged)
	start := 0
	for _, t := range topics {
		parts := current[t]
		if len(parts) == 0 {
			continue
		}
		rf := len(parts[0])
		if rf == 0 {
			return plan, fmt.Errorf("topic %q: the metadata lists no replicas of partition 0", t)
		}
		if rf > n {
			return plan, fmt.Errorf("topic %q has replication factor %d, more than the %d brokers of --broker-list", t, rf, n)
		}
		shift := start % n
		for p := range parts {
			if p > 0 && p%n == 0 {
				shift++
			}
			first := (start + p) % n
			replicas := []int32{arranged[first]}
			usedRacks := map[string]bool{racks[arranged[first]]: true}
			for k := 0; len(replicas) < rf; k++ {
				b := arranged[(first+1+(shift*numRacks+k)%(n-1))%n]
				rackFree := !usedRacks[racks[b]] || len(usedRacks) == numRacks
				if rackFree && !slices.Contains(replicas, b) {
					replicas = append(replicas, b)
					usedRacks[racks[b]] = true
				}
			}
			plan.Partitions = append(plan.Partitions, newPlannedPartition(t, int32(p), replicas))
		}
		start += len(parts)
	}
	return plan, nil
}

// rackAlternated orders brokers so that consecutive ones sit in different
// racks: the first broker of each rack (racks and brokers sorted), then the
// second of each, and so on, as Kafka does. It also counts the racks.
func rackAlternated(brokers []int32, racks map[int32]string) ([]int32, int) {
	byRack := map[string][]int32{}
	for _, b := range brokers {
		byRack[racks[b]] = append(byRack[racks[b]], b)
	}
	names := slices.Sorted(maps.Keys(byRack))
	var out []int32
	for i := 0; len(out) < len(brokers); i++ {
		for _, r := range names {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
			}
		}
	}
	return out, len(names)
}

// reassignThrottles is what Kafka's tool throttles for a reassignment: on
// each topic, every current replica of a moving partition as a leader
// (leader.replication.throttled.replicas, "partition:broker,...") and every
// replica being added as a follower (follower.replication.throttled.replicas);
// and on every broker that holds or will hold a moving partition, the rates.
type reassignThrottles struct {
	leader   map[string]string // topic -> config value
	follower map[string]string
	brokers  []int32
}

const (
	leaderThrottledRate      = "leader.replication.throttled.rate"
	followerThrottledRate    = "follower.replication.throttled.rate"
	leaderThrottledReplicas  = "leader.replication.throttled.replicas"
	followerThrottledReplica = "follower.replication.throttled.replicas"
)

// computeThrottles works out the throttles of plan given the current
// replicas of its partitions (key: plannedPartition.name()).
func computeThrottles(plan reassignmentPlan, current map[string][]int32) reassignThrottles {
	type pb struct{ p, b int32 }
	leaders, followers := map[string][]pb{}, map[string][]pb{}
	brokers := map[int32]bool{}
	for _, pp := range plan.Partitions {
		cur := current[pp.name()]
		for _, b := range cur {
			leaders[pp.Topic] = append(leaders[pp.Topic], pb{pp.Partition, b})
			brokers[b] = true
		}
		for _, b := range pp.Replicas {
			if !slices.Contains(cur, b) {
				followers[pp.Topic] = append(followers[pp.Topic], pb{pp.Partition, b})
			}
			brokers[b] = true
		}
	}
	render := func(m map[string][]pb) map[string]string {
		out := make(map[string]string, len(m))
		for t, list := range m {
			slices.SortFunc(list, func(a, b pb) int {
				if a.p != b.p {
					return int(a.p - b.p)
				}
				return int(a.b - b.b)
			})
			parts := make([]string, len(list))
			for i, x := range list {
				parts[i] = fmt.Sprintf("%d:%d", x.p, x.b)
			}
			out[t] = strings.Join(parts, ",")
		}
		return out
	}
	th := reassignThrottles{leader: render(leaders), follower: render(followers)}
	for b := range brokers {
		th.brokers = append(th.brokers, b)
	}
	slices.Sort(th.brokers)
	return th
}

// The states --verify reports for a partition of the plan.
const (
	moveInProgress = "in-progress"
	moveCompleted  = "completed"
	moveDiffers    = "differs" // no move under way, but the replicas are not the target
)

// moveState judges one partition as Kafka's tool does: a partition still
// listed by ListPartitionReassignments is in progress; otherwise it is
// complete if its replicas are the target, in order.
func moveState(inProgress bool, current, target []int32) string {
	switch {
	case inProgress:
		return moveInProgress
	case slices.Equal(current, target):
		return moveCompleted
	default:
		return moveDiffers
	}
}
