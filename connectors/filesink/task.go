package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
)

// task writes its partitions' records to files (see naming.go for how the
// names make it exactly once).
type task struct {
	mu    sync.Mutex
	cfg   *config
	enc   *encoder
	log   *slog.Logger
	parts map[sdk.TopicPartition]*partFile
	buf   []byte
	// broken is a failed commit: a file may be half committed, so the
	// task refuses all further work until it is restarted and recovers
	// from the directory.
	broken error
}

// partFile is a partition's progress: the offset it expects next and its
// open temp file, if any.
type partFile struct {
	tp   sdk.TopicPartition
	next int64 // records below it are in a final file already; -1: anything goes

	f          *os.File // the temp file, nil when none is open
	w          *bufio.Writer
	name       string
	start, end int64
	records    int64
	bytes      int64
	opened     time.Time
}

func (t *task) Start(_ context.Context, tc sdk.TaskContext, m map[string]string) error {
	cfg, errs := parseConfig(m)
	if len(errs) > 0 {
		msgs := make([]string, 0, len(errs))
		for _, e := range errs {
			msgs = append(msgs, e)
		}
		sort.Strings(msgs)
		return fmt.Errorf("file sink config: %s", strings.Join(msgs, "; "))
	}
	if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return fmt.Errorf("file sink: creating the directory: %w", err)
	}
	enc, err := newEncoder(cfg.format, cfg.fields)
	if err != nil {
		return err
	}
	t.cfg, t.enc, t.log = cfg, enc, tc.Logger
	if t.log == nil {
		t.log = sdk.Logger
	}
	t.parts = map[sdk.TopicPartition]*partFile{}
	return nil
}

// Open recovers each partition from the directory: its temp files, never
// committed, are deleted, and consumption resumes after the last offset
// of its final files.
func (t *task) Open(_ context.Context, parts []sdk.TopicPartition) ([]sdk.TopicPartitionOffset, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	names, err := t.list()
	if err != nil {
		return nil, err
	}
	var rewind []sdk.TopicPartitionOffset
	for _, tp := range parts {
		p, err := t.recover(tp, names)
		if err != nil {
			return nil, err
		}
		if p.next >= 0 {
			rewind = append(rewind, sdk.TopicPartitionOffset{Topic: tp.Topic, Partition: tp.Partition, Offset: p.next})
		}
	}
	return rewind, nil
}

func (t *task) list() ([]string, error) {
	entries, err := os.ReadDir(t.cfg.dir)
	if err != nil {
		return nil, fmt.Errorf("file sink: listing %s: %w", t.cfg.dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// recover starts a partition afresh from the directory's names: its temp
// files are deleted and its next offset is the one after its final files.
func (t *task) recover(tp sdk.TopicPartition, names []string) (*partFile, error) {
	if p := t.parts[tp]; p != nil {
		p.abort()
	}
	r := recoverPartition(names, tp.Topic, tp.Partition)
	for _, n := range r.deletions {
		if err := os.Remove(filepath.Join(t.cfg.dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("file sink: removing the uncommitted %s: %w", n, err)
		}
	}
	p := &partFile{tp: tp, next: r.next}
	t.parts[tp] = p
	if r.next >= 0 || len(r.deletions) > 0 {
		t.log.Info("file sink: recovered a partition from its files", "topic", tp.Topic, "partition", tp.Partition,
			"next", r.next, "removed", len(r.deletions))
	}
	return p, nil
}

func origin(r *data.Record) (sdk.TopicPartition, int64) {
	if r.OriginalTopic != "" {
		return sdk.TopicPartition{Topic: r.OriginalTopic, Partition: r.OriginalPartition}, r.OriginalOffset
	}
	return sdk.TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.KafkaOffset
}

// Put appends records to their partitions' temp files, committing a file
// first when it is due for rotation. A record below its partition's next
// offset is in a final file already (the worker read it again) and is
// skipped, which is what keeps every record in exactly one file.
func (t *task) Put(_ context.Context, recs []*data.Record) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.broken != nil {
		return t.broken
	}
	failed := map[int]error{}
	renamed := false
	for i, r := range recs {
		tp, off := origin(r)
		p := t.parts[tp]
		if p == nil {
			// Not opened: recover it as Open would, so as not to write
			// again what a final file holds.
			names, err := t.list()
			if err != nil {
				return err
			}
			if p, err = t.recover(tp, names); err != nil {
				return err
			}
		}
		if p.next >= 0 && off < p.next {
			continue
		}
		now := time.Now()
		if t.cfg.rotate.due(p.records, p.bytes, p.opened, now) {
			if err := t.commitFile(p); err != nil {
				t.broken = err
				return err
			}
			renamed = true
		}
		line, err := t.enc.line(t.buf[:0], r, tp.Topic, tp.Partition, off)
		t.buf = line
		if err != nil {
			failed[i] = fmt.Errorf("encoding the record: %w", err)
			continue
		}
		if err := t.write(p, off, line, now); err != nil {
			return err
		}
		p.next = off + 1
	}
	// Renames done by rotation are made durable before Put returns.
	if renamed {
		if err := syncDir(t.cfg.dir); err != nil {
			t.broken = fmt.Errorf("file sink: fsync of %s: %w", t.cfg.dir, err)
			return t.broken
		}
	}
	if len(failed) > 0 {
		return &sdk.PutErrors{Errors: failed}
	}
	return nil
}

// write appends one line to the partition's temp file, opening it first if
// none is open.
func (t *task) write(p *partFile, off int64, line []byte, now time.Time) error {
	if p.f == nil {
		p.name = tempName(p.tp.Topic, p.tp.Partition, off)
		f, err := os.OpenFile(filepath.Join(t.cfg.dir, p.name), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("file sink: creating %s: %w", p.name, err)
		}
		p.f, p.w, p.start, p.records, p.bytes, p.opened = f, bufio.NewWriterSize(f, 64<<10), off, 0, 0, now
		_, _ = p.w.Write(t.enc.header())
	} else {
		_, _ = p.w.Write(t.enc.separator())
	}
	// A bufio.Writer keeps its first error and returns it from Flush,
	// which commitFile checks.
	_, _ = p.w.Write(line)
	p.end = off
	p.records++
	p.bytes += int64(len(line))
	return nil
}

// commitFile closes the partition's temp file, fsyncs it and renames it
// to its final name; the caller fsyncs the directory.
func (t *task) commitFile(p *partFile) error {
	if p.f == nil {
		return nil
	}
	_, _ = p.w.Write(t.enc.footer())
	if err := p.w.Flush(); err != nil {
		return fmt.Errorf("file sink: writing %s: %w", p.name, err)
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("file sink: fsync of %s: %w", p.name, err)
	}
	if err := p.f.Close(); err != nil {
		return fmt.Errorf("file sink: closing %s: %w", p.name, err)
	}
	p.f, p.w = nil, nil
	final := finalName(p.tp.Topic, p.tp.Partition, p.start, p.end, extensions[t.cfg.format])
	if err := os.Rename(filepath.Join(t.cfg.dir, p.name), filepath.Join(t.cfg.dir, final)); err != nil {
		return fmt.Errorf("file sink: committing %s: %w", final, err)
	}
	return nil
}

// abort closes and deletes the temp file: its records were never
// committed and will be read again.
func (p *partFile) abort() {
	if p.f == nil {
		return
	}
	path := p.f.Name()
	_ = p.f.Close()
	_ = os.Remove(path)
	p.f, p.w = nil, nil
}

// syncDir fsyncs a directory, making the renames in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// PreCommit commits every open file (fsync, rename, directory fsync):
// then all records delivered are in final files, and the offsets given
// are safe. Open resumes from the file names whatever the group says, so
// the group's offsets are for monitoring (lag) only.
func (t *task) PreCommit(_ context.Context, offs []sdk.TopicPartitionOffset) ([]sdk.TopicPartitionOffset, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.broken != nil {
		return nil, t.broken
	}
	renamed := false
	for _, p := range t.parts {
		if p.f == nil {
			continue
		}
		if err := t.commitFile(p); err != nil {
			t.broken = err
			return nil, err
		}
		renamed = true
	}
	if renamed {
		if err := syncDir(t.cfg.dir); err != nil {
			t.broken = fmt.Errorf("file sink: fsync of %s: %w", t.cfg.dir, err)
			return nil, t.broken
		}
	}
	return offs, nil
}

// Close forgets partitions: the worker committed them (PreCommit) just
// before, unless they were lost, and then their temp files are dropped
// for their next owner to write again.
func (t *task) Close(_ context.Context, parts []sdk.TopicPartition) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tp := range parts {
		if p := t.parts[tp]; p != nil {
			p.abort()
			delete(t.parts, tp)
		}
	}
	return nil
}

// Stop drops uncommitted temp files (the worker commits before it stops a
// task, so normally there are none).
func (t *task) Stop(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for tp, p := range t.parts {
		p.abort()
		delete(t.parts, tp)
	}
	return nil
}
