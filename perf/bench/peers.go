package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/sluice-io/sluice/perf/internal/benchkit"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// peerSpec is one broker process the workloads can run against.
type peerSpec struct {
	Name string
	Kind string
	// Fsync starts Sluice with log.flush.interval.messages=1 and JetStream
	// with sync_interval: always.
	Fsync bool
}

var peerSpecs = map[string]peerSpec{
	kindUring:            {Name: kindUring, Kind: kindUring},
	kindStd:              {Name: kindStd, Kind: kindStd},
	kindKfake:            {Name: kindKfake, Kind: kindKfake},
	kindJS:               {Name: kindJS, Kind: kindJS},
	kindUring + "-fsync": {Name: kindUring + "-fsync", Kind: kindUring, Fsync: true},
	kindStd + "-fsync":   {Name: kindStd + "-fsync", Kind: kindStd, Fsync: true},
	kindJS + "-sync":     {Name: kindJS + "-sync", Kind: kindJS, Fsync: true},
	kindCluster:          {Name: kindCluster, Kind: kindCluster},
}

// tools are the binaries the harness starts.
type tools struct {
	Sluice     string // bin/sluice: brokers and the Kafka load client
	Kfake      string // perf/bench/kfakepeer built
	NatsServer string
	Self       string // this binary, for the JetStream driver subcommand
	Iperf3     string // "" when not installed
}

// peer is a running (or dead) broker process.
type peer struct {
	spec      peerSpec
	gen       int // incremented by every (re)start
	addr      string
	adminAddr string // Sluice's HTTP admin listener, "" when not set
	argv      []string
	logPath   string
	cmd       *exec.Cmd
	exited    chan struct{}
	waitErr   error
	notes     []string
	// cluster is the cluster peer's three nodes; the peer itself is then
	// node 1's process.
	cluster *clusterPeer
}

func (p *peer) pid() int { return p.cmd.Process.Pid }

// pids are the processes whose CPU and memory count as the peer's.
func (p *peer) pids() []int {
	if p.cluster != nil {
		return p.cluster.pids()
	}
	return []int{p.pid()}
}

func (p *peer) alive() bool {
	if p.cluster != nil {
		return p.cluster.alive()
	}
	return p.running()
}

// running reports whether p's own process has not exited.
func (p *peer) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// peerSet starts peers on first use and keeps them up across workloads.
type peerSet struct {
	tools tools
	base  string
	logf  func(string, ...any)

	mu     sync.Mutex
	peers  map[string]*peer
	starts map[string]int
	failed map[string]error
	// history lists every successful start, for the report.
	history []startedPeer
}

type startedPeer struct {
	Name  string   `json:"name"`
	Gen   int      `json:"start"`
	Argv  []string `json:"argv"`
	Notes []string `json:"notes,omitempty"`
}

func newPeerSet(t tools, base string, logf func(string, ...any)) *peerSet {
	return &peerSet{tools: t, base: base, logf: logf, peers: map[string]*peer{}, starts: map[string]int{}, failed: map[string]error{}}
}

// maxStarts bounds how often one peer is (re)started in a run, so a peer
// that cannot come up costs a few start attempts, not one per run.
const maxStarts = 3

// get returns the named peer, starting it if it never ran and restarting
// it if it died; note says which happened, for the run's record.
func (ps *peerSet) get(ctx context.Context, name string) (p *peer, note string, err error) {
	ps.mu.Lock()
	old, starts, lastErr := ps.peers[name], ps.starts[name], ps.failed[name]
	ps.mu.Unlock()
	if old != nil && old.alive() {
		return old, "", nil
	}
	if starts >= maxStarts {
		if lastErr == nil {
			lastErr = fmt.Errorf("%s died %d times", name, starts)
		}
		return nil, "", fmt.Errorf("not restarted after %d starts: %w", starts, lastErr)
	}
	spec, ok := peerSpecs[name]
	if !ok {
		return nil, "", fmt.Errorf("unknown peer %q", name)
	}
	if old != nil {
		note = fmt.Sprintf("%s had died (%v), restarted", name, old.waitErr)
		if tail := logTail(old.logPath, 2); tail != "" {
			note += "; its log ends: " + tail
		}
		ps.logf("peer %s", note)
		stopProcess(old, 5*time.Second) // the rest of a cluster may run
	}
	p, err = ps.start(ctx, spec, starts+1)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.starts[name]++
	if err != nil {
		ps.failed[name] = err
		ps.logf("peer %s: %v", name, err)
		return nil, note, err
	}
	ps.peers[name] = p
	ps.history = append(ps.history, startedPeer{Name: name, Gen: p.gen, Argv: p.argv, Notes: p.notes})
	return p, note, nil
}

func (ps *peerSet) start(ctx context.Context, spec peerSpec, gen int) (*peer, error) {
	dir := filepath.Join(ps.base, fmt.Sprintf("%s-%d", spec.Name, gen))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := benchkit.FreePort()
	if err != nil {
		return nil, err
	}
	p := &peer{spec: spec, gen: gen, addr: fmt.Sprintf("127.0.0.1:%d", port), logPath: filepath.Join(dir, "peer.log")}
	switch spec.Kind {
	case kindUring, kindStd:
		adminPort, err := benchkit.FreePort()
		if err != nil {
			return nil, err
		}
		p.adminAddr = fmt.Sprintf("127.0.0.1:%d", adminPort)
		err = ps.launch(ctx, p, sluiceArgv(ps.tools.Sluice, spec, p.addr, p.adminAddr, filepath.Join(dir, "data")))
		if err != nil && strings.Contains(err.Error(), "admin.listener") {
			// An older broker without the admin listener: run without it;
			// the /metrics workload then reports itself unavailable.
			p.notes = append(p.notes, "admin.listener rejected: "+err.Error())
			p.adminAddr = ""
			err = ps.launch(ctx, p, sluiceArgv(ps.tools.Sluice, spec, p.addr, "", filepath.Join(dir, "data")))
		}
		return p, err
	case kindKfake:
		return p, ps.launch(ctx, p, []string{ps.tools.Kfake, "--port", strconv.Itoa(port)})
	case kindJS:
		if ps.tools.NatsServer == "" {
			return nil, errors.New("nats-server not installed (perf/bench.sh installs it into perf/.tools)")
		}
		conf := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(conf, []byte(natsConfig(p.addr, filepath.Join(dir, "store"), spec.Fsync)), 0o644); err != nil {
			return nil, err
		}
		return p, ps.launch(ctx, p, []string{ps.tools.NatsServer, "-c", conf})
	case kindCluster:
		return p, ps.startCluster(ctx, p, dir)
	}
	return nil, fmt.Errorf("peer %s: unknown kind %q", spec.Name, spec.Kind)
}

func sluiceArgv(bin string, spec peerSpec, addr, admin, logDir string) []string {
	engine := strings.TrimPrefix(spec.Kind, "sluice-")
	argv := []string{bin, "broker", "--engine", engine,
		"--set", "listeners=PLAINTEXT://" + addr,
		"--set", "log.dirs=" + logDir,
		// Peers log only problems, like kfake, so logging is not measured.
		"--set", "log.level=warn",
	}
	if admin != "" {
		argv = append(argv, "--set", "admin.listener="+admin)
	}
	if spec.Fsync {
		argv = append(argv, "--set", "log.flush.interval.messages=1")
	}
	return argv
}

// natsConfig is a single JetStream server with file storage on 127.0.0.1.
// sync_interval: always makes it fsync before acknowledging a publish,
// the counterpart of log.flush.interval.messages=1.
func natsConfig(addr, storeDir string, syncAlways bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\n", addr)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n", storeDir)
	if syncAlways {
		b.WriteString("  sync_interval: always\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// launch starts argv as p's process and waits until it accepts TCP
// connections on p.addr.
func (ps *peerSet) launch(ctx context.Context, p *peer, argv []string) error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.spec.Name, err)
	}
	p.argv, p.cmd, p.exited = argv, cmd, make(chan struct{})
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	ps.logf("peer %s: pid %d on %s: %s", p.spec.Name, cmd.Process.Pid, p.addr, strings.Join(argv, " "))
	if err := benchkit.WaitPort(ctx, p.addr, 30*time.Second, p.exited); err != nil {
		stopProcess(p, 5*time.Second)
		return fmt.Errorf("%s did not come up: %w; log: %s", p.spec.Name, err, logTail(p.logPath, 3))
	}
	return nil
}

// stop ends every peer: SIGTERM, then SIGKILL to its process group.
func (ps *peerSet) stop(name string) {
	ps.mu.Lock()
	p := ps.peers[name]
	delete(ps.peers, name)
	ps.mu.Unlock()
	if p != nil {
		stopProcess(p, 20*time.Second)
	}
}

func (ps *peerSet) stopAll() {
	ps.mu.Lock()
	var names []string
	for n := range ps.peers {
		names = append(names, n)
	}
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Add(1)
		go func() { defer wg.Done(); ps.stop(n) }()
	}
	wg.Wait()
}

// started returns every successful start so far.
func (ps *peerSet) started() []startedPeer {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return append([]startedPeer(nil), ps.history...)
}

func stopProcess(p *peer, grace time.Duration) {
	if p.cluster != nil {
		p.cluster.stop(grace)
		return
	}
	stopOne(p, grace)
}

// stopOne stops p's own process, SIGTERM then SIGKILL after grace.
func stopOne(p *peer, grace time.Duration) {
	if p.cmd == nil || p.cmd.Process == nil || !p.running() {
		return
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.exited
	}
}

// childAttr puts a child in its own process group, so a Ctrl-C meant for
// the harness reaches it only through the harness's clean-up, and has the
// kernel kill it should the harness die without cleaning up.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// logTail returns the last n non-empty lines of a log file, joined.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(string(bytes.TrimSpace(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return truncate(strings.Join(lines, " | "), 600)
}
