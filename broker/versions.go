package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// versionRange is the span of versions of one API that the broker really
// implements. ApiVersions advertises exactly this table, and dispatch refuses
// anything outside it, so the two can never disagree.
type versionRange struct{ min, max int16 }

// supported lists every API the broker answers. Minimums are the oldest
// versions today's clients send; maximums are the newest kmsg defines.
//
// Produce starts at v0 although clients send v3+: librdkafka up to 2.11.0
// (Debian's kcat among them) turns gzip, snappy and lz4 off unless the
// broker's Produce range reaches v0. v0-v2 are really served: their legacy
// message sets are converted to RecordBatch v2 (segment.UpconvertMessageSet).
var supported = map[int16]versionRange{
	kmsg.Produce.Int16():                 {0, 13},
	kmsg.Fetch.Int16():                   {4, 18},
	kmsg.ListOffsets.Int16():             {1, 11},
	kmsg.Metadata.Int16():                {0, 13},
	kmsg.ApiVersions.Int16():             {0, 4},
	kmsg.CreateTopics.Int16():            {0, 7},
	kmsg.DeleteTopics.Int16():            {0, 6},
	kmsg.DeleteRecords.Int16():           {0, 2},
	kmsg.InitProducerID.Int16():          {0, 5},
	kmsg.OffsetForLeaderEpoch.Int16():    {0, 4},
	kmsg.DescribeConfigs.Int16():         {0, 4},
	kmsg.AlterConfigs.Int16():            {0, 2},
	kmsg.CreatePartitions.Int16():        {0, 3},
	kmsg.IncrementalAlterConfigs.Int16(): {0, 1},
	kmsg.DescribeCluster.Int16():         {0, 2},
	kmsg.FindCoordinator.Int16():         {0, 6},

	// The group coordinator (package coordinator).
	kmsg.JoinGroup.Int16():              {0, 9},
	kmsg.SyncGroup.Int16():              {0, 5},
	kmsg.Heartbeat.Int16():              {0, 4},
	kmsg.LeaveGroup.Int16():             {0, 5},
	kmsg.OffsetCommit.Int16():           {0, 10},
	kmsg.OffsetFetch.Int16():            {0, 10},
	kmsg.DescribeGroups.Int16():         {0, 6},
	kmsg.ListGroups.Int16():             {0, 5},
	kmsg.DeleteGroups.Int16():           {0, 3},
	kmsg.OffsetDelete.Int16():           {0, 0},
	kmsg.ConsumerGroupHeartbeat.Int16(): {0, 1},
	kmsg.ConsumerGroupDescribe.Int16():  {0, 1},
}

func isSupported(key, version int16) bool {
	r, ok := supported[key]
	return ok && version >= r.min && version <= r.max
}
