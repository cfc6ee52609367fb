package cli

import (
	"context"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// parseReplicaAssignment reads kafka-topics.sh's --replica-assignment:
// "1:2:3,2:3:1" is partition 0 on brokers 1,2,3 and partition 1 on 2,3,1.
// As kafka-topics.sh does, it rejects a broker listed twice in a partition
// and partitions of different replica counts.
func parseReplicaAssignment(s string) ([][]int32, error) {
	var out [][]int32
	for p, part := range strings.Split(s, ",") {
		var replicas []int32
		for _, b := range strings.Split(part, ":") {
			id, err := strconv.ParseInt(strings.TrimSpace(b), 10, 32)
			if err != nil || id < 0 {
				return nil, usagef("--replica-assignment: partition %d: %q is not a broker ID", p, b)
			}
			if slices.Contains(replicas, int32(id)) {
				return nil, usagef("--replica-assignment: partition %d lists broker %d twice", p, id)
			}
			replicas = append(replicas, int32(id))
		}
		if p > 0 && len(replicas) != len(out[0]) {
			return nil, usagef("--replica-assignment: partition %d has %d replicas, partition 0 has %d", p, len(replicas), len(out[0]))
		}
		out = append(out, replicas)
	}
	return out, nil
}

// createAssigned creates topics with a manual assignment, which kadm's
// CreateTopics cannot send; the answer is put in kadm's shape so the rest
// of "topic create" does not care which way the topics were made.
func createAssigned(ctx context.Context, c *client, timeout time.Duration, assignment [][]int32,
	configs map[string]*string, names []string) (kadm.CreateTopicResponses, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(min(timeout.Milliseconds(), math.MaxInt32))
	for _, n := range names {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = n, -1, -1
		for p, replicas := range assignment {
			ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			ra.Partition, ra.Replicas = int32(p), replicas
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
		}
		for _, k := range slices.Sorted(maps.Keys(configs)) {
			rc := kmsg.NewCreateTopicsRequestTopicConfig()
			rc.Name, rc.Value = k, configs[k]
			rt.Configs = append(rt.Configs, rc)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, c.kgo)
	if err != nil {
		return nil, err
	}
	out := make(kadm.CreateTopicResponses, len(resp.Topics))
	for _, t := range resp.Topics {
		out[t.Topic] = kadm.CreateTopicResponse{
			Topic: t.Topic, ID: t.TopicID, Err: kerr.ErrorForCode(t.ErrorCode), ErrMessage: unptr(t.ErrorMessage),
			NumPartitions: t.NumPartitions, ReplicationFactor: t.ReplicationFactor,
		}
	}
	return out, nil
}

func unptr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
