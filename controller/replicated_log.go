package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/metalog"
	"github.com/sluice-io/sluice/metarepl"
)

// ReplicatedConfig configures a Store over the metadata log the controller
// voters replicate (OpenReplicated).
type ReplicatedConfig struct {
	// Replica is this voter's metadata log, which it leads in Epoch
	// (BecomeLeader after the takeover of Epoch has returned). The Store
	// does not close it.
	Replica *metarepl.Replica
	Epoch   int32
	// ClusterID is the cluster's id: the replicated log holds records
	// only, no snapshot to carry it.
	ClusterID string
	// NodeID is this controller's node id, which Images report.
	NodeID int32
	Logger *slog.Logger
	// CommitTimeout bounds how long a Commit waits for the voters to
	// commit a batch (default 30s). A batch that times out may still be
	// committed later, so the Store then refuses every change, as when
	// deposed.
	CommitTimeout time.Duration
	// Checkpoints says when the Store appends a checkpoint batch, which
	// lets the voters drop the log below it (CheckpointRecord).
	Checkpoints CheckpointPolicy
}

// errNotLeading is why a replicated Store refuses changes.
func errNotLeading(why error) error {
	return fmt.Errorf("controller: %w: %w", ErrNotController, why)
}

// OpenReplicated builds a Store on the replicated metadata log of a voter
// that has just become its leader: it waits until everything the log held
// at the takeover is committed (a new leader commits its predecessor's
// tail once the ISR voters fetch in its epoch), then rebuilds the State
// from the committed batches. The Store commits a change by appending it
// to cfg.Replica (only while the replica leads cfg.Epoch and its log ends
// where the Store's State does, checked as the batch is written) and
// publishes it only once committed. Once the voter is deposed or leads a
// later epoch, the log holds records the State lacks, or an append's
// outcome is unknown, every Commit fails with an error matching
// ErrNotController: a new leader must open a new Store.
func OpenReplicated(ctx context.Context, cfg ReplicatedConfig) (*Store, error) {
	r := cfg.Replica
	switch {
	case r == nil:
		return nil, errors.New("controller: ReplicatedConfig.Replica is nil")
	case cfg.ClusterID == "":
		return nil, errors.New("controller: ReplicatedConfig.ClusterID is empty")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = 30 * time.Second
	}
	epoch := cfg.Epoch
	if err := waitCommitted(ctx, r, epoch); err != nil {
		return nil, err
	}
	state, next, since, err := replayCommitted(r, cfg.ClusterID)
	if err != nil {
		return nil, err
	}
	s := newStore("", cfg.NodeID, cfg.Logger, &replicatedLog{r: r, epoch: epoch, timeout: cfg.CommitTimeout}, state, next)
	s.nextPID, s.pidLimit = state.NextProducerID, state.NextProducerID
	s.ckpt = &checkpointer{policy: cfg.Checkpoints}
	s.ckpt.done()
	s.ckpt.appended(since)
	cfg.Logger.Info("controller store on the replicated metadata log", "epoch", epoch, "offset", next,
		"log_start", r.Status().LogStartOffset, "bytes_since_checkpoint", since)
	return s, nil
}

// waitCommitted waits until r leads epoch and has committed everything
// its log held when it took over. Its Status trails BecomeLeader (it is
// published once the call's event ends), so an older epoch is waited out.
func waitCommitted(ctx context.Context, r *metarepl.Replica, epoch int32) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	end := int64(-1) // the log end at the takeover, once seen
	for {
		st := r.Status()
		switch {
		case st.Err != nil:
			return fmt.Errorf("controller: metadata log failed: %w", st.Err)
		case st.Epoch > epoch || st.Epoch == epoch && st.Role != metarepl.RoleLeader:
			return errNotLeading(fmt.Errorf("metadata log at epoch %d (%s), this store would lead %d", st.Epoch, st.Role, epoch))
		case st.Epoch == epoch:
			if end < 0 {
				// Nothing is appended in this epoch before the Store
				// exists, so this is the log end at the takeover.
				end = st.LogEndOffset
			}
			if st.HighWatermark >= end {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("controller: waiting for the metadata log to commit its start in epoch %d (end %d, committed %d): %w",
				epoch, end, st.HighWatermark, ctx.Err())
		case <-tick.C:
		}
	}
}

// replayCommitted rebuilds the State from r's committed batches, from its
// log start (a checkpoint batch, or 0), and returns it, the offset after
// the last batch and the encoded bytes appended since the last checkpoint.
// The replica may trim its log meanwhile (a newer checkpoint committed):
// the replay then starts again from the new start.
func replayCommitted(r *metarepl.Replica, clusterID string) (st *State, next, since int64, err error) {
	for attempt := 0; ; attempt++ {
		st, next, since, err = replayFrom(r, clusterID, r.Status().LogStartOffset)
		if !errors.Is(err, kerr.OffsetOutOfRange) || attempt == 10 {
			return st, next, since, err
		}
	}
}

func replayFrom(r *metarepl.Replica, clusterID string, start int64) (*State, int64, int64, error) {
	st := NewState(clusterID)
	next, since := start, int64(0)
	for {
		bs, err := r.Committed(next, 1<<20)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("controller: read the metadata log at %d: %w", next, err)
		}
		if len(bs) == 0 {
			if next == start && start > 0 {
				return nil, 0, 0, fmt.Errorf("controller: the metadata log starts at %d but nothing is committed there", start)
			}
			return st, next, since, nil
		}
		for _, b := range bs {
			if b.Offset != next {
				return nil, 0, 0, fmt.Errorf("controller: metadata log batch at offset %d, expected %d", b.Offset, next)
			}
			if b.Offset == start && start > 0 && !b.Checkpoint {
				return nil, 0, 0, fmt.Errorf("controller: the metadata log starts at %d with a batch that is not a checkpoint", start)
			}
			rs, err := decodeRecords(b.Records)
			if err != nil {
				return nil, 0, 0, fmt.Errorf("controller: metadata log batch at offset %d: %w", b.Offset, err)
			}
			if err := applyBatch(st, b.Offset, rs); err != nil {
				return nil, 0, 0, err
			}
			if b.Checkpoint {
				since = 0
			} else {
				for _, rec := range b.Records {
					since += int64(len(rec))
				}
			}
			next = b.End()
		}
	}
}

// EncodeRecords is EncodeRecord for each record: the bytes a replicated
// log carries, one element per record.
func EncodeRecords(rs []Record) ([][]byte, error) {
	out := make([][]byte, len(rs))
	for i, r := range rs {
		b, err := EncodeRecord(r)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func decodeRecords(raw [][]byte) ([]Record, error) {
	rs := make([]Record, len(raw))
	for i, b := range raw {
		var err error
		if rs[i], err = DecodeRecord(b); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// replicatedLog is recordLog over a voter's metarepl.Replica. The replica
// drops the batches below a committed checkpoint, so batchesFrom needs a
// snapshot for an offset below its start, inside a batch or past the log.
type replicatedLog struct {
	r       *metarepl.Replica
	epoch   int32 // the epoch the Store was opened in
	timeout time.Duration

	mu sync.Mutex // guards failed: commits are waited for concurrently
	// failed, once set, refuses every append: the log may hold a batch
	// the Store's State lacks, or another leader appends now.
	failed error
}

// append commits rs at offset only if the replica still leads the epoch
// the Store was opened in and its log ends at offset: AppendAt checks both
// in the event that writes the batch, so a voter deposed and re-elected,
// or a log another writer appended to, is refused with nothing written
// rather than caught after the write.
func (l *replicatedLog) append(offset int64, rs []Record, _ *State) error {
	wait, _, err := l.start(offset, rs)
	if err != nil {
		return err
	}
	return wait()
}

// start is append's first half (pipelinedLog): the batch is queued for
// the replica's next write, after every batch started before it, and
// wait returns once it is committed or known not to be. The Store starts
// batches under its lock, in offset order, and waits outside it, so
// several changes replicate at once and share writes and fsyncs.
func (l *replicatedLog) start(offset int64, rs []Record) (wait func() error, size int64, err error) {
	recs, err := EncodeRecords(rs)
	if err != nil {
		return nil, 0, err
	}
	for _, r := range recs {
		size += int64(len(r))
	}
	wait, err = l.startEncoded(offset, recs, false)
	return wait, size, err
}

// startCheckpoint is start for a checkpoint batch (pipelinedLog).
func (l *replicatedLog) startCheckpoint(offset int64, r CheckpointRecord) (wait func() error, err error) {
	b, err := EncodeRecord(r)
	if err != nil {
		return nil, err
	}
	return l.startEncoded(offset, [][]byte{b}, true)
}

func (l *replicatedLog) startEncoded(offset int64, recs [][]byte, checkpoint bool) (wait func() error, err error) {
	if err := l.err(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	appendAt := l.r.StartAppendAt
	if checkpoint {
		appendAt = l.r.StartCheckpointAt
	}
	w, err := appendAt(ctx, l.epoch, offset, recs)
	if err != nil {
		cancel()
		return nil, l.fail(offset, err)
	}
	return func() error {
		defer cancel()
		if err := w(ctx); err != nil {
			return l.fail(offset, err)
		}
		return nil
	}, nil
}

func (l *replicatedLog) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// fail records why the batch at offset was not known committed and
// returns the error every append gets from now on (the first recorded).
func (l *replicatedLog) fail(offset int64, err error) error {
	switch {
	case errors.Is(err, metarepl.ErrEpochChanged) || errors.Is(err, metarepl.ErrOffsetMismatch):
		// Refused, nothing written: led again in a later epoch (another
		// leader may have appended in between) or the log holds records
		// this Store's State lacks. Its State is stale either way.
		err = errNotLeading(fmt.Errorf("store of epoch %d at %d: %w", l.epoch, offset, err))
	case errors.Is(err, metarepl.ErrNotLeader) || errors.Is(err, metalog.ErrDeposed):
		err = errNotLeading(err)
	default:
		err = errNotLeading(fmt.Errorf("metadata log append at %d, outcome unknown: %w", offset, err))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed == nil {
		l.failed = err
	}
	return l.failed
}

func (l *replicatedLog) batchesFrom(from int64, maxBytes int) ([]Batch, error) {
	bs, err := l.r.Committed(from, maxBytes)
	if errors.Is(err, kerr.OffsetOutOfRange) {
		return nil, ErrSnapshotNeeded
	}
	if err != nil {
		return nil, fmt.Errorf("controller: read the metadata log at %d: %w", from, err)
	}
	if len(bs) == 0 {
		// The Store publishes a batch when Append returns, which may
		// be one event of the Replica's loop before the high watermark
		// Committed reads up to is persisted: nothing yet, not gone.
		return nil, nil
	}
	out := make([]Batch, len(bs))
	for i, b := range bs {
		rs, err := decodeRecords(b.Records)
		if err != nil {
			return nil, fmt.Errorf("controller: metadata log batch at offset %d: %w", b.Offset, err)
		}
		out[i] = Batch{Offset: b.Offset, Records: rs}
	}
	return out, nil
}

// close has nothing to fold: the voters' log holds every batch.
func (l *replicatedLog) close(*State, int64) error { return nil }
