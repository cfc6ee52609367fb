package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-io/sluice/segment"
)

// storageLogEvery is the least time between two storage error lines of one
// log dir: a full disk fails every produce, and a line per failure would
// bury everything else (and fill the disk the logs are on, often the same).
const storageLogEvery = 10 * time.Second

// storageHealth watches the writes to each log dir through healthFS. A
// failed write marks its dir failing: the error is logged (at most once per
// storageLogEvery, counting the ones left out), counted in
// sluice_log_dir_storage_errors_total, and /readyz answers 503 naming the
// dir. The next write to the dir that succeeds clears it, so a broker whose
// disk filled up serves again once space is freed, without a restart.
type storageHealth struct {
	dirs   []*dirHealth // in log.dirs order, for /readyz
	logger *slog.Logger
	now    func() time.Time
}

// dirHealth is the state of one log dir.
type dirHealth struct {
	h       *storageHealth
	name    string // as in log.dirs: the metric label and what /readyz says
	prefix  string // cleaned, to match the paths the logs open
	errs    prometheus.Counter
	failing prometheus.Gauge
	down    atomic.Bool // failing now; read on every successful write

	mu         sync.Mutex
	since      time.Time // first error of the current failure
	count      int64     // errors since then
	lastErr    error
	lastLog    time.Time // last error line, for the rate limit
	suppressed int64     // errors not logged since that line
	announced  bool      // an error line of the current failure was logged
}

func newStorageHealth(dirs []string, m *metrics, logger *slog.Logger, now func() time.Time) *storageHealth {
	h := &storageHealth{logger: logger, now: now}
	for _, d := range dirs {
		h.dirs = append(h.dirs, &dirHealth{
			h: h, name: d, prefix: filepath.Clean(d),
			// Created now, at zero: rate() needs the series before the
			// first error, and the alert rule needs it to exist at all.
			errs: m.storageErrors.WithLabelValues(d), failing: m.dirFailing.WithLabelValues(d),
		})
	}
	return h
}

// dirOf is the log dir holding path (the deepest, were they nested), nil
// for paths outside every log dir.
func (h *storageHealth) dirOf(path string) *dirHealth {
	path = filepath.Clean(path)
	var best *dirHealth
	for _, d := range h.dirs {
		in := strings.HasPrefix(path, d.prefix+string(filepath.Separator)) || path == d.prefix ||
			(d.prefix == "." && !filepath.IsAbs(path) && !strings.HasPrefix(path, ".."))
		if in && (best == nil || len(d.prefix) > len(best.prefix)) {
			best = d
		}
	}
	return best
}

// err is why the broker is not ready because of its disks, nil when every
// log dir takes writes.
func (h *storageHealth) err() error {
	var why []string
	for _, d := range h.dirs {
		if !d.down.Load() {
			continue
		}
		d.mu.Lock()
		why = append(why, fmt.Sprintf("log dir %s is failing writes since %s (%d storage errors; last: %v)",
			d.name, d.since.UTC().Format(time.RFC3339), d.count, d.lastErr))
		d.mu.Unlock()
	}
	if len(why) == 0 {
		return nil
	}
	return errors.New(strings.Join(why, "; "))
}

// isDiskError reports whether a failed write says something about the
// disk. Running out of descriptors (EMFILE, ENFILE) is the process's limit,
// which the fd budget reports; a missing or existing name is the caller's
// business; an error without an errno (a file closed under a deleted topic)
// is not the disk's.
func isDiskError(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EMFILE, syscall.ENFILE, syscall.ENOENT, syscall.EEXIST:
		return false
	}
	return true
}

// failed records a failed write of op on path.
func (d *dirHealth) failed(op, path string, err error) {
	if d == nil || !isDiskError(err) {
		return
	}
	d.errs.Inc()
	now := d.h.now()
	d.mu.Lock()
	if !d.down.Load() {
		d.since, d.count = now, 0
		d.down.Store(true)
		d.failing.Set(1)
	}
	d.count++
	d.lastErr = err
	log := d.lastLog.IsZero() || now.Sub(d.lastLog) >= storageLogEvery
	suppressed := d.suppressed
	if log {
		d.lastLog, d.suppressed, d.announced = now, 0, true
	} else {
		d.suppressed++
	}
	d.mu.Unlock()
	if log {
		d.h.logger.Error("storage error: a write to the log dir failed; produce to its partitions answers KAFKA_STORAGE_ERROR until writes succeed again",
			"dir", d.name, "op", op, "path", path, "errno", errnoName(err), "err", err,
			"suppressed", suppressed, "suppressed_window", storageLogEvery)
	}
}

// wrote records a successful write: a failing dir takes writes again.
func (d *dirHealth) wrote() {
	if d == nil || !d.down.Load() {
		return
	}
	now := d.h.now()
	d.mu.Lock()
	if !d.down.Load() {
		d.mu.Unlock()
		return
	}
	d.down.Store(false)
	d.failing.Set(0)
	since, count, suppressed, announced := d.since, d.count, d.suppressed, d.announced
	if announced {
		// What was left out is in this line; a failure that came and went
		// unannounced within the window keeps counting for the next one.
		d.suppressed, d.announced = 0, false
	}
	d.mu.Unlock()
	if announced {
		d.h.logger.Info("storage recovered: the log dir takes writes again",
			"dir", d.name, "failed_for", now.Sub(since).Round(time.Millisecond), "errors", count, "suppressed", suppressed)
	}
}

// errnoName is the errno's symbolic name (ENOSPC), or "" when err has none.
func errnoName(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return ""
	}
	return errnoString(errno)
}

// healthFS reports every write under a log dir to storageHealth. Reads are
// not watched: a read error takes only its partition offline (see
// docs/architecture.md, Data safety), and says nothing about space.
type healthFS struct {
	segment.FS
	h *storageHealth
}

// writeFlags are the open flags that ask for space or a writable disk.
const writeFlags = os.O_WRONLY | os.O_RDWR | os.O_CREATE | os.O_TRUNC | os.O_APPEND

func (fs healthFS) OpenFile(name string, flag int, perm os.FileMode) (segment.File, error) {
	d := fs.h.dirOf(name)
	f, err := fs.FS.OpenFile(name, flag, perm)
	if err != nil {
		if flag&writeFlags != 0 {
			d.failed("open", name, err)
		}
		return nil, err
	}
	if d == nil || flag&writeFlags == 0 {
		return f, nil
	}
	hf := healthFile{File: f, d: d, name: name}
	if fd, ok := f.(fdFile); ok {
		// Keep the descriptor visible for sendfile, as timedFS does.
		return healthFdFile{hf, fd}, nil
	}
	return hf, nil
}

func (fs healthFS) Rename(oldname, newname string) error {
	err := fs.FS.Rename(oldname, newname)
	if err != nil {
		fs.h.dirOf(newname).failed("rename", newname, err)
	}
	return err
}

func (fs healthFS) MkdirAll(dir string, perm os.FileMode) error {
	err := fs.FS.MkdirAll(dir, perm)
	if err != nil {
		fs.h.dirOf(dir).failed("mkdir", dir, err)
	}
	return err
}

func (fs healthFS) SyncDir(dir string) error {
	err := fs.FS.SyncDir(dir)
	if err != nil {
		fs.h.dirOf(dir).failed("fsync", dir, err)
	}
	return err
}

type healthFile struct {
	segment.File
	d    *dirHealth
	name string
}

// Write is the one success that clears a failing dir: Sync and Truncate
// succeed on a full disk too (nothing to flush, nothing to allocate).
func (f healthFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	switch {
	case err != nil:
		f.d.failed("write", f.name, err)
	case n > 0:
		f.d.wrote()
	}
	return n, err
}

func (f healthFile) Sync() error {
	err := f.File.Sync()
	if err != nil {
		f.d.failed("fsync", f.name, err)
	}
	return err
}

func (f healthFile) Truncate(size int64) error {
	err := f.File.Truncate(size)
	if err != nil {
		f.d.failed("truncate", f.name, err)
	}
	return err
}

type healthFdFile struct {
	healthFile
	fd fdFile
}

func (f healthFdFile) Fd() uintptr { return f.fd.Fd() }
