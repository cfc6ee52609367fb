package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// environment is what the report states about the machine and the
// software compared.
type environment struct {
	Date         string `json:"date"`
	Kernel       string `json:"kernel"`
	CPU          string `json:"cpu"`
	Cores        int    `json:"cores"`
	MemTotal     string `json:"mem_total"`
	Go           string `json:"go"`
	Commit       string `json:"sluice_commit"`
	ShortCommit  string `json:"sluice_short_commit"`
	Engines      string `json:"sluice_engines"`
	FranzGo      string `json:"franz_go"`
	Kfake        string `json:"kfake"`
	NatsGo       string `json:"nats_go"`
	NatsServer   string `json:"nats_server"`
	Iperf3       string `json:"iperf3,omitempty"`
	HarnessFlags string `json:"harness_command"`
}

func collectEnv(ctx context.Context, root string, t tools) environment {
	e := environment{
		Date:   time.Now().UTC().Format(time.RFC3339),
		Kernel: strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		CPU:    cpuModel(readFile("/proc/cpuinfo")),
		Cores:  runtime.NumCPU(),
		Go:     runtime.Version(),
	}
	if f := strings.Fields(grepLine(readFile("/proc/meminfo"), "MemTotal:")); len(f) >= 3 && f[2] == "kB" {
		if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
			e.MemTotal = fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	e.Commit = cmdOut(ctx, root, "git", "rev-parse", "HEAD")
	e.ShortCommit = cmdOut(ctx, root, "git", "rev-parse", "--short", "HEAD")
	if e.ShortCommit == "" {
		e.ShortCommit = "nogit"
	}
	if cmdOut(ctx, root, "git", "status", "--porcelain", "--untracked-files=no") != "" {
		e.Commit += " (with uncommitted changes)"
	}
	e.Engines = strings.ReplaceAll(cmdOut(ctx, root, t.Sluice, "engines"), "\n", "; ")
	mods := goModVersions(readFile(filepath.Join(root, "go.mod")))
	e.FranzGo = mods["github.com/twmb/franz-go"]
	e.Kfake = mods["github.com/twmb/franz-go/pkg/kfake"]
	e.NatsGo = mods["github.com/nats-io/nats.go"]
	e.NatsServer = cmdOut(ctx, root, t.NatsServer, "--version")
	if t.Iperf3 != "" {
		e.Iperf3 = firstLine(cmdOut(ctx, root, t.Iperf3, "--version"))
	}
	return e
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func cmdOut(ctx context.Context, dir, name string, args ...string) string {
	if name == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func grepLine(text, prefix string) string {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			return sc.Text()
		}
	}
	return ""
}

func cpuModel(cpuinfo string) string {
	_, v, ok := strings.Cut(grepLine(cpuinfo, "model name"), ":")
	if !ok {
		return runtime.GOARCH
	}
	return strings.TrimSpace(v)
}

// goModVersions maps module path to version from go.mod's require lines,
// in both the block and the single-line form.
func goModVersions(gomod string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(gomod))
	inBlock := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "require (":
			inBlock = true
			continue
		case inBlock && line == ")":
			inBlock = false
			continue
		case strings.HasPrefix(line, "require "):
			line = strings.TrimPrefix(line, "require ")
		case !inBlock:
			continue
		}
		if f := strings.Fields(line); len(f) >= 2 {
			out[f[0]] = f[1]
		}
	}
	return out
}

// moduleRoot walks up from dir to the directory holding go.mod.
func moduleRoot(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/sluice-io/sluice")) {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
