package sdk

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

type sinkServer struct {
	connectv1.UnimplementedSinkTaskServer
	tasks *taskTable
}

type sinkTask struct {
	tc   TaskContext
	task SinkTask
}

func sinkGen(t any) int64 {
	if st, ok := t.(*sinkTask); ok {
		return st.tc.Generation
	}
	return -1
}

func (s *sinkServer) get(id *connectv1.TaskId, gen int64) (*sinkTask, error) {
	t, err := s.tasks.get(id, gen, sinkGen)
	if err != nil {
		return nil, err
	}
	st, ok := t.(*sinkTask)
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "task %s-%d is a source task", id.GetConnector(), id.GetTask())
	}
	return st, nil
}

func (s *sinkServer) Start(ctx context.Context, req *connectv1.SinkStartRequest) (*connectv1.StartResponse, error) {
	c, err := s.tasks.connector(req.GetConnectorClass())
	if err != nil {
		return nil, err
	}
	sc, ok := c.(SinkConnector)
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "%s is not a sink connector", req.GetConnectorClass())
	}
	id := req.GetTask()
	tc := TaskContext{Connector: id.GetConnector(), Task: id.GetTask(), Generation: req.GetGeneration(),
		Logger: s.tasks.log.With("task", id.GetTask())}
	t := &sinkTask{tc: tc, task: sc.NewTask()}
	old, err := s.tasks.put(id, tc.Generation, t, sinkGen)
	if err != nil {
		return nil, err
	}
	if o, ok := old.(*sinkTask); ok {
		_ = safe(func() error { return o.task.Stop(ctx) })
	}
	if err := safe(func() error { return t.task.Start(ctx, tc, req.GetConfig().GetProps()) }); err != nil {
		s.tasks.remove(id, t)
		return nil, taskErr("start", err)
	}
	return &connectv1.StartResponse{AcceptsPacked: true, PackedVersion: connectv1.PackedNewestVersion}, nil
}

func partitionsFromProto(ps []*connectv1.TopicPartition) []TopicPartition {
	out := make([]TopicPartition, len(ps))
	for i, p := range ps {
		out[i] = TopicPartition{Topic: p.GetTopic(), Partition: p.GetPartition()}
	}
	return out
}

func offsetsFromProto(os []*connectv1.TopicPartitionOffset) []TopicPartitionOffset {
	out := make([]TopicPartitionOffset, len(os))
	for i, o := range os {
		out[i] = TopicPartitionOffset{Topic: o.GetTopic(), Partition: o.GetPartition(), Offset: o.GetOffset()}
	}
	return out
}

func offsetsToProto(os []TopicPartitionOffset) []*connectv1.TopicPartitionOffset {
	out := make([]*connectv1.TopicPartitionOffset, len(os))
	for i, o := range os {
		out[i] = &connectv1.TopicPartitionOffset{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset}
	}
	return out
}

func (s *sinkServer) Open(ctx context.Context, req *connectv1.OpenRequest) (*connectv1.OpenResponse, error) {
	t, err := s.get(req.GetTask(), req.GetGeneration())
	if err != nil {
		return nil, err
	}
	var rewind []TopicPartitionOffset
	if err := safe(func() (err error) {
		rewind, err = t.task.Open(ctx, partitionsFromProto(req.GetPartitions()))
		return err
	}); err != nil {
		return nil, taskErr("open", err)
	}
	return &connectv1.OpenResponse{Rewind: offsetsToProto(rewind)}, nil
}

func (s *sinkServer) Put(ctx context.Context, req *connectv1.PutRequest) (*connectv1.PutResponse, error) {
	t, err := s.get(req.GetTask(), req.GetGeneration())
	if err != nil {
		return nil, err
	}
	recs, err := putRecords(req)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "put: %v", err)
	}
	err = safe(func() error { return t.task.Put(ctx, recs) })
	var re *RetriableError
	var pe *PutErrors
	switch {
	case err == nil:
		return &connectv1.PutResponse{}, nil
	case errors.As(err, &re):
		return &connectv1.PutResponse{Retriable: &connectv1.Retriable{BackoffMs: re.Backoff.Milliseconds(), Message: re.Err.Error()}}, nil
	case errors.As(err, &pe):
		resp := &connectv1.PutResponse{}
		for i, e := range pe.Errors {
			resp.Errors = append(resp.Errors, &connectv1.RecordError{Index: int32(i), Message: e.Error()})
		}
		return resp, nil
	}
	return nil, taskErr("put", err)
}

func (s *sinkServer) PreCommit(ctx context.Context, req *connectv1.PreCommitRequest) (*connectv1.PreCommitResponse, error) {
	t, err := s.get(req.GetTask(), req.GetGeneration())
	if err != nil {
		return nil, err
	}
	var safeOffs []TopicPartitionOffset
	if err := safe(func() (err error) {
		safeOffs, err = t.task.PreCommit(ctx, offsetsFromProto(req.GetOffsets()))
		return err
	}); err != nil {
		return nil, taskErr("pre-commit", err)
	}
	return &connectv1.PreCommitResponse{Offsets: offsetsToProto(safeOffs)}, nil
}

func (s *sinkServer) Close(ctx context.Context, req *connectv1.CloseRequest) (*connectv1.CloseResponse, error) {
	t, err := s.get(req.GetTask(), req.GetGeneration())
	if err != nil {
		return nil, err
	}
	if err := safe(func() error { return t.task.Close(ctx, partitionsFromProto(req.GetPartitions())) }); err != nil {
		return nil, taskErr("close", err)
	}
	return &connectv1.CloseResponse{}, nil
}

func (s *sinkServer) Stop(ctx context.Context, req *connectv1.StopRequest) (*connectv1.StopResponse, error) {
	t, err := s.get(req.GetTask(), req.GetGeneration())
	if err != nil {
		return nil, err
	}
	s.tasks.remove(req.GetTask(), t)
	if err := safe(func() error { return t.task.Stop(ctx) }); err != nil {
		return nil, taskErr("stop", err)
	}
	return &connectv1.StopResponse{}, nil
}

// putRecords decodes a Put's records, packed or as messages.
func putRecords(req *connectv1.PutRequest) ([]*data.Record, error) {
	if packed := req.GetPacked(); len(packed) > 0 {
		if len(req.GetRecords()) > 0 {
			return nil, errors.New("both packed and message records")
		}
		return connectv1.Unpack(packed)
	}
	recs := make([]*data.Record, len(req.GetRecords()))
	for i, p := range req.GetRecords() {
		var err error
		if recs[i], err = connectv1.SinkRecordFromProto(p); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
	}
	return recs, nil
}
