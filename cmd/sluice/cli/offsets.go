package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Helpers shared by the commands that address partitions and offsets:
// group reset-offsets, group delete-offsets, produce and consume.

// topicPart names one partition.
type topicPart struct {
	topic     string
	partition int32
}

func (tp topicPart) String() string { return fmt.Sprintf("%s/%d", tp.topic, tp.partition) }

func sortTopicParts(tps []topicPart) {
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].topic != tps[j].topic {
			return tps[i].topic < tps[j].topic
		}
		return tps[i].partition < tps[j].partition
	})
}

// lookupTopics returns the sorted partition numbers of each named topic. A
// topic that does not exist is an error naming it, so every command words
// "unknown topic" the same way. The metadata request never asks the broker
// to auto-create topics, so a typo does not create one either.
func lookupTopics(ctx context.Context, c *client, topics []string) (map[string][]int32, error) {
	md, err := c.adm.Metadata(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("reading topic metadata: %w", err)
	}
	var missing []string
	out := make(map[string][]int32, len(topics))
	for _, t := range topics {
		td, ok := md.Topics[t]
		switch {
		case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
			missing = append(missing, strconv.Quote(t))
			continue
		case td.Err != nil:
			return nil, fmt.Errorf("topic %q: %w", t, td.Err)
		}
		ps := make([]int32, 0, len(td.Partitions))
		for p := range td.Partitions {
			ps = append(ps, p)
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		out[t] = ps
	}
	switch len(missing) {
	case 0:
		return out, nil
	case 1:
		return nil, fmt.Errorf("topic %s not found", missing[0])
	default:
		return nil, fmt.Errorf("topics %s not found", strings.Join(missing, ", "))
	}
}

// bounds are a partition's log start offset and end offset (high
// watermark): the range a consumer position can take.
type bounds struct{ start, end int64 }

func (b bounds) clamp(o int64) int64 { return min(max(o, b.start), b.end) }

// listBounds lists the start and end offsets of every partition of topics.
func listBounds(ctx context.Context, c *client, topics []string) (map[topicPart]bounds, error) {
	starts, err := c.adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing log start offsets: %w", err)
	}
	ends, err := c.adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing log end offsets: %w", err)
	}
	out := make(map[topicPart]bounds)
	starts.Each(func(o kadm.ListedOffset) {
		out[topicPart{o.Topic, o.Partition}] = bounds{start: o.Offset}
	})
	ends.Each(func(o kadm.ListedOffset) {
		k := topicPart{o.Topic, o.Partition}
		b := out[k]
		b.end = o.Offset
		out[k] = b
	})
	return out, nil
}

// listAfterMilli resolves a timestamp to, per partition, the first offset
// whose record is stamped at or after it (the end offset when there is
// none), as Kafka's ListOffsets by time does.
func listAfterMilli(ctx context.Context, c *client, millis int64, topics []string) (map[topicPart]int64, error) {
	listed, err := c.adm.ListOffsetsAfterMilli(ctx, millis, topics...)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing offsets by time: %w", err)
	}
	out := make(map[topicPart]int64)
	listed.Each(func(o kadm.ListedOffset) { out[topicPart{o.Topic, o.Partition}] = o.Offset })
	return out, nil
}

// parseTime reads a point in time given as "@" plus Unix milliseconds (as
// kcat takes it) or as RFC 3339 ("2024-05-01T12:00:00Z", fractions and
// offsets allowed), and returns Unix milliseconds.
func parseTime(s string) (int64, error) {
	if ms, ok := strings.CutPrefix(s, "@"); ok {
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q: want @ followed by Unix milliseconds", s)
		}
		return n, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an RFC 3339 time such as 2024-05-01T12:00:00Z", s)
	}
	if t.Before(time.UnixMilli(0)) {
		return 0, fmt.Errorf("%q is before 1970", s)
	}
	return t.UnixMilli(), nil
}

// topicSpecFlag collects repeatable --topic flags of the form TOPIC or
// TOPIC:P,P,... (Kafka topic names cannot contain ':'). nil partitions mean
// every partition of the topic.
type topicSpecFlag struct {
	order []string
	parts map[string][]int32
}

func (f *topicSpecFlag) String() string { return strings.Join(f.order, ",") }

func (f *topicSpecFlag) Set(v string) error {
	topic, list, hasList := strings.Cut(v, ":")
	if topic == "" {
		return fmt.Errorf("topic spec %q: want TOPIC or TOPIC:PARTITION[,PARTITION]", v)
	}
	var ps []int32
	if hasList {
		for _, s := range strings.Split(list, ",") {
			p, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
			if err != nil || p < 0 {
				return fmt.Errorf("%q: %q is not a partition number", v, s)
			}
			ps = append(ps, int32(p))
		}
	}
	if f.parts == nil {
		f.parts = make(map[string][]int32)
	}
	prev, seen := f.parts[topic]
	if !seen {
		f.order = append(f.order, topic)
	}
	// A bare TOPIC anywhere means the whole topic.
	if seen && prev == nil || !hasList {
		f.parts[topic] = nil
		return nil
	}
	f.parts[topic] = append(prev, ps...)
	return nil
}

// resolve expands the specs into partitions, checking that the topics and
// partitions exist.
func (f *topicSpecFlag) resolve(ctx context.Context, c *client) ([]topicPart, error) {
	known, err := lookupTopics(ctx, c, f.order)
	if err != nil {
		return nil, err
	}
	seen := make(map[topicPart]bool)
	var out []topicPart
	for _, t := range f.order {
		want := f.parts[t]
		if want == nil {
			want = known[t]
		}
		for _, p := range want {
			tp := topicPart{t, p}
			if seen[tp] {
				continue
			}
			if _, ok := sort.Find(len(known[t]), func(i int) int { return int(p - known[t][i]) }); !ok {
				return nil, fmt.Errorf("topic %q has no partition %d (it has %d)", t, p, len(known[t]))
			}
			seen[tp] = true
			out = append(out, tp)
		}
	}
	sortTopicParts(out)
	return out, nil
}

func topicsOf(tps []topicPart) []string {
	var out []string
	seen := make(map[string]bool)
	for _, tp := range tps {
		if !seen[tp.topic] {
			seen[tp.topic] = true
			out = append(out, tp.topic)
		}
	}
	return out
}
