package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partitionHealth is what "cluster describe" and the filters of "topic
// describe" report about a partition. The definitions are kafka-topics.sh's,
// so both tools flag the same partitions:
//
//   - under-replicated: fewer in-sync replicas than replicas;
//   - under-min-ISR: no leader, or fewer in-sync replicas than the topic's
//     min.insync.replicas (acks=all produce fails there);
//   - unavailable (offline): no leader, or a leader that is not a live
//     broker (Metadata lists only live brokers).
type partitionHealth struct {
	UnderReplicated bool
	UnderMinISR     bool
	Unavailable     bool
}

// classifyPartition computes a partition's health. minISR is the topic's
// min.insync.replicas, 0 when unknown (under-min-ISR then only flags a
// partition without a leader).
func classifyPartition(leader int32, replicas, isr []int32, minISR int, live map[int32]bool) partitionHealth {
	noLeader := leader < 0
	return partitionHealth{
		UnderReplicated: len(isr) < len(replicas),
		UnderMinISR:     noLeader || minISR > 0 && len(isr) < minISR,
		Unavailable:     noLeader || !live[leader],
	}
}

// labels names the problems, for a STATUS column.
func (h partitionHealth) labels() []string {
	var out []string
	if h.Unavailable {
		out = append(out, "offline")
	}
	if h.UnderMinISR {
		out = append(out, "under-min-isr")
	}
	if h.UnderReplicated {
		out = append(out, "under-replicated")
	}
	return out
}

const minISRConfig = "min.insync.replicas"

// minInsyncReplicas reads min.insync.replicas of each topic, asking only for
// that config so a cluster with many topics answers little. A topic whose
// config could not be read is a problem, not a failure: the caller still
// reports the rest.
func minInsyncReplicas(ctx context.Context, c *client, topics []string) (map[string]int, []topicError, error) {
	out := make(map[string]int, len(topics))
	if len(topics) == 0 {
		return out, nil, nil
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	for _, t := range topics {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName, r.ConfigNames = kmsg.ConfigResourceTypeTopic, t, []string{minISRConfig}
		req.Resources = append(req.Resources, r)
	}
	resp, err := req.RequestWith(ctx, c.kgo)
	if err != nil {
		return nil, nil, fmt.Errorf("describing %s: %w", minISRConfig, err)
	}
	var problems []topicError
	seen := make(map[string]bool)
	for _, r := range resp.Resources {
		seen[r.ResourceName] = true
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			problems = append(problems, topicError{r.ResourceName, minISRConfig + ": " + errWithMessage(err, r.ErrorMessage)})
			continue
		}
		for _, cfg := range r.Configs {
			if cfg.Name != minISRConfig || cfg.Value == nil {
				continue
			}
			if n, err := strconv.Atoi(*cfg.Value); err == nil {
				out[r.ResourceName] = n
			}
		}
	}
	for _, t := range topics {
		if !seen[t] {
			problems = append(problems, topicError{t, minISRConfig + ": not in the DescribeConfigs response"})
		}
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Topic < problems[j].Topic })
	return out, problems, nil
}

// supportsKey reports whether the cluster serves an API, from the
// ApiVersions answer of one broker (brokers of a cluster run the same
// version outside a rolling upgrade).
func supportsKey(ctx context.Context, c *client, key kmsg.Key) (bool, error) {
	missing, err := missingKeys(ctx, c, key)
	return len(missing) == 0, err
}

// requireKeys fails with a plain sentence when the cluster does not serve
// an API the command needs, rather than with the client's "broker is too
// old" from deep inside the request.
func requireKeys(ctx context.Context, c *client, keys ...kmsg.Key) error {
	missing, err := missingKeys(ctx, c, keys...)
	if err != nil || len(missing) == 0 {
		return err
	}
	names := make([]string, len(missing))
	for i, k := range missing {
		names[i] = fmt.Sprintf("%s (API key %d)", kmsg.NameForKey(int16(k)), k)
	}
	return fmt.Errorf("the brokers do not support %s", strings.Join(names, " or "))
}

func missingKeys(ctx context.Context, c *client, keys ...kmsg.Key) ([]kmsg.Key, error) {
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, c.kgo)
	if err != nil {
		return nil, fmt.Errorf("reading API versions: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("reading API versions: %w", err)
	}
	served := make(map[int16]bool, len(resp.ApiKeys))
	for _, k := range resp.ApiKeys {
		served[k.ApiKey] = true
	}
	var missing []kmsg.Key
	for _, k := range keys {
		if !served[int16(k)] {
			missing = append(missing, k)
		}
	}
	return missing, nil
}
