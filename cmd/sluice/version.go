package main

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is the release this binary is; builds from a checkout say "dev"
// and let the commit tell them apart.
var version = "dev"

// runVersion prints what a bug report needs: the version, the commit and
// whether the tree had local changes (Go records both when it builds from a
// git checkout), the Go toolchain, and the engines this machine can run.
func runVersion(stdout io.Writer) int {
	commit := buildCommit()
	fmt.Fprintf(stdout, "sluice %s\ncommit: %s\ngo: %s %s/%s\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	var engines bytes.Buffer
	runEngines(&engines)
	fmt.Fprintln(stdout, "engines:")
	for _, line := range strings.Split(strings.TrimRight(engines.String(), "\n"), "\n") {
		fmt.Fprintf(stdout, "  %s\n", line)
	}
	return 0
}

// buildCommit is the commit this binary was built from, marked when the
// tree had local changes (Go records both when it builds from a git
// checkout).
func buildCommit() string {
	commit, modified := "unknown", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if modified {
		commit += " (with local changes)"
	}
	return commit
}
