package replicamgr

import (
	"fmt"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
)

// Replicas an image adds are opened on several goroutines, and a crash
// right after the create, before any flush, loses nothing: every replica
// opens again, empty, and none is offline or set aside. Records that were
// flushed before a second crash are all there after it, in every
// partition, and Load (parallel too) opens each where it was.
func TestCreateManyPartitionsThenCrash(t *testing.T) {
	const n = 60
	c := newCluster(t)
	var rs [][]int32
	for i := range n {
		if i%2 == 0 {
			rs = append(rs, []int32{1, 2})
		} else {
			rs = append(rs, []int32{2, 1})
		}
	}
	c.createTopic("t", nil, rs...)
	c.apply()
	c.fs.Crash()

	m := c.newManager()
	if err := m.Load(c.meta.Image()); err != nil {
		t.Fatal(err)
	}
	tp := m.Topic("t")
	for i, p := range tp.Partitions {
		if p.Replica == nil || p.Offline != nil || p.Replica.LogEndOffset() != 0 {
			t.Fatalf("partition %d after a crash right after its create: replica %v offline %v", i, p.Replica, p.Offline)
		}
	}
	c.m = m
	for i := 0; i < n; i += 2 { // the ones this node leads
		c.produce("t", int32(i), fmt.Sprint("v", i), "w")
		r, _ := m.Leader("t", int32(i))
		if err := r.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	c.fs.Crash()

	m = c.newManager()
	if err := m.Load(c.meta.Image()); err != nil {
		t.Fatal(err)
	}
	for i, p := range m.Topic("t").Partitions {
		want := int64(0)
		if i%2 == 0 {
			want = 2
		}
		if p.Replica == nil || p.Replica.LogEndOffset() != want {
			t.Fatalf("partition %d: replica %v, want log end %d", i, p.Replica, want)
		}
		if p.Dir != "/data" {
			t.Fatalf("partition %d in %q", i, p.Dir)
		}
	}
	names, err := c.fs.ReadDir("/data")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if _, _, ok := ParseDirName(name); !ok {
			t.Fatalf("unexpected entry %q in the log dir (a stray?)", name)
		}
	}
}

// New partitions go to the log dir with the fewest entries, counted once
// per image rather than listed per partition: 40 new partitions over two
// empty log dirs land 20 in each, as when each was listed.
func TestParallelOpenSpreadsNewPartitionsOverLogDirs(t *testing.T) {
	c := newCluster(t, "log.dirs=/data,/data2")
	if err := c.fs.MkdirAll("/data2", 0o755); err != nil {
		t.Fatal(err)
	}
	c.m = c.newManager()
	var rs [][]int32
	for range 40 {
		rs = append(rs, []int32{1})
	}
	c.createTopic("t", nil, rs...)
	c.apply()
	per := map[string]int{}
	for _, p := range c.m.Topic("t").Partitions {
		if p.Replica == nil {
			t.Fatalf("partition %d not open", p.Index)
		}
		per[p.Dir]++
		if !c.exists(filepath.Join(p.Dir, DirName("t", p.Index), PartitionMetadataFile)) {
			t.Fatalf("partition %d has no %s in %s", p.Index, PartitionMetadataFile, p.Dir)
		}
	}
	if per["/data"] != 20 || per["/data2"] != 20 {
		t.Fatalf("partitions per log dir: %v, want 20 each", per)
	}
}

// forEach calls fn once for each index, on no more than ioWorkers
// goroutines at a time.
func TestForEachCallsEachIndexOnceBounded(t *testing.T) {
	for _, n := range []int{0, 1, 2, ioWorkers, 100} {
		var running, most atomic.Int32
		got := make([]int32, n)
		forEach(n, func(i int) {
			r := running.Add(1)
			for {
				m := most.Load()
				if r <= m || most.CompareAndSwap(m, r) {
					break
				}
			}
			atomic.AddInt32(&got[i], 1)
			running.Add(-1)
		})
		for i, g := range got {
			if g != 1 {
				t.Fatalf("n=%d: index %d called %d times", n, i, g)
			}
		}
		if most.Load() > ioWorkers {
			t.Fatalf("n=%d: %d calls at once, bound is %d", n, most.Load(), ioWorkers)
		}
	}
}

// Close closes every replica, in parallel, and reports the first
// failure in topic and partition order after trying them all.
func TestCloseClosesEveryReplica(t *testing.T) {
	c := newCluster(t)
	var rs [][]int32
	for range 30 {
		rs = append(rs, []int32{1})
	}
	c.createTopic("a", nil, rs...)
	c.createTopic("b", nil, rs...)
	c.apply()
	var names []string
	for _, tp := range c.m.Topics() {
		names = append(names, tp.Name)
	}
	if !sort.StringsAreSorted(names) || len(names) != 2 {
		t.Fatalf("topics %v", names)
	}
	if err := c.m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tp := range c.m.Topics() {
		for _, p := range tp.Partitions {
			if _, err := p.Replica.Append(nil); err == nil {
				t.Fatalf("%s-%d still takes appends after Close", tp.Name, p.Index)
			}
		}
	}
}
