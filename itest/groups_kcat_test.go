package itest

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testkit"
)

// kcatConsumer is one `kcat -G` (librdkafka's balanced KafkaConsumer)
// process, with what it printed.
type kcatConsumer struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu      sync.Mutex
	records [][3]string // partition, offset, key
	stderr  bytes.Buffer
	exitErr error
}

func startKcatConsumer(t *testing.T, bin, addr, group, topic, name string) *kcatConsumer {
	t.Helper()
	cmd := exec.Command(bin, "-b", addr, "-G", group, "-u", "-q",
		"-X", "auto.offset.reset=earliest",
		"-X", "enable.auto.commit=true",
		"-X", "auto.commit.interval.ms=500",
		"-X", "session.timeout.ms=10000",
		"-X", "heartbeat.interval.ms=500",
		"-X", "client.id="+name,
		"-f", `%p %o %k\n`,
		topic)
	k := &kcatConsumer{name: name, cmd: cmd, done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = lockedWriter{&k.mu, &k.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting kcat: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 {
				continue
			}
			k.mu.Lock()
			k.records = append(k.records, [3]string{f[0], f[1], f[2]})
			k.mu.Unlock()
		}
		err := cmd.Wait()
		k.mu.Lock()
		k.exitErr = err
		k.mu.Unlock()
		close(k.done)
	}()
	t.Cleanup(func() {
		select {
		case <-k.done:
		default:
			_ = cmd.Process.Kill()
			<-k.done
		}
		if t.Failed() {
			k.mu.Lock()
			t.Logf("kcat %s stderr:\n%s", name, k.stderr.String())
			k.mu.Unlock()
		}
	})
	return k
}

// Stop asks kcat to finish (SIGTERM: it closes the consumer, which commits
// and leaves the group) and waits for it, failing if it does not exit.
func (k *kcatConsumer) Stop(t *testing.T) {
	t.Helper()
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("kcat %s did not exit within 30s of SIGTERM", k.name)
	}
}

func (k *kcatConsumer) Records() [][3]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([][3]string(nil), k.records...)
}

// TestKcatBalancedGroup: two `kcat -G` consumers (librdkafka's classic
// group protocol, its own assignor) split a topic's partitions between
// them, together consume every record exactly once, and commit their
// offsets, which the broker then reports to OffsetFetch.
func TestKcatBalancedGroup(t *testing.T) {
	kcat := kcatBin(t)
	b := startBroker(t, "std", t.TempDir(), groupBrokerSets()...)
	adm := admin(t, b.Addr())
	const topic, group, nparts, n = "kcat-group", "kcat-group", 6, 600
	createTopic(t, b.Addr(), topic, nparts, nil)

	k1 := startKcatConsumer(t, kcat, b.Addr(), group, topic, "kcat-1")
	k2 := startKcatConsumer(t, kcat, b.Addr(), group, topic, "kcat-2")
	// librdkafka's join takes a few seconds; wait until the group is
	// stable with both members splitting the partitions.
	var last string
	if !testkit.Poll(60*time.Second, func() bool {
		v, err := describeGroup(adm, group, topic, false)
		if err != nil {
			last = err.Error()
			return false
		}
		last = v.String()
		if v.state != "Stable" || len(v.assigned) != 2 || v.protocol == "" {
			return false
		}
		seen := map[int32]int{}
		for _, ps := range v.assigned {
			if len(ps) != nparts/2 {
				return false
			}
			for _, p := range ps {
				seen[p]++
			}
		}
		for p := range int32(nparts) {
			if seen[p] != 1 {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("the two kcat consumers never split %d partitions evenly: %s", nparts, last)
	}
	t.Logf("group: %s", last)

	want := produceKeyed(t, b.Addr(), topic, "kcat", n, nparts)
	if !testkit.Poll(60*time.Second, func() bool { return len(k1.Records())+len(k2.Records()) >= n }) {
		t.Fatalf("kcat consumed %d+%d of %d records", len(k1.Records()), len(k2.Records()), n)
	}
	time.Sleep(time.Second) // auto commit interval, and room for a stray duplicate
	k1.Stop(t)
	k2.Stop(t)

	seen := map[string]string{} // "p/o" → consumer
	parts := map[string]map[string]bool{}
	for _, k := range []*kcatConsumer{k1, k2} {
		parts[k.name] = map[string]bool{}
		for _, r := range k.Records() {
			at := r[0] + "/" + r[1]
			if who, dup := seen[at]; dup {
				t.Errorf("partition %s offset %s consumed by %s and %s", r[0], r[1], who, k.name)
			}
			seen[at] = k.name
			parts[k.name][r[0]] = true
			p, _ := strconv.Atoi(r[0])
			off, _ := strconv.Atoi(r[1])
			if ks := want[int32(p)]; off >= len(ks) || ks[off] != r[2] {
				t.Errorf("%s consumed partition %s offset %s key %s, which was not produced there", k.name, r[0], r[1], r[2])
			}
		}
		if len(parts[k.name]) == 0 {
			t.Errorf("%s consumed nothing", k.name)
		}
	}
	for p := range parts["kcat-1"] {
		if parts["kcat-2"][p] {
			t.Errorf("both kcat consumers consumed partition %s", p)
		}
	}
	if len(seen) != n {
		t.Errorf("kcat consumed %d distinct records, want %d", len(seen), n)
	}
	t.Logf("kcat-1 consumed %d records from partitions %v, kcat-2 %d from %v",
		len(k1.Records()), keysOf(parts["kcat-1"]), len(k2.Records()), keysOf(parts["kcat-2"]))

	ends := endOffsets(t, b.Addr(), topic)
	got := fetchCommitted(t, adm, group, topic)
	for p, end := range ends {
		if got[p].At != end {
			t.Errorf("kcat committed %s, want every partition at its end %v", committedString(got), ends)
			break
		}
	}
	ls := listGroups(t, adm)
	if lg, ok := ls[group]; !ok || lg.State != "Empty" {
		t.Errorf("after both kcat consumers left, ListGroups shows %s as %+v (present %v), want an Empty group", group, lg, ok)
	} else {
		t.Logf("ListGroups: %+v", lg)
	}
}

func keysOf(m map[string]bool) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return fmt.Sprint(ks)
}
