package replicamgr

import (
	"sync"
	"time"

	"github.com/sluice-io/sluice/replica"
)

// The periodic work on replicas: flushing those whose flush.ms passed
// (every log.flush.scheduler.interval.ms), time-based rolls and retention
// (every log.retention.check.interval.ms) and producer-id expiry (every
// minute).
// When a task is due is decided on the manager's clock, so a test with a
// fake clock moves it and calls RunDue; Run only wakes RunDue up.

// task is one periodic job.
type task struct {
	every time.Duration
	next  time.Time // zero until armed by the first RunDue
	run   func(now time.Time)
}

// schedule is the manager's periodic jobs; mu is held while they run, so
// RunDue from a test and Run's goroutine never overlap.
type schedule struct {
	mu        sync.Mutex
	tasks     []*task
	lastFlush map[*replica.Partition]time.Time // under mu
}

func newSchedule(m *Manager) *schedule {
	s := &schedule{}
	add := func(every time.Duration, run func(time.Time)) {
		if every > 0 { // as a ticker: an interval <= 0 turns the task off
			s.tasks = append(s.tasks, &task{every: every, run: run})
		}
	}
	add(time.Duration(m.cfg.FlushSchedulerIntervalMs)*time.Millisecond, func(now time.Time) { m.flushDue(s, now) })
	add(time.Duration(m.cfg.RetentionCheckIntervalMs)*time.Millisecond, func(time.Time) { m.applyRetention() })
	add(time.Minute, func(time.Time) { m.expireProducers() })
	// Kafka's isr-expiration task: out-of-sync followers leave the ISR
	// within 1 to 1.5 replica.lag.time.max.ms.
	add(time.Duration(m.cfg.ReplicaLagTimeMaxMs/2)*time.Millisecond, func(time.Time) { m.tickReplications() })
	add(time.Duration(m.cfg.ReplicaHighWatermarkCheckpointIntervalMs)*time.Millisecond, func(time.Time) { m.checkpointHighWatermarks() })
	return s
}

// RunDue runs the periodic tasks that are due by the manager's clock and
// returns how long until the next one is (0 when there is none). A task
// is due one interval after the previous run, or after the first call
// (which arms them), as a ticker started then would fire; a clock that
// jumped several intervals runs it once, as a ticker drops ticks.
func (m *Manager) RunDue() time.Duration {
	s := m.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	now := m.now()
	var wait time.Duration
	for _, t := range s.tasks {
		switch {
		case t.next.IsZero():
			t.next = now.Add(t.every)
		case !now.Before(t.next):
			t.run(now)
			t.next = now.Add(t.every)
		}
		if d := t.next.Sub(now); wait == 0 || d < wait {
			wait = d
		}
	}
	return wait
}

// Run calls RunDue whenever the next task is due by the manager's clock,
// until stop is closed. On a fake clock the wake-ups come when the test
// moves it.
func (m *Manager) Run(stop <-chan struct{}) {
	due := make(chan struct{}, 1)
	for {
		wait := m.RunDue()
		if wait <= 0 {
			return // no task scheduled
		}
		disarm := m.clock.AfterFunc(wait, func() {
			select {
			case due <- struct{}{}:
			default:
			}
		})
		select {
		case <-stop:
			disarm()
			return
		case <-due:
		}
	}
}

// flushDue fsyncs replicas whose flush.ms has elapsed since this task last
// flushed them (or first saw them).
func (m *Manager) flushDue(s *schedule, now time.Time) {
	live := map[*replica.Partition]time.Time{}
	for _, t := range m.Topics() {
		for _, sp := range t.Partitions {
			p := sp.Replica
			if p == nil {
				continue
			}
			last, seen := s.lastFlush[p]
			if !seen {
				last = now
			}
			live[p] = last
			if t.Config.FlushMs <= 0 || t.Config.FlushMs == maxLong || now.Sub(last) < time.Duration(t.Config.FlushMs)*time.Millisecond {
				continue
			}
			if err := p.Flush(); err != nil {
				m.logger.Error("flush", "topic", t.Name, "partition", sp.Index, "err", err)
				continue
			}
			live[p] = now
		}
	}
	s.lastFlush = live
}

// applyRetention rolls active segments that reached segment.ms without an
// append to do it, then deletes what retention.ms and retention.bytes
// allow, as Kafka's retention task does.
func (m *Manager) applyRetention() {
	m.eachReplica(func(t *Topic, p *replica.Partition) {
		if _, err := p.RollIfDue(); err != nil {
			m.logger.Error("rolling a segment at segment.ms", "topic", t.Name, "partition", p.Index(), "err", err)
		}
		n, err := p.ApplyRetention()
		if err != nil {
			m.logger.Error("retention", "topic", t.Name, "partition", p.Index(), "err", err)
		} else if n > 0 {
			m.logger.Info("retention deleted segments", "topic", t.Name, "partition", p.Index(), "segments", n, "log_start_offset", p.LogStartOffset())
		}
	})
}

func (m *Manager) expireProducers() {
	m.eachReplica(func(_ *Topic, p *replica.Partition) { p.ExpireProducers() })
}
