package sdk

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// Defaults for a PollRequest that leaves a limit unset.
const (
	defaultMaxRecords = 1000
	defaultMaxBytes   = 4 << 20
)

type sourceServer struct {
	connectv1.UnimplementedSourceTaskServer
	tasks *taskTable
}

// sourceTask is one running source task and the SDK's bookkeeping for it:
// records past a batch's limits wait in pending for the next Poll, and the
// positions of uncommitted batches wait for Commit.
type sourceTask struct {
	tc   TaskContext
	task SourceTask

	pollMu sync.Mutex // one Poll at a time; held across the task's Poll

	mu         sync.Mutex
	cancelPoll context.CancelFunc
	seq        uint64
	pending    []pendingRecord
	batches    []batchPositions // uncommitted, by increasing seq
}

// pendingRecord is a polled record waiting for a batch. Records the
// packed form can carry stay as they are (pb nil) until the batch is cut,
// since the request decides between packed and messages; the others are
// encoded at once, so an unencodable record fails the Poll that got it.
type pendingRecord struct {
	rec  *data.Record
	pb   *connectv1.SourceRecord // without its position; nil when packable
	size int64
	key  string // partition JSON, "" when the record has no partition
	idx  int    // the record's index in its Poll answer (SourceOffsetsAt)
}

type batchPositions struct {
	seq uint64
	pos map[string]Position // latest position per source partition
}

func sourceGen(t any) int64 {
	if st, ok := t.(*sourceTask); ok {
		return st.tc.Generation
	}
	return -1
}

func (s *sourceServer) get(id *connectv1.TaskId, gen int64) (*sourceTask, error) {
	t, err := s.tasks.get(id, gen, sourceGen)
	if err != nil {
		return nil, err
	}
	st, ok := t.(*sourceTask)
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "task %s-%d is a sink task", id.GetConnector(), id.GetTask())
	}
	return st, nil
}

func (s *sourceServer) Start(ctx context.Context, req *connectv1.SourceStartRequest) (*connectv1.StartResponse, error) {
	c, err := s.tasks.connector(req.GetConnectorClass())
	if err != nil {
		return nil, err
	}
	sc, ok := c.(SourceConnector)
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "%s is not a source connector", req.GetConnectorClass())
	}
	known, err := connectv1.PositionsFromProto(req.GetKnownOffsets())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	id := req.GetTask()
	tc := TaskContext{Connector: id.GetConnector(), Task: id.GetTask(), Generation: req.GetGeneration(),
		Logger: s.tasks.log.With("task", id.GetTask())}
	t := &sourceTask{tc: tc, task: sc.NewTask()}
	old, err := s.tasks.put(id, tc.Generation, t, sourceGen)
	if err != nil {
		return nil, err
	}
	if o, ok := old.(*sourceTask); ok {
		_ = o.stop(ctx)
	}
	if err := safe(func() error { return t.task.Start(ctx, tc, req.GetConfig().GetProps(), known) }); err != nil {
		s.tasks.remove(id, t)
		return nil, taskErr("start", err)
	}
	return &connectv1.StartResponse{}, nil
}

func (s *sourceServer) Poll(ctx context.Context, req *connectv1.PollRequest) (*connectv1.PollResponse, error) {
	t, err := s.get(req.GetTask(), req.GetGeneration())
	if err != nil {
		return nil, err
	}
	limits := PollLimits{MaxRecords: int(req.GetMaxRecords()), MaxBytes: req.GetMaxBytes(),
		MaxWait: time.Duration(req.GetMaxWaitMs()) * time.Millisecond}
	if limits.MaxRecords <= 0 {
		limits.MaxRecords = defaultMaxRecords
	}
	if limits.MaxBytes <= 0 {
		limits.MaxBytes = defaultMaxBytes
	}
	t.pollMu.Lock()
	defer t.pollMu.Unlock()
	w := wire{positions: req.GetBatchPositions()}
	if req.GetAcceptPacked() {
		w.packed = connectv1.NegotiatePacked(req.GetPackedVersion())
	}
	if err := t.fill(ctx, limits, w); err != nil {
		return nil, err
	}
	resp, err := t.takeBatch(limits, w)
	if err != nil {
		return nil, status.Errorf(codes.Unknown, "poll: %v", err)
	}
	return resp, nil
}

// wire is what the host reads: positions per batch only, packed batches.
type wire struct {
	positions bool
	// packed is the packed version to write (connectv1.NegotiatePacked
	// of the host's), 0 when the host does not read packed batches.
	packed uint32
}

// fill calls the task's Poll when nothing is pending.
func (t *sourceTask) fill(ctx context.Context, limits PollLimits, w wire) error {
	t.mu.Lock()
	if len(t.pending) > 0 {
		t.mu.Unlock()
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, limits.MaxWait)
	t.cancelPoll = cancel
	t.mu.Unlock()
	defer cancel()

	var recs []*data.Record
	err := safe(func() (err error) {
		recs, err = t.task.Poll(pctx, limits)
		return err
	})
	if err != nil {
		// The wait running out is an empty batch, not a failure.
		if pctx.Err() != nil && ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
			return nil
		}
		return taskErr("poll", err)
	}
	pending := make([]pendingRecord, 0, len(recs))
	var prevPart map[string]any
	prevKey := ""
	for i, r := range recs {
		pr := pendingRecord{rec: r, idx: i}
		// Most batches come from one source partition: encode its JSON
		// once, not per record.
		if r.SourcePartition != nil {
			if prevKey != "" && sameFlatMap(prevPart, r.SourcePartition) {
				pr.key = prevKey
			} else {
				pj, err := connectv1.OffsetToJSON(r.SourcePartition)
				if err != nil {
					return status.Errorf(codes.Unknown, "poll: record %d: source partition: %v", i, err)
				}
				pr.key, prevKey, prevPart = string(pj), string(pj), r.SourcePartition
			}
		}
		// Records packing may carry wait unencoded for the batch cut
		// (raw ones even when the host reads no packed batches: encoding
		// them then is as cheap as now).
		if connectv1.PackableVersion(r, max(w.packed, connectv1.PackedVersion)) {
			pr.size = int64(connectv1.PackedSize(r))
		} else {
			pb, err := connectv1.SourceRecordBodyToProto(r)
			if err != nil {
				return status.Errorf(codes.Unknown, "poll: record %d (topic %q): %v", i, r.Topic, err)
			}
			pr.pb, pr.size = pb, int64(pb.GetKey().SizeOf()+pb.GetValue().SizeOf())
		}
		pending = append(pending, pr)
	}
	t.mu.Lock()
	if len(t.pending) == 0 {
		t.pending = pending // the usual case: no copy of 8000 records
	} else {
		t.pending = append(t.pending, pending...)
	}
	t.mu.Unlock()
	return nil
}

// takeBatch cuts the next batch from pending: at most MaxRecords records
// and MaxBytes bytes, but always at least one record so a record larger
// than MaxBytes still moves.
func (t *sourceTask) takeBatch(limits PollLimits, w wire) (*connectv1.PollResponse, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	var bytes int64
	for n < len(t.pending) && n < limits.MaxRecords {
		if n > 0 && bytes+t.pending[n].size > limits.MaxBytes {
			break
		}
		bytes += t.pending[n].size
		n++
	}
	if n == 0 {
		return &connectv1.PollResponse{}, nil
	}
	batch := t.pending[:n]
	var at func(int) map[string]any
	if so, ok := t.task.(SourceOffsetsAt); ok {
		// Every pending record comes from the latest Poll: fill polls
		// only when none is left.
		at = so.SourceOffsetAt
	}
	resp, bp, err := encodeBatch(batch, w, at)
	if err != nil {
		return nil, err
	}
	t.seq++
	resp.BatchSeq, bp.seq = t.seq, t.seq
	t.batches = append(t.batches, bp)
	t.pending = append(t.pending[:0:0], t.pending[n:]...)
	return resp, nil
}

func (s *sourceServer) Commit(ctx context.Context, req *connectv1.CommitRequest) (*connectv1.CommitResponse, error) {
	t, err := s.get(req.GetTask(), req.GetGeneration())
	if err != nil {
		return nil, err
	}
	c := Commit{BatchSeq: req.GetBatchSeq()}
	t.mu.Lock()
	if c.BatchSeq > t.seq {
		t.mu.Unlock()
		return nil, status.Errorf(codes.InvalidArgument, "commit of batch %d, but only %d were polled", c.BatchSeq, t.seq)
	}
	merged, order := map[string]Position{}, []string{}
	n := 0
	for _, b := range t.batches {
		if b.seq > c.BatchSeq {
			break
		}
		for k, p := range b.pos {
			if _, ok := merged[k]; !ok {
				order = append(order, k)
			}
			merged[k] = p
		}
		n++
	}
	t.batches = append(t.batches[:0:0], t.batches[n:]...)
	t.mu.Unlock()
	// A batch's positions are a map; sorting by the partition's key gives
	// the task the same order every time.
	slices.Sort(order)
	for _, k := range order {
		c.Positions = append(c.Positions, merged[k])
	}
	for _, a := range req.GetAcks() {
		c.Acks = append(c.Acks, RecordAck{BatchSeq: a.GetBatchSeq(), Index: int(a.GetIndex()), Topic: a.GetTopic(),
			Partition: a.GetPartition(), Offset: a.GetOffset(), Filtered: a.GetFiltered()})
	}
	if err := safe(func() error { return t.task.Commit(ctx, c) }); err != nil {
		return nil, taskErr("commit", err)
	}
	return &connectv1.CommitResponse{}, nil
}

func (s *sourceServer) Stop(ctx context.Context, req *connectv1.StopRequest) (*connectv1.StopResponse, error) {
	t, err := s.get(req.GetTask(), req.GetGeneration())
	if err != nil {
		return nil, err
	}
	s.tasks.remove(req.GetTask(), t)
	if err := t.stop(ctx); err != nil {
		return nil, taskErr("stop", err)
	}
	return &connectv1.StopResponse{}, nil
}

// stop makes a running Poll return and stops the task.
func (t *sourceTask) stop(ctx context.Context) error {
	t.mu.Lock()
	if t.cancelPoll != nil {
		t.cancelPoll()
	}
	t.mu.Unlock()
	return safe(func() error { return t.task.Stop(ctx) })
}
