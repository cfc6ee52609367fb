package itest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A group member that a test must be able to SIGKILL (so it never leaves the
// group) runs in its own process: the test binary re-executed with
// childConsumerEnv set, which makes TestMain run runChildConsumer instead of
// the tests. The child reports every change of its assignment on stdout as
//
//	member=<member id> owned=<p>,<p>,...
//
// and exits when its stdin closes (the test, or the whole test process, went
// away), so it never outlives the test.
const childConsumerEnv = "SLUICE_ITEST_CHILD_CONSUMER"

// childConf is what the child needs to join its group.
type childConf struct {
	Addr string    `json:"addr"`
	Conf groupConf `json:"conf"`
}

// runChildConsumer is the child process's main.
func runChildConsumer(env string) int {
	var cc childConf
	if err := json.Unmarshal([]byte(env), &cc); err != nil {
		fmt.Fprintln(os.Stderr, "child consumer: bad config:", err)
		return 2
	}
	var (
		mu    sync.Mutex
		owned = map[int32]bool{}
	)
	report := func(cl *kgo.Client) {
		id, _ := cl.GroupMetadata()
		parts := make([]int32, 0, len(owned))
		for p := range owned {
			parts = append(parts, p)
		}
		fmt.Printf("member=%s owned=%s\n", id, joinParts(parts))
	}
	change := func(add bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range m[cc.Conf.Topic] {
				if add {
					owned[p] = true
				} else {
					delete(owned, p)
				}
			}
			report(cl)
		}
	}
	opts := append(baseClientOpts(cc.Addr), cc.Conf.opts()...)
	opts = append(opts,
		kgo.OnPartitionsAssigned(change(true)),
		kgo.OnPartitionsRevoked(change(false)),
		kgo.OnPartitionsLost(change(false)),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child consumer:", err)
		return 2
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		// The test is done with us (or gone): exit without leaving.
		os.Exit(0)
	}()
	for {
		fs := cl.PollFetches(context.Background())
		if fs.IsClientClosed() {
			return 0
		}
	}
}

// childMember is a group member running in a child process.
type childMember struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}

	mu       sync.Mutex
	memberID string
	owned    []int32
	stderr   bytes.Buffer
}

func startChildMember(t *testing.T, addr, name string, conf groupConf) *childMember {
	t.Helper()
	env, err := json.Marshal(childConf{Addr: addr, Conf: conf})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childConsumerEnv+"="+string(env))
	c := &childMember{t: t, name: name, cmd: cmd, done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = lockedWriter{&c.mu, &c.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting child consumer: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			id, rest, ok := strings.Cut(strings.TrimPrefix(line, "member="), " owned=")
			if !ok {
				continue
			}
			parts, err := parseParts(rest)
			if err != nil {
				continue
			}
			c.mu.Lock()
			c.memberID, c.owned = id, parts
			c.mu.Unlock()
		}
		_ = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.Kill()
		if t.Failed() {
			c.mu.Lock()
			t.Logf("child consumer %s stderr:\n%s", name, c.stderr.String())
			c.mu.Unlock()
		}
	})
	return c
}

// Kill SIGKILLs the child and waits until it is gone: it sends no
// LeaveGroup and no further heartbeat.
func (c *childMember) Kill() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Kill()
	_ = c.stdin.Close()
	<-c.done
}

func (c *childMember) Name() string { return c.name }

func (c *childMember) MemberID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.memberID
}

func (c *childMember) Owned() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int32(nil), c.owned...)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// joinParts formats partitions ascending, comma separated.
func joinParts(ps []int32) string {
	ps = append([]int32(nil), ps...)
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}

func parseParts(s string) ([]int32, error) {
	if s == "" {
		return nil, nil
	}
	var out []int32
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		out = append(out, int32(p))
	}
	return out, nil
}

// baseClientOpts are newClient's options, for clients made without a
// testing.T.
func baseClientOpts(addr string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.DialTimeout(5 * time.Second),
		kgo.RetryTimeout(15 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}
}
