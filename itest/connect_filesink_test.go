package itest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// filesinkFile is one committed file of the file sink.
type filesinkFile struct {
	name       string
	partition  int
	start, end int64
}

// filesinkFinal lists the committed files in dir by partition, in offset
// order, and counts the temp files.
func filesinkFinal(t *testing.T, dir, topic string) (map[int][]filesinkFile, int) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]filesinkFile{}
	temps := 0
	for _, e := range es {
		if strings.HasSuffix(e.Name(), ".tmp") {
			temps++
			continue
		}
		var f filesinkFile
		if _, err := fmt.Sscanf(strings.TrimPrefix(e.Name(), topic+"-"), "%d-%d-%d.ndjson", &f.partition, &f.start, &f.end); err != nil {
			t.Fatalf("unexpected file %s: %v", e.Name(), err)
		}
		f.name = e.Name()
		out[f.partition] = append(out[f.partition], f)
	}
	for _, fs := range out {
		sort.Slice(fs, func(i, j int) bool { return fs[i].start < fs[j].start })
	}
	return out, temps
}

// filesinkCount is how many records the committed files name.
func filesinkCount(t *testing.T, dir, topic string) int64 {
	files, _ := filesinkFinal(t, dir, topic)
	var n int64
	for _, fs := range files {
		for _, f := range fs {
			n += f.end - f.start + 1
		}
	}
	return n
}

// While records flow into a two-partition topic, the plugin is killed
// with SIGKILL (the worker restarts it) and the worker itself is killed
// and started again, a few times: in the end the committed files hold
// every record exactly once, in offset order, each file holding just the
// offsets its name says.
func TestConnectFileSinkExactlyOnceThroughKills(t *testing.T) {
	const parts = 2
	b := startBroker(t, "std", t.TempDir())
	createTopic(t, b.Addr(), "clicks", parts, nil)
	cl := newClient(t, b.Addr())
	dir := filepath.Join(t.TempDir(), "out")
	plugins := connectPlugins(t)
	w := startWorker(t, b.Addr(), plugins)
	var info map[string]any
	if code := w.call("POST", "/connectors", map[string]any{"name": "clicks-files", "config": map[string]string{
		"connector.class": "sluice.connect.FileSink", "tasks.max": "2", "topics": "clicks",
		"value.converter": "org.apache.kafka.connect.storage.StringConverter",
		"directory":       dir, "format": "ndjson", "record.fields": "offset", "flush.size": "150",
	}}, &info); code != 201 {
		t.Fatalf("POST /connectors: %d %v", code, info)
	}
	// Records flow until the kills are over, so that every kill lands
	// mid-stream; n is how many each partition got.
	stop, produced := make(chan struct{}), make(chan int64, 1)
	var stopOnce sync.Once
	finish := func() int64 {
		stopOnce.Do(func() { close(stop) })
		n := <-produced
		produced <- n
		return n
	}
	t.Cleanup(func() { finish() })
	go func() {
		i := int64(0)
		defer func() { produced <- i }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var recs []*kgo.Record
			for j := i; j < i+50; j++ {
				for p := 0; p < parts; p++ {
					recs = append(recs, &kgo.Record{Topic: "clicks", Partition: int32(p), Value: []byte(fmt.Sprintf(`{"p":%d,"i":%d}`, p, j))})
				}
			}
			if err := cl.ProduceSync(testCtx(t, 30*time.Second), recs...).FirstErr(); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			i += 50
			time.Sleep(100 * time.Millisecond)
		}
	}()
	kills := 0
	t0 := time.Now()
	for round := 1; round <= 3; round++ {
		// Kill mid-stream: once the plugin runs and has committed more.
		base := int64(0)
		if _, err := os.Stat(dir); err == nil {
			base = filesinkCount(t, dir, "clicks")
		}
		waitFor(t, 60*time.Second, fmt.Sprintf("round %d: the plugin committing records", round), func() bool {
			_, err := os.Stat(dir)
			return err == nil && len(pluginPids(plugins)) > 0 && filesinkCount(t, dir, "clicks") >= base+300
		})
		t.Logf("round %d at %v: %d records committed", round, time.Since(t0), filesinkCount(t, dir, "clicks"))
		for _, pid := range pluginPids(plugins) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			kills++
		}
		if round == 2 {
			// And the worker: its successor resumes from the files.
			time.Sleep(300 * time.Millisecond)
			w.kill9()
			w = startWorker(t, b.Addr(), plugins)
		}
	}
	n := finish()
	t.Logf("produced at %v", time.Since(t0))
	waitFor(t, 90*time.Second, "the last record of each partition committed", func() bool {
		files, _ := filesinkFinal(t, dir, "clicks")
		for p := 0; p < parts; p++ {
			if fs := files[p]; len(fs) == 0 || fs[len(fs)-1].end < n-1 {
				return false
			}
		}
		return true
	})
	t.Logf("all committed at %v", time.Since(t0))
	files, temps := filesinkFinal(t, dir, "clicks")
	nfiles := 0
	for p := 0; p < parts; p++ {
		next := int64(0)
		for _, f := range files[p] {
			nfiles++
			if f.start != next {
				t.Fatalf("partition %d: %s starts at %d, want %d (a gap or an overlap)", p, f.name, f.start, next)
			}
			b, err := os.ReadFile(filepath.Join(dir, f.name))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
				var l struct {
					Offset int64
					Value  struct{ P, I int64 }
				}
				if err := json.Unmarshal([]byte(line), &l); err != nil {
					t.Fatalf("%s: line %q: %v", f.name, line, err)
				}
				if l.Offset != next || l.Value.I != next || l.Value.P != int64(p) {
					t.Fatalf("%s: line %q where offset %d of partition %d belongs", f.name, line, next, p)
				}
				next++
			}
			if next != f.end+1 {
				t.Fatalf("%s holds offsets up to %d, its name says %d", f.name, next-1, f.end)
			}
		}
		if next != n {
			t.Fatalf("partition %d: %d records committed, want %d", p, next, n)
		}
	}
	t.Logf("%d records per partition in %d files after %d plugin kills and a worker kill; %d temp files now", n, nfiles, kills, temps)
	waitFor(t, 30*time.Second, "both tasks RUNNING", func() bool {
		st := w.taskStates("clicks-files")
		return len(st) == 2 && st[0] == "RUNNING" && st[1] == "RUNNING"
	})
}
