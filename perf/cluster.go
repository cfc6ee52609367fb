package perf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// topicInfo is what a run needs to know about its topic.
type topicInfo struct {
	id         [16]byte
	partitions []int32          // sorted
	leaders    map[int32]int32  // partition -> broker id
	addrs      map[int32]string // broker id -> host:port
}

// newClient builds a client and proves that a broker answers before any
// work starts: without the ping, an unreachable cluster shows up only as
// records failing after kgo's retries, or as a consumer that never gets
// anything.
func newClient(ctx context.Context, o *options, opts ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append(o.baseOpts(), opts...)...)
	if err != nil {
		return nil, fmt.Errorf("configuring client for %s: %w", strings.Join(o.brokers, ","), err)
	}
	pctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("cannot reach brokers %s: %w", strings.Join(o.brokers, ","), err)
	}
	return cl, nil
}

// createTopic creates the topic with replication factor 1 and the
// --topic-config settings unless it exists; an existing topic keeps its
// own configs.
func createTopic(ctx context.Context, adm *kadm.Client, o *options) error {
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	resp, err := adm.CreateTopic(cctx, int32(o.partitions), 1, o.topicConfigs(), o.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating topic %s: %w", o.topic, err)
	}
	return nil
}

// describeTopic waits, within --timeout, until every partition of the
// topic has a leader: right after a create, metadata can still lag, and a
// topic we just created may not even be known to every broker yet.
func describeTopic(ctx context.Context, adm *kadm.Client, o *options, created bool) (topicInfo, error) {
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	for {
		info, err := loadTopic(cctx, adm, o.topic)
		if err == nil || !worthWaiting(err, created) {
			return info, err
		}
		select {
		case <-cctx.Done():
			return info, fmt.Errorf("%w (gave up after %s)", err, o.timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// worthWaiting reports whether a later metadata request may cure err. kerr
// calls a missing topic retriable, but unless we just created it, waiting
// would only delay the error by --timeout.
func worthWaiting(err error, created bool) bool {
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return created
	}
	return kerr.IsRetriable(err)
}

func loadTopic(ctx context.Context, adm *kadm.Client, topic string) (topicInfo, error) {
	meta, err := adm.Metadata(ctx, topic)
	if err != nil {
		return topicInfo{}, fmt.Errorf("metadata of topic %s: %w", topic, err)
	}
	td, ok := meta.Topics[topic]
	if !ok {
		return topicInfo{}, fmt.Errorf("topic %s: %w", topic, kerr.UnknownTopicOrPartition)
	}
	if td.Err != nil {
		return topicInfo{}, fmt.Errorf("topic %s: %w", topic, td.Err)
	}
	info := topicInfo{id: td.ID, leaders: map[int32]int32{}, addrs: map[int32]string{}}
	for _, b := range meta.Brokers {
		info.addrs[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	for p, pd := range td.Partitions {
		if pd.Err != nil {
			return topicInfo{}, fmt.Errorf("topic %s partition %d: %w", topic, p, pd.Err)
		}
		if pd.Leader < 0 {
			return topicInfo{}, fmt.Errorf("topic %s partition %d: %w", topic, p, kerr.LeaderNotAvailable)
		}
		info.partitions = append(info.partitions, p)
		info.leaders[p] = pd.Leader
	}
	if len(info.partitions) == 0 {
		return topicInfo{}, fmt.Errorf("topic %s: %w", topic, kerr.LeaderNotAvailable)
	}
	slices.Sort(info.partitions)
	return info, nil
}

// listOffsets returns the start (earliest) or end (latest) offset of every
// partition.
func listOffsets(ctx context.Context, adm *kadm.Client, o *options, latest bool) (map[int32]int64, error) {
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	list := adm.ListStartOffsets
	if latest {
		list = adm.ListEndOffsets
	}
	listed, err := list(cctx, o.topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing offsets of topic %s: %w", o.topic, err)
	}
	out := map[int32]int64{}
	listed.Each(func(l kadm.ListedOffset) { out[l.Partition] = l.Offset })
	return out, nil
}

// split deals partitions out to n clients round-robin; a client may get
// none when there are fewer partitions than clients.
func split(partitions []int32, n int) [][]int32 {
	out := make([][]int32, n)
	for i, p := range partitions {
		out[i%n] = append(out[i%n], p)
	}
	return out
}
