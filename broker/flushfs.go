package broker

import (
	"os"
	"time"

	"github.com/sluice-io/sluice/segment"
)

// timedFS times every fsync of the files the logs write, for
// sluice_log_flush_seconds, without the segment package knowing about
// metrics.
type timedFS struct {
	segment.FS
	observe func(time.Duration)
}

func (fs timedFS) OpenFile(name string, flag int, perm os.FileMode) (segment.File, error) {
	f, err := fs.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	tf := timedFile{File: f, observe: fs.observe}
	if fd, ok := f.(fdFile); ok {
		// Keep the descriptor visible: the network engines send log bytes
		// with sendfile/splice only from files that have one.
		return timedFdFile{tf, fd}, nil
	}
	return tf, nil
}

func (fs timedFS) SyncDir(dir string) error {
	start := time.Now()
	err := fs.FS.SyncDir(dir)
	fs.observe(time.Since(start))
	return err
}

type fdFile interface{ Fd() uintptr }

type timedFile struct {
	segment.File
	observe func(time.Duration)
}

func (f timedFile) Sync() error {
	start := time.Now()
	err := f.File.Sync()
	f.observe(time.Since(start))
	return err
}

type timedFdFile struct {
	timedFile
	fd fdFile
}

func (f timedFdFile) Fd() uintptr { return f.fd.Fd() }
