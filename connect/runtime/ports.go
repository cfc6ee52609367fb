package runtime

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

// TaskID names one task of a connector, as Kafka's ConnectorTaskId does.
type TaskID struct {
	Connector string
	Task      int
}

func (t TaskID) String() string { return fmt.Sprintf("%s-%d", t.Connector, t.Task) }

// TopicPartition is one partition a sink task reads.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// SourceOffset is one source partition's position, as a connector defines
// both: the key and value of a record in the offsets topic.
type SourceOffset struct {
	Partition map[string]any
	Offset    map[string]any // nil resets the partition
}

// PolledBatch is one Poll's answer.
type PolledBatch struct {
	Seq     uint64
	Records []*data.Record
	// Positions, when the plugin sends them, is the newest position of
	// each source partition in the batch, keyed by the partition's
	// canonical JSON; records then need not carry their own.
	Positions []KeyedOffset
}

// KeyedOffset is a source offset with its partition's canonical JSON key.
type KeyedOffset struct {
	Key string
	SourceOffset
}

// SourceTaskClient is the runtime's view of one source task running in a
// plugin process. Poll long-polls for a bounded batch; Commit tells the
// task that everything up to batchSeq is durable in the cluster and its
// offsets are stored, so it may acknowledge upstream.
type SourceTaskClient interface {
	Start(ctx context.Context, config map[string]string, committed []SourceOffset) error
	Poll(ctx context.Context, maxRecords int, maxWait time.Duration) (PolledBatch, error)
	Commit(ctx context.Context, batchSeq uint64) error
	Stop(ctx context.Context) error
}

// PutResult is a sink task's answer to one batch.
type PutResult struct {
	// Retriable asks for the same batch again after Backoff.
	Retriable bool
	Backoff   time.Duration
	// Failed holds per-record errors by index in the batch: those records
	// go to the dead letter queue, or fail the task when errors are not
	// tolerated.
	Failed map[int]string
}

// SinkTaskClient is the runtime's view of one sink task running in a
// plugin process.
type SinkTaskClient interface {
	Start(ctx context.Context, config map[string]string) error
	// Open hands the task new partitions; it answers with offsets to
	// rewind to (read from the sink's own store), or none.
	Open(ctx context.Context, parts []TopicPartition) (map[TopicPartition]int64, error)
	Put(ctx context.Context, records []*data.Record) (PutResult, error)
	// PreCommit gets the offsets the task has been given and answers the
	// ones safe to commit; an empty answer means the task stores its
	// offsets itself.
	PreCommit(ctx context.Context, offsets map[TopicPartition]int64) (map[TopicPartition]int64, error)
	Close(ctx context.Context, parts []TopicPartition) error
	Stop(ctx context.Context) error
}

// ConnectorClient is the runtime's view of a connector in its plugin
// process: the Connector instance's part of Kafka's contract.
type ConnectorClient interface {
	// TaskConfigs is Connector.taskConfigs(maxTasks) for the given
	// connector config.
	TaskConfigs(ctx context.Context, config map[string]string, maxTasks int) ([]map[string]string, error)
	// AlterOffsets is the KIP-875 hook (Kafka's alterOffsets): an error
	// refuses the change; handled is false for a connector that does not
	// implement it, and the REST answer then warns that offsets the
	// connector keeps elsewhere are unchanged.
	// A source connector gets source offsets (nil Offset: reset), a sink
	// connector Kafka offsets (SinkOffset.Offset -1: reset).
	AlterOffsets(ctx context.Context, config map[string]string, source []SourceOffset, sink []SinkOffset) (handled bool, err error)
}

// SinkOffset is a sink connector's offset for one Kafka partition, -1 to
// reset it.
type SinkOffset struct {
	TopicPartition
	Offset int64
}

// PluginProcess is one running plugin process serving a connector on
// this worker: its connector instance and the tasks placed here.
type PluginProcess interface {
	Connector() ConnectorClient
	Source(id TaskID) SourceTaskClient
	Sink(id TaskID) SinkTaskClient
	// Done is closed when the process exits; Err then says why.
	Done() <-chan struct{}
	Err() error
	Close() error
}

// PluginLauncher starts plugin processes. The worker starts one per
// connector it runs anything of and stops it when the last user leaves.
type PluginLauncher interface {
	// Launch starts the plugin implementing the connector config's
	// connector.class for connector; the config may set limits on the
	// process (plugin.memory.limit.bytes).
	Launch(ctx context.Context, connector string, config map[string]string) (PluginProcess, error)
	// Kind says whether class is a "source" or "sink" plugin, or "" when
	// no plugin implements it.
	Kind(class string) string
}
