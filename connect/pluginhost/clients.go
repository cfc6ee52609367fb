package pluginhost

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/status"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// RPCError is a call the plugin answered with an error: the task or
// connector failed; Message is the plugin's reason (for the status trace).
type RPCError struct {
	Call    string
	Code    string
	Message string
}

func (e *RPCError) Error() string {
	return fmt.Sprintf("pluginhost: %s: %s: %s", e.Call, e.Code, e.Message)
}

func rpcError(what string, err error) error {
	if s, ok := status.FromError(err); ok {
		return &RPCError{Call: what, Code: s.Code().String(), Message: s.Message()}
	}
	return fmt.Errorf("pluginhost: %s: %w", what, err)
}

// Describe lists the connector classes the plugin implements.
func (p *Process) Describe(ctx context.Context) ([]*connectv1.ConnectorDescriptor, error) {
	var resp *connectv1.DescribeResponse
	err := p.call(ctx, "Describe", p.host.opts.CallTimeout, func(ctx context.Context) (err error) {
		resp, err = p.connectorClient.Describe(ctx, &connectv1.DescribeRequest{ProtocolVersion: connectv1.ProtocolVersion})
		return err
	})
	return resp.GetConnectors(), err
}

// Validate validates a connector config, key by key.
func (p *Process) Validate(ctx context.Context, class string, config map[string]string) ([]*connectv1.ConfigValue, error) {
	var resp *connectv1.ValidateResponse
	err := p.call(ctx, "Validate", p.host.opts.CallTimeout, func(ctx context.Context) (err error) {
		resp, err = p.connectorClient.Validate(ctx, &connectv1.ValidateRequest{ConnectorClass: class, Config: &connectv1.Config{Props: config}})
		return err
	})
	return resp.GetValues(), err
}

// TaskConfigs splits a connector config into at most maxTasks task configs.
func (p *Process) TaskConfigs(ctx context.Context, class string, config map[string]string, maxTasks int) ([]map[string]string, error) {
	var resp *connectv1.TaskConfigsResponse
	err := p.call(ctx, "TaskConfigs", p.host.opts.CallTimeout, func(ctx context.Context) (err error) {
		resp, err = p.connectorClient.TaskConfigs(ctx, &connectv1.TaskConfigsRequest{
			ConnectorClass: class, Config: &connectv1.Config{Props: config}, MaxTasks: int32(maxTasks)})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]map[string]string, len(resp.GetTasks()))
	for i, t := range resp.GetTasks() {
		out[i] = t.GetProps()
		if out[i] == nil {
			out[i] = map[string]string{}
		}
	}
	return out, nil
}

// AlterOffsets asks the connector to apply new offsets (KIP-875); source
// positions for a source connector, Kafka offsets (-1 = reset) for a sink.
// It reports whether the connector manages the change itself.
func (p *Process) AlterOffsets(ctx context.Context, class string, config map[string]string,
	source []connectv1.Position, sink []*connectv1.TopicPartitionOffset) (bool, error) {
	so, err := connectv1.PositionsToProto(source)
	if err != nil {
		return false, err
	}
	var resp *connectv1.AlterOffsetsResponse
	err = p.call(ctx, "AlterOffsets", p.host.opts.CallTimeout, func(ctx context.Context) (err error) {
		resp, err = p.connectorClient.AlterOffsets(ctx, &connectv1.AlterOffsetsRequest{
			ConnectorClass: class, Config: &connectv1.Config{Props: config}, SourceOffsets: so, SinkOffsets: sink})
		return err
	})
	return resp.GetManagedExternally(), err
}

// TaskID names a task of the process's connector.
type TaskID struct {
	Task       int32
	Generation int64
}

// SourceTask is the host's handle on one source task in the process.
type SourceTask struct {
	p  *Process
	id *connectv1.TaskId
	g  int64
}

// SourceTask returns a handle on task t at generation g; call Start first.
func (p *Process) SourceTask(t TaskID) *SourceTask {
	return &SourceTask{p: p, id: &connectv1.TaskId{Connector: p.connector, Task: t.Task}, g: t.Generation}
}

// Start starts the task with the offsets committed for the connector.
func (t *SourceTask) Start(ctx context.Context, class string, config map[string]string, committed []connectv1.Position) error {
	known, err := connectv1.PositionsToProto(committed)
	if err != nil {
		return err
	}
	return t.p.call(ctx, "SourceTask.Start", t.p.host.opts.CallTimeout, func(ctx context.Context) error {
		_, err := t.p.sourceClient.Start(ctx, &connectv1.SourceStartRequest{
			Task: t.id, Generation: t.g, ConnectorClass: class, Config: &connectv1.Config{Props: config}, KnownOffsets: known})
		return err
	})
}

// PollLimits bound one batch.
type PollLimits struct {
	MaxRecords int
	MaxBytes   int64
	MaxWait    time.Duration
	// BatchPositions asks for source positions per batch only: the
	// worker reads Batch.Positions, and records may then arrive without
	// SourcePartition and SourceOffset (and packed, which is cheaper).
	// False keeps every record's position (for per-record acks).
	BatchPositions bool
}

// Batch is one Poll's records; Seq is 0 for an empty batch.
type Batch struct {
	Seq     uint64
	Records []*data.Record
	// Positions holds the newest position of each source partition among
	// Records: committing the batch commits exactly these. Always set,
	// whatever PollLimits.BatchPositions says.
	Positions []BatchPosition
}

// BatchPosition is one source partition's newest position in a batch.
type BatchPosition struct {
	// Key is the partition as canonical JSON (sorted keys, encoding/json's
	// format: what json.Marshal of Partition gives), to key the worker's
	// pending offsets without encoding the partition again.
	Key string
	connectv1.Position
}

// Poll long-polls for the next batch. Its deadline is MaxWait plus the
// host's PollGrace; a Poll past it kills the process as hung.
func (t *SourceTask) Poll(ctx context.Context, lim PollLimits) (Batch, error) {
	var resp *connectv1.PollResponse
	err := t.p.call(ctx, "SourceTask.Poll", lim.MaxWait+t.p.host.opts.PollGrace, func(ctx context.Context) (err error) {
		resp, err = t.p.sourceClient.Poll(ctx, &connectv1.PollRequest{Task: t.id, Generation: t.g,
			MaxRecords: int32(lim.MaxRecords), MaxBytes: lim.MaxBytes, MaxWaitMs: lim.MaxWait.Milliseconds(),
			BatchPositions: lim.BatchPositions, AcceptPacked: lim.BatchPositions, PackedVersion: connectv1.PackedNewestVersion},
			pollCallOption)
		return err
	})
	if err != nil {
		return Batch{}, err
	}
	b, err := batchFromProto(resp)
	if err != nil {
		return Batch{}, fmt.Errorf("pluginhost: poll: batch %d: %w", resp.GetBatchSeq(), err)
	}
	return b, nil
}

// Commit tells the task every batch up to seq is durable; acks are
// optional per-record acknowledgements.
func (t *SourceTask) Commit(ctx context.Context, seq uint64, acks []*connectv1.RecordAck) error {
	return t.p.call(ctx, "SourceTask.Commit", t.p.host.opts.CallTimeout, func(ctx context.Context) error {
		_, err := t.p.sourceClient.Commit(ctx, &connectv1.CommitRequest{Task: t.id, Generation: t.g, BatchSeq: seq, Acks: acks})
		return err
	})
}

// Stop stops the task.
func (t *SourceTask) Stop(ctx context.Context) error {
	return t.p.call(ctx, "SourceTask.Stop", t.p.host.opts.CallTimeout, func(ctx context.Context) error {
		_, err := t.p.sourceClient.Stop(ctx, &connectv1.StopRequest{Task: t.id, Generation: t.g})
		return err
	})
}

// SinkTask is the host's handle on one sink task in the process.
type SinkTask struct {
	p  *Process
	id *connectv1.TaskId
	g  int64
	// packed is the packed version to send Put batches in (what the task
	// said at Start it reads, negotiated), 0 if it reads none.
	packed uint32
}

// SinkTask returns a handle on task t at generation g; call Start first.
func (p *Process) SinkTask(t TaskID) *SinkTask {
	return &SinkTask{p: p, id: &connectv1.TaskId{Connector: p.connector, Task: t.Task}, g: t.Generation}
}

// Start starts the task.
func (t *SinkTask) Start(ctx context.Context, class string, config map[string]string) error {
	return t.p.call(ctx, "SinkTask.Start", t.p.host.opts.CallTimeout, func(ctx context.Context) error {
		resp, err := t.p.sinkClient.Start(ctx, &connectv1.SinkStartRequest{
			Task: t.id, Generation: t.g, ConnectorClass: class, Config: &connectv1.Config{Props: config}})
		if resp.GetAcceptsPacked() {
			t.packed = connectv1.NegotiatePacked(resp.GetPackedVersion())
		}
		return err
	})
}

// Open tells the task about newly assigned partitions and returns the
// offsets it wants to rewind to (nil when Kafka's committed offsets do).
func (t *SinkTask) Open(ctx context.Context, parts []*connectv1.TopicPartition) ([]*connectv1.TopicPartitionOffset, error) {
	var resp *connectv1.OpenResponse
	err := t.p.call(ctx, "SinkTask.Open", t.p.host.opts.CallTimeout, func(ctx context.Context) (err error) {
		resp, err = t.p.sinkClient.Open(ctx, &connectv1.OpenRequest{Task: t.id, Generation: t.g, Partitions: parts})
		return err
	})
	return resp.GetRewind(), err
}

// PutResult is a Put's outcome short of failing the task: Retry > 0 means
// redeliver the same batch after it; Errors are per-record failures by
// index in the batch.
type PutResult struct {
	Retry        time.Duration
	RetryMessage string
	Errors       map[int]string
}

// Put delivers a batch: packed into one buffer when the task reads packed
// batches and every record's key, value and headers are raw bytes, text
// or null (connectv1.Packable), as messages otherwise. Error indexes are
// positions in recs either way.
func (t *SinkTask) Put(ctx context.Context, recs []*data.Record) (PutResult, error) {
	req, err := t.putRequest(recs)
	if err != nil {
		return PutResult{}, err
	}
	var resp *connectv1.PutResponse
	err = t.p.call(ctx, "SinkTask.Put", t.p.host.opts.CallTimeout, func(ctx context.Context) (err error) {
		resp, err = t.p.sinkClient.Put(ctx, req)
		return err
	})
	if err != nil {
		return PutResult{}, err
	}
	var res PutResult
	if r := resp.GetRetriable(); r != nil {
		res.Retry, res.RetryMessage = time.Duration(r.GetBackoffMs())*time.Millisecond, r.GetMessage()
		if res.Retry <= 0 {
			res.Retry = time.Millisecond
		}
	}
	for _, e := range resp.GetErrors() {
		if res.Errors == nil {
			res.Errors = map[int]string{}
		}
		res.Errors[int(e.GetIndex())] = e.GetMessage()
	}
	return res, nil
}

// PreCommit passes the delivered offsets and returns those safe to commit
// (empty: the task manages its own offsets).
func (t *SinkTask) PreCommit(ctx context.Context, offs []*connectv1.TopicPartitionOffset) ([]*connectv1.TopicPartitionOffset, error) {
	var resp *connectv1.PreCommitResponse
	err := t.p.call(ctx, "SinkTask.PreCommit", t.p.host.opts.CallTimeout, func(ctx context.Context) (err error) {
		resp, err = t.p.sinkClient.PreCommit(ctx, &connectv1.PreCommitRequest{Task: t.id, Generation: t.g, Offsets: offs})
		return err
	})
	return resp.GetOffsets(), err
}

// Close tells the task partitions were revoked.
func (t *SinkTask) Close(ctx context.Context, parts []*connectv1.TopicPartition) error {
	return t.p.call(ctx, "SinkTask.Close", t.p.host.opts.CallTimeout, func(ctx context.Context) error {
		_, err := t.p.sinkClient.Close(ctx, &connectv1.CloseRequest{Task: t.id, Generation: t.g, Partitions: parts})
		return err
	})
}

// Stop stops the task.
func (t *SinkTask) Stop(ctx context.Context) error {
	return t.p.call(ctx, "SinkTask.Stop", t.p.host.opts.CallTimeout, func(ctx context.Context) error {
		_, err := t.p.sinkClient.Stop(ctx, &connectv1.StopRequest{Task: t.id, Generation: t.g})
		return err
	})
}
