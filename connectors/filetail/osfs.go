package main

import (
	"os"
	"path/filepath"
	"syscall"

	"github.com/sluice-io/sluice/connectors/filetail/tail"
)

// osFS is the real file system for the engine.
type osFS struct{}

func (osFS) Glob(pattern string) ([]string, error) {
	paths, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	out := paths[:0]
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	return out, nil
}

func (osFS) Open(path string) (tail.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

type osFile struct{ *os.File }

func (f osFile) Stat() (tail.FileInfo, error) {
	st, err := f.File.Stat()
	if err != nil {
		return tail.FileInfo{}, err
	}
	fi := tail.FileInfo{Size: st.Size()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		fi.Dev, fi.Ino = uint64(sys.Dev), sys.Ino //nolint:unconvert // Dev's type differs between platforms
	}
	return fi, nil
}

// pathMatch checks a glob's syntax.
func pathMatch(glob string) (bool, error) { return filepath.Match(glob, "") }

// watchDirs is the directories holding the files a glob can match, for
// the notifications.
func watchDirs(globs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, g := range globs {
		dirs, err := filepath.Glob(filepath.Dir(g))
		if err != nil {
			continue
		}
		for _, d := range dirs {
			if st, err := os.Stat(d); err == nil && st.IsDir() && !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out
}
