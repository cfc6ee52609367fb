package replicamgr

import (
	"strings"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// maxLong is Kafka's Long.MAX_VALUE, which flush.ms uses for "never".
const maxLong = int64(^uint64(0) >> 1)

// replicaConfig turns a topic's effective config into what a replica needs.
func replicaConfig(c config.Topic, b *config.Broker) replica.Config {
	log := segmentConfig(c)
	log.CheckpointIntervalMs = b.FlushOffsetCheckpointIntervalMs
	return replica.Config{
		Log:                    log,
		MaxMessageBytes:        int(c.MaxMessageBytes),
		LogAppendTime:          c.LogAppendTime,
		ProducerIDExpirationMs: b.ProducerIDExpirationMs,
	}
}

func segmentConfig(c config.Topic) segment.Config {
	if !strings.Contains(c.CleanupPolicy, "delete") {
		// A compacted topic keeps the latest record of every key for
		// ever; deleting old segments by age or size would lose keys
		// (for __consumer_offsets, committed offsets).
		c.RetentionMs, c.RetentionBytes = -1, -1
	}
	return segment.Config{
		SegmentBytes:                  c.SegmentBytes,
		SegmentMs:                     c.SegmentMs,
		IndexIntervalBytes:            c.IndexIntervalBytes,
		RetentionBytes:                c.RetentionBytes,
		RetentionMs:                   c.RetentionMs,
		FlushIntervalMessages:         c.FlushMessages,
		FlushIntervalMs:               c.FlushMs,
		MessageTimestampLogAppendTime: c.LogAppendTime,
	}
}
