package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/connectors/filetail/tail"
)

// idleCheck bounds how long Poll waits without a notification before it
// looks at its files again: notifications can be missed (NFS, overlay
// file systems, a full inotify queue).
const idleCheck = 250 * time.Millisecond

// defaultPollBytes bounds one Poll's reading when the worker sets no
// byte limit.
const defaultPollBytes = 8 << 20

func (connector) NewTask() sdk.SourceTask { return &task{} }

// task is the I/O around a tail.Engine: Poll scans (on notifications
// and every glob_minimum_cooldown_ms) and reads, Commit hands the durable
// positions to the engine, and a goroutine turns fsnotify events into
// wake-ups.
type task struct {
	s   settings
	log *slog.Logger

	mu       sync.Mutex // the engine, between Poll and Stop
	eng      *tail.Engine
	nextScan time.Time
	stopped  bool

	wake     chan struct{}
	rescan   chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	watcher  *fsnotify.Watcher
	watched  map[string]bool
	parts    map[tail.FileID]map[string]any
	headers  map[string][]data.Header
	last     []tail.Output // the latest Poll's, for SourceOffsetAt
	logged   tail.Stats
}

func (t *task) Start(_ context.Context, tc sdk.TaskContext, cfg map[string]string, committed []sdk.Position) error {
	s, errs := parse(cfg)
	if len(errs) > 0 {
		keys := slices.Sorted(maps.Keys(errs))
		return fmt.Errorf("config %s: %s", keys[0], errs[keys[0]][0])
	}
	t.s, t.log = s, tc.Logger
	if t.log == nil {
		t.log = sdk.Logger
	}
	positions := map[tail.FileID]int64{}
	for _, p := range committed {
		id, _ := p.Partition[fingerprintPart].(string)
		if id == "" || p.Offset == nil {
			continue
		}
		if n, ok := asInt(p.Offset[positionOffset]); ok {
			positions[tail.FileID(id)] = n
		}
	}
	t.eng = tail.NewEngine(osFS{}, s.engine, positions)
	t.eng.Log = func(msg string, args ...any) { t.log.Info(msg, args...) }
	t.wake, t.rescan, t.stop = make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{})
	t.parts, t.headers, t.watched = map[tail.FileID]map[string]any{}, map[string][]data.Header{}, map[string]bool{}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.log.Warn("no file system notifications; rescanning every glob_minimum_cooldown_ms", "error", err)
	} else {
		t.watcher = w
		go t.watch(w)
	}
	t.log.Info("tailing", "include", s.engine.Include, "exclude", s.engine.Exclude, "committed files", len(positions))
	return nil
}

// watch turns notifications into wake-ups: a write wakes Poll, a
// create, rename or removal (or a lost event) also asks for a rescan.
func (t *task) watch(w *fsnotify.Watcher) {
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove) {
				signal(t.rescan)
			}
			signal(t.wake)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				t.log.Warn("file system notifications overflowed; rescanning")
			}
			signal(t.rescan)
			signal(t.wake)
		}
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (t *task) Poll(ctx context.Context, limits sdk.PollLimits) ([]*data.Record, error) {
	deadline := time.Now().Add(limits.MaxWait)
	maxBytes := limits.MaxBytes
	if maxBytes <= 0 {
		maxBytes = defaultPollBytes
	}
	for {
		recs, due, err := t.step(maxBytes)
		if err != nil || len(recs) > 0 {
			return recs, err
		}
		now := time.Now()
		wait := min(deadline.Sub(now), idleCheck)
		if !due.IsZero() {
			wait = min(wait, due.Sub(now))
		}
		if deadline.Sub(now) <= 0 {
			return nil, nil
		}
		timer := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, nil
		case <-t.stop:
			timer.Stop()
			return nil, nil
		case <-t.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// step scans if it is time to, reads, and says when the engine next has
// something to do on its own.
func (t *task) step(maxBytes int64) ([]*data.Record, time.Time, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return nil, time.Time{}, nil
	}
	now := time.Now()
	select {
	case <-t.rescan:
		t.nextScan = now
	default:
	}
	if !now.Before(t.nextScan) || t.eng.WantScan() {
		if err := t.eng.Scan(now); err != nil {
			t.log.Warn("scanning the include globs", "error", err)
		}
		t.nextScan = now.Add(t.s.cooldown)
		t.watchNewDirs()
		t.logStats()
	}
	outs, err := t.eng.Read(now, maxBytes)
	if err != nil {
		return nil, time.Time{}, err
	}
	due := t.eng.Due()
	if due.IsZero() || t.nextScan.Before(due) {
		due = t.nextScan
	}
	return t.records(outs), due, nil
}

func (t *task) watchNewDirs() {
	if t.watcher == nil {
		return
	}
	for _, d := range watchDirs(t.s.engine.Include) {
		if t.watched[d] {
			continue
		}
		if err := t.watcher.Add(d); err != nil {
			t.log.Warn("watching a directory; relying on rescans", "dir", d, "error", err)
			continue
		}
		t.watched[d] = true
	}
}

// logStats logs what was cut from long lines since the last report.
func (t *task) logStats() {
	st := t.eng.Stats()
	if st.TruncatedLines != t.logged.TruncatedLines || st.SplitPieces != t.logged.SplitPieces {
		t.log.Warn("lines longer than max_line_bytes", "truncated lines", st.TruncatedLines, "dropped bytes", st.DroppedBytes,
			"split pieces", st.SplitPieces, "max_line_bytes", t.s.engine.MaxLineBytes)
	}
	t.logged = st
}

// records turns the engine's outputs into records. Their source offsets
// are left to SourceOffsetAt: a map per line was ~20% of the plugin's CPU
// (allocating, filling and collecting it), and the SDK needs the offsets
// of only the last line of each file in a batch.
func (t *task) records(outs []tail.Output) []*data.Record {
	t.last = outs
	if len(outs) == 0 {
		return nil
	}
	recs := make([]*data.Record, len(outs))
	backing := make([]data.Record, len(outs))
	texts := make([]string, len(outs))
	var path string
	var id tail.FileID
	var headers []data.Header
	var part map[string]any
	for i, o := range outs {
		r := &backing[i]
		r.Topic, r.Partition, r.Timestamp = t.s.topic, -1, -1
		texts[i] = o.Text
		r.ValueSchema, r.Value = data.StringSchema, boxText(&texts[i])
		if i == 0 || o.Path != path || o.ID != id {
			// A new run of a file's records: look its partition and
			// header up once per run rather than hash the path and the
			// file's id for every line.
			path, id, headers = o.Path, o.ID, nil
			part = t.partition(o.ID)
			if t.s.fileKey != "" {
				headers = t.header(o.Path)
			}
		}
		r.SourcePartition = part
		r.Headers = headers
		if t.s.keyByPath {
			r.KeySchema, r.Key = data.StringSchema, o.Path
		}
		recs[i] = r
	}
	return recs
}

// SourceOffsetAt is the source offset of record i of the latest Poll
// (sdk.SourceOffsetsAt): the line's end and the file's path.
func (t *task) SourceOffsetAt(i int) map[string]any {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i < 0 || i >= len(t.last) {
		return nil
	}
	o := t.last[i]
	return map[string]any{positionOffset: o.End, pathOffset: o.Path}
}

// partition is a file's source partition, shared by its records.
func (t *task) partition(id tail.FileID) map[string]any {
	p := t.parts[id]
	if p == nil {
		p = map[string]any{fingerprintPart: string(id)}
		t.parts[id] = p
	}
	return p
}

func (t *task) header(path string) []data.Header {
	h := t.headers[path]
	if h == nil {
		h = []data.Header{{Key: t.s.fileKey, Schema: data.StringSchema, Value: path}}
		if len(t.headers) > 10000 {
			clear(t.headers)
		}
		t.headers[path] = h
	}
	return h
}

// Commit hands the engine the positions whose records are durable: only
// then may a drained rotated file be closed.
func (t *task) Commit(_ context.Context, c sdk.Commit) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return nil
	}
	for _, p := range c.Positions {
		id, _ := p.Partition[fingerprintPart].(string)
		if n, ok := asInt(p.Offset[positionOffset]); ok && id != "" {
			t.eng.Commit(tail.FileID(id), n)
		}
	}
	return nil
}

func (t *task) Stop(context.Context) error {
	t.stopOnce.Do(func() {
		if t.stop != nil {
			close(t.stop)
		}
	})
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	if t.watcher != nil {
		_ = t.watcher.Close()
		t.watcher = nil
	}
	if t.eng != nil {
		t.eng.Close()
	}
	return nil
}
