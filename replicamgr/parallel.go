package replicamgr

import (
	"sync"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/replica"
)

// ioWorkers bounds how many replicas are opened, closed or given a new
// role at once, as Kafka's num.recovery.threads.per.data.dir does. The
// work is mostly fsyncs and small file operations that block in the
// kernel, not CPU, so more workers than cores pay off: concurrent fsyncs
// on one file system share journal commits. A broker with 10,000 replicas spent minutes
// opening and closing them one at a time, and seconds making a dead
// broker's 3,300 partitions led here (one epoch checkpoint each).
const ioWorkers = 8

// forEach calls fn(i) for i in [0, n) on at most ioWorkers goroutines and
// returns when all calls have. fn must be safe to run concurrently; the
// caller's locks are held throughout, so fn takes none of the manager's.
func forEach(n int, fn func(i int)) { forEachOn(n, ioWorkers, fn) }

// forEachOn is forEach on at most workers goroutines.
func forEachOn(n, workers int, fn func(i int)) {
	workers = min(n, workers)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// opened is what openReplica returned for one partition, opened ahead of
// planTopic.
type opened struct {
	dir     string
	replica *replica.Partition
	offline error
	err     error
}

type partitionKey struct {
	topic     controller.TopicID
	partition int32
}

// preOpen opens, on ioWorkers goroutines, the replicas planTopic will
// open for topics (those assigned to this node that it does not host
// yet), so that an image that adds thousands of replicas, or the Load at
// start-up, does not open them one after another. planTopic then takes
// each from the result (take) instead of opening it itself; whatever it
// did not take (a topic failed first) the caller closes (closeUntaken).
// admin is held.
func (m *Manager) preOpen(topics []*controller.Topic) map[partitionKey]*opened {
	type job struct {
		mt  *controller.Topic
		cfg config.Topic
		mp  controller.Partition
	}
	var jobs []job
	for _, mt := range topics {
		cfg, err := m.cfg.TopicConfig(mt.Configs)
		if err != nil {
			continue // planTopic fails the topic before opening any
		}
		old := m.Topic(mt.Name)
		for i, mp := range mt.Partitions {
			if m.roleOf(mp) == NotHosted {
				continue
			}
			if old != nil && i < len(old.Partitions) && old.Partitions[i].Role != NotHosted {
				continue // planTopic keeps the replica it has
			}
			jobs = append(jobs, job{mt, cfg, mp})
		}
	}
	if len(jobs) < 2 {
		return nil // nothing to gain: planTopic opens it itself
	}
	res := make([]opened, len(jobs))
	m.dirCounts.begin()
	forEach(len(jobs), func(i int) {
		j, r := jobs[i], &res[i]
		r.dir, r.replica, r.offline, r.err = m.openReplica(j.mt, j.cfg, j.mp)
	})
	m.dirCounts.end()
	out := make(map[partitionKey]*opened, len(jobs))
	for i, j := range jobs {
		out[partitionKey{j.mt.ID, j.mp.Index}] = &res[i]
	}
	return out
}

// take returns and forgets the replica preOpen opened for mp of mt, if it
// did.
func take(pre map[partitionKey]*opened, mt *controller.Topic, mp controller.Partition) (*opened, bool) {
	k := partitionKey{mt.ID, mp.Index}
	o, ok := pre[k]
	if ok {
		delete(pre, k)
	}
	return o, ok
}

// closeUntaken closes the replicas preOpen opened that planTopic did not
// take.
func (m *Manager) closeUntaken(pre map[partitionKey]*opened) {
	var ps []*replica.Partition
	for _, o := range pre {
		if o.replica != nil {
			ps = append(ps, o.replica)
		}
	}
	m.closeAll(ps, "closing a partition of a failed open")
}

// dirCounter remembers, while preOpen runs, how many entries each log
// dir has, so that choosing the log dir of each new partition (the one
// with the fewest, see partitionDir) lists each log dir once rather than
// once per partition: with 10,000 partitions in a log dir, listing it
// for each new one made creating them quadratic.
type dirCounter struct {
	mu     sync.Mutex
	counts map[string]int // nil when not counting: partitionDir lists
}

func (c *dirCounter) begin() {
	c.mu.Lock()
	c.counts = map[string]int{}
	c.mu.Unlock()
}

func (c *dirCounter) end() {
	c.mu.Lock()
	c.counts = nil
	c.mu.Unlock()
}

// pick returns the log dir with the fewest entries and counts the one
// about to be created in it. list lists a log dir.
func (c *dirCounter) pick(dirs []string, list func(dir string) int) string {
	if len(dirs) == 1 {
		return dirs[0]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	best, bestN := "", -1
	for _, dir := range dirs {
		n, ok := c.counts[dir]
		if !ok {
			n = list(dir)
			if c.counts != nil {
				c.counts[dir] = n
			}
		}
		if best == "" || n < bestN {
			best, bestN = dir, n
		}
	}
	if c.counts != nil {
		c.counts[best]++
	}
	return best
}
