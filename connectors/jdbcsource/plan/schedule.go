package plan

import (
	"sort"
	"time"
)

// Schedule says which of a task's tables to query next: each is queried
// every poll.interval.ms, except that one whose last query may have left
// rows behind (a full batch) is due again at once, after the other tables
// already due, so one busy table does not starve the rest.
type Schedule struct {
	Interval time.Duration
	entries  map[string]*entry
	seq      uint64
}

type entry struct {
	next time.Time
	seq  uint64 // ties on next: the one that waited longest first
}

// Set makes the schedule hold exactly keys: new keys are due at now,
// keys no longer listed are dropped, the others keep their time.
func (s *Schedule) Set(keys []string, now time.Time) {
	if s.entries == nil {
		s.entries = map[string]*entry{}
	}
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
		if _, ok := s.entries[k]; !ok {
			s.seq++
			s.entries[k] = &entry{next: now, seq: s.seq}
		}
	}
	for k := range s.entries {
		if !want[k] {
			delete(s.entries, k)
		}
	}
}

// Keys lists the scheduled keys, sorted.
func (s *Schedule) Keys() []string {
	out := make([]string, 0, len(s.entries))
	for k := range s.entries {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Next is the key due first and how long until it is due (0 or less:
// now); ok is false when nothing is scheduled.
func (s *Schedule) Next(now time.Time) (key string, wait time.Duration, ok bool) {
	var best *entry
	for k, e := range s.entries {
		if best == nil || e.next.Before(best.next) || (e.next.Equal(best.next) && e.seq < best.seq) {
			best, key = e, k
		}
	}
	if best == nil {
		return "", 0, false
	}
	return key, best.next.Sub(now), true
}

// Done records that key was queried at now: due again at once when more
// rows may be waiting, else after the interval.
func (s *Schedule) Done(key string, now time.Time, more bool) {
	e, ok := s.entries[key]
	if !ok {
		return
	}
	s.seq++
	e.seq = s.seq
	if more {
		e.next = now
	} else {
		e.next = now.Add(s.Interval)
	}
}
