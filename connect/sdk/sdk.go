// Package sdk is the Go SDK for Sluice connector plugins. A plugin is a
// small program whose main calls Serve with its connectors; each connector
// is plain Go: a Connector (describe, validate, split into task configs)
// that makes SourceTasks or SinkTasks working on []*data.Record. The SDK
// hides go-plugin, gRPC and the wire format (connect/proto/connectv1).
//
//	func main() { sdk.Serve(&myConnector{}) }
//
// One plugin process serves one connector and all its tasks, so task
// methods of different tasks are called concurrently; the methods of one
// task are called one at a time, except Stop, which may arrive while Poll
// or Put is running and must make it return.
//
// Log with Logger (or anything writing to os.Stderr): the worker copies
// each line into its log tagged with the connector and task. Never write
// to os.Stdout: the SDK sends it to stderr anyway, because a stray line on
// stdout would break the handshake.
package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// ConnectorType says whether a connector reads into Kafka or writes out.
type ConnectorType int

// The connector types.
const (
	Source ConnectorType = iota + 1
	Sink
)

// Descriptor describes a connector class (GET /connector-plugins).
type Descriptor struct {
	Type ConnectorType
	// Class is what users put in connector.class, e.g.
	// org.apache.kafka.connect.file.FileStreamSourceConnector.
	Class string
	// Aliases are other accepted names, e.g. FileStreamSource.
	Aliases []string
	Version string
	Config  []ConfigKey
	// ExactlyOnce: the source can commit records and offsets atomically.
	ExactlyOnce bool
	// TransactionBoundaries: the source defines its own transactions.
	TransactionBoundaries bool
	// AlterOffsets: the connector's AlterOffsets does something.
	AlterOffsets bool
}

// ConfigKey is one config the connector accepts, shaped like Kafka's
// ConfigKeyInfo. Type is BOOLEAN, STRING, INT, SHORT, LONG, DOUBLE, LIST,
// CLASS or PASSWORD; Importance HIGH, MEDIUM or LOW.
type ConfigKey struct {
	Name          string
	Type          string
	Required      bool
	Default       *string // nil = no default
	Importance    string
	Documentation string
	Group         string
	OrderInGroup  int
	Width         string
	DisplayName   string
	Dependents    []string
}

// ConfigValue is the validation result for one key (Kafka's
// ConfigValueInfo).
type ConfigValue struct {
	Name        string
	Value       *string
	Recommended []string
	Errors      []string
	Visible     bool
}

// Connector is a connector class. Its methods are called with a config
// and keep no state between calls: the worker may call them from any
// process at any time.
type Connector interface {
	Describe() Descriptor
	// Validate checks a connector config; ValidateRequired is a default.
	Validate(ctx context.Context, config map[string]string) ([]ConfigValue, error)
	// TaskConfigs splits the connector config into at most maxTasks task
	// configs.
	TaskConfigs(ctx context.Context, config map[string]string, maxTasks int) ([]map[string]string, error)
	// AlterOffsets is called while the connector is stopped, before the
	// worker changes its offsets (Kafka's alterOffsets): return true when
	// the connector accepts the change (and has applied it to any offsets
	// it keeps itself), as Kafka's implementations do; false, the answer
	// of a connector that does not implement the hook, makes the REST
	// answer warn that offsets kept outside the worker are unchanged.
	// Return an error to refuse the change.
	AlterOffsets(ctx context.Context, config map[string]string, offsets Offsets) (bool, error)
}

// SourceConnector is a Connector whose tasks read into Kafka.
type SourceConnector interface {
	Connector
	NewTask() SourceTask
}

// SinkConnector is a Connector whose tasks write out of Kafka.
type SinkConnector interface {
	Connector
	NewTask() SinkTask
}

// Offsets are the offsets AlterOffsets is asked to set: source partitions
// and offsets for a source connector (a nil Offset is a reset), Kafka
// partitions and offsets for a sink (Offset -1 is a reset).
type Offsets struct {
	Source []Position
	Sink   []TopicPartitionOffset
}

// Position is a source partition and its offset, JSON-like maps as in
// data.Record's SourcePartition and SourceOffset.
type Position = connectv1.Position

// TopicPartition names a Kafka partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// TopicPartitionOffset is the offset of the next record to read in a Kafka
// partition.
type TopicPartitionOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// TaskContext is what a task knows about itself.
type TaskContext struct {
	Connector  string
	Task       int32
	Generation int64
	// Logger logs to the worker's log tagged with the connector and task.
	Logger *slog.Logger
}

// PollLimits bound one batch. The SDK enforces MaxRecords and MaxBytes
// itself (records past them are kept for the next Poll), so a task may
// return more.
type PollLimits struct {
	MaxRecords int
	MaxBytes   int64
	// MaxWait is how long Poll may block waiting for records; the context
	// passed to Poll ends then.
	MaxWait time.Duration
}

// Commit tells a source task which records are durable in Kafka.
type Commit struct {
	// BatchSeq: every batch up to this one (Polls returning records are
	// numbered from 1) is written and its offsets flushed.
	BatchSeq uint64
	// Positions are the latest committed position of each source
	// partition in those batches.
	Positions []Position
	// Acks are per-record acknowledgements, when the worker sends them.
	Acks []RecordAck
}

// RecordAck says where one polled record was written (Kafka's
// commitRecord), or that a transform filtered it out.
type RecordAck struct {
	BatchSeq  uint64
	Index     int // in its batch
	Topic     string
	Partition int32
	Offset    int64
	Filtered  bool
}

// SourceOffsetsAt is a SourceTask that may leave its records'
// SourceOffset nil and give it when the SDK needs it: SourceOffsetAt(i)
// is the offset of record i of the task's latest Poll answer. The SDK
// asks only between that Poll and the next, and only for the records
// whose offsets it sends: the newest of each source partition in a batch
// (every record for a host that reads offsets per record). A file tail
// saves a map per line this way. A nil answer fails the Poll.
type SourceOffsetsAt interface {
	SourceOffsetAt(i int) map[string]any
}

// SourceTask reads records from a source. Kafka's SourceTask.
type SourceTask interface {
	// Start starts the task from the offsets the worker knows are
	// committed for this connector.
	Start(ctx context.Context, tc TaskContext, config map[string]string, committed []Position) error
	// Poll returns the next records, blocking until some are ready or
	// ctx ends (then return none and no error). Records need Topic,
	// SourcePartition and SourceOffset (or a SourceOffsetsAt task's nil);
	// Partition -1 and Timestamp -1 leave them to the producer.
	Poll(ctx context.Context, limits PollLimits) ([]*data.Record, error)
	// Commit says records are durable in Kafka: the task may now
	// acknowledge them upstream.
	Commit(ctx context.Context, c Commit) error
	// Stop stops the task and makes a running Poll return.
	Stop(ctx context.Context) error
}

// SinkTask writes records to a destination. Kafka's SinkTask.
type SinkTask interface {
	Start(ctx context.Context, tc TaskContext, config map[string]string) error
	// Open is called with newly assigned partitions; return offsets to
	// rewind to when the task keeps its own positions (exactly-once
	// sinks), else nil.
	Open(ctx context.Context, partitions []TopicPartition) ([]TopicPartitionOffset, error)
	// Put writes (or buffers) records. Return Retriable(...) to have the
	// same batch redelivered after a backoff, or a *PutErrors for records
	// that cannot be written (errors.tolerance and the dead letter queue
	// apply to them). Any other error fails the task.
	Put(ctx context.Context, records []*data.Record) error
	// PreCommit flushes and returns the offsets safe to commit, given the
	// offsets delivered so far. Return nil when the task commits its
	// offsets itself (returning offsets unchanged is the usual answer).
	PreCommit(ctx context.Context, offsets []TopicPartitionOffset) ([]TopicPartitionOffset, error)
	// Close is called with partitions no longer assigned.
	Close(ctx context.Context, partitions []TopicPartition) error
	Stop(ctx context.Context) error
}

// RetriableError is a Put failure worth retrying with the same batch.
type RetriableError struct {
	Backoff time.Duration
	Err     error
}

func (e *RetriableError) Error() string { return fmt.Sprintf("retriable: %v", e.Err) }
func (e *RetriableError) Unwrap() error { return e.Err }

// Retriable wraps err as a retriable Put failure.
func Retriable(backoff time.Duration, err error) error {
	return &RetriableError{Backoff: backoff, Err: err}
}

// PutErrors lists the records of a Put batch that could not be written,
// by index in the batch; the other records were written.
type PutErrors struct {
	Errors map[int]error
}

func (e *PutErrors) Error() string { return fmt.Sprintf("%d records failed", len(e.Errors)) }

// ValidateRequired is a default Validate: one ConfigValue per config key,
// with an error for each required key that is missing or empty.
func ValidateRequired(d Descriptor, config map[string]string) []ConfigValue {
	out := make([]ConfigValue, 0, len(d.Config))
	for _, k := range d.Config {
		cv := ConfigValue{Name: k.Name, Visible: true}
		v, ok := config[k.Name]
		switch {
		case ok:
			cv.Value = &v
		case k.Default != nil:
			cv.Value = k.Default
		}
		if k.Required && (cv.Value == nil || *cv.Value == "") {
			cv.Errors = append(cv.Errors, fmt.Sprintf("Missing required configuration %q which has no default value.", k.Name))
		}
		out = append(out, cv)
	}
	return out
}
