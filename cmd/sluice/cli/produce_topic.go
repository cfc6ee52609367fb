package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceTarget returns the partition count of topic, creating the topic
// first when it does not exist and the broker allows it: kcat and Kafka's
// console producer ask for auto-creation in their Metadata request, and a
// user who set auto.create.topics.enable=true expects it to work. When the
// broker refuses, the error says how to create the topic.
func produceTarget(ctx context.Context, c *client, topic string) (int, error) {
	for {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		req.AllowAutoTopicCreation = true
		resp, err := req.RequestWith(ctx, c.kgo)
		if err != nil {
			return 0, fmt.Errorf("reading topic metadata: %w", err)
		}
		code := kerr.UnknownTopicOrPartition.Code
		n := 0
		for _, t := range resp.Topics {
			if t.Topic != nil && *t.Topic == topic {
				code, n = t.ErrorCode, len(t.Partitions)
			}
		}
		err = kerr.ErrorForCode(code)
		switch {
		case err == nil && n > 0:
			return n, nil
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			return 0, fmt.Errorf("topic %q not found, and the broker does not create topics on first use "+
				"(auto.create.topics.enable=false); create it with: sluice topic create %s", topic, topic)
		case err != nil && !kerr.IsRetriable(err):
			return 0, fmt.Errorf("topic %q: %w", topic, err)
		}
		// Just created (LEADER_NOT_AVAILABLE, or no partitions yet): the
		// metadata catches up within moments.
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("topic %q: not ready: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
