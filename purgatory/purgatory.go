// Package purgatory holds requests that cannot be answered yet: a long-poll
// fetch waiting for min_bytes, and later a produce waiting for acks=all or a
// coordinator write waiting for its append. It follows Kafka's
// DelayedOperationPurgatory: an operation watches keys (a topic-partition),
// has a deadline, and completes exactly once, either when Check on one of
// its keys finds it can (its tryComplete says so) or when the deadline
// passes; its onComplete callback runs then, and it leaves every watch list.
//
// The package does no I/O and reads no clock: expiry goes through a Clock,
// so tests drive time by hand.
package purgatory

import (
	"sync"
	"time"
)

// Clock schedules expiry. AfterFunc runs f after d, on its own goroutine,
// unless the returned stop is called first.
type Clock interface {
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// realClock is time.AfterFunc.
type realClock struct{}

func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Op is one delayed operation. Build it with NewOp, hand it to
// Purgatory.TryCompleteElseWatch, and end it early with ForceComplete.
type Op struct {
	try      func() bool
	finish   func(expired bool)
	mu       sync.Mutex // held while try runs and while the fields below change
	done     bool
	stop     func() bool // the expiry timer, once armed
	unwatch  func()      // leaves the watch lists, once watched
	watching bool
}

// NewOp returns an operation. tryComplete reports whether the operation can
// complete now; it runs under the operation's lock, so never concurrently
// with itself, and must not call back into the purgatory. onComplete runs
// exactly once, outside that lock, after the operation left every watch
// list; expired says the deadline (not tryComplete or ForceComplete) ended it.
func NewOp(tryComplete func() bool, onComplete func(expired bool)) *Op {
	return &Op{try: tryComplete, finish: onComplete}
}

// ForceComplete completes the operation now, whatever tryComplete would say
// (a client went away, the broker is stopping). It reports whether this
// call completed it; false means something else already did (or is doing so).
func (o *Op) ForceComplete() bool { return o.complete(false, false) }

// Completed reports whether the operation has completed.
func (o *Op) Completed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.done
}

// complete ends the operation if it has not ended: after a successful
// tryComplete when check is set, unconditionally otherwise.
func (o *Op) complete(check, expired bool) bool {
	o.mu.Lock()
	if o.done || (check && !o.try()) {
		o.mu.Unlock()
		return false
	}
	o.done = true
	stop, unwatch := o.stop, o.unwatch
	o.mu.Unlock()
	if stop != nil {
		stop()
	}
	if unwatch != nil {
		unwatch()
	}
	o.finish(expired)
	return true
}

// Purgatory holds operations watching keys of type K. The zero value is
// ready to use and expires operations on the wall clock.
type Purgatory[K comparable] struct {
	clock    Clock
	mu       sync.Mutex
	watchers map[K]map[*Op]struct{}
}

// New returns a purgatory whose deadlines run on clock (nil: the wall
// clock).
func New[K comparable](clock Clock) *Purgatory[K] {
	return &Purgatory[K]{clock: clock}
}

// TryCompleteElseWatch completes op at once if it can; otherwise it puts op
// on the watch list of every key and arms its deadline, timeout from now.
// It reports whether op completed during the call. As in Kafka, op is tried
// again after it is watched, so a Check that ran between the first try and
// the watch is not lost.
func (p *Purgatory[K]) TryCompleteElseWatch(op *Op, timeout time.Duration, keys []K) bool {
	if op.complete(true, false) {
		return true
	}
	if timeout <= 0 {
		op.complete(false, true)
		return true
	}
	op.mu.Lock()
	if op.watching {
		op.mu.Unlock()
		panic("purgatory: an operation was watched twice")
	}
	op.watching = true
	if op.done {
		op.mu.Unlock()
		return true
	}
	op.unwatch = func() { p.remove(op, keys) }
	op.mu.Unlock()

	p.add(op, keys)
	if op.Completed() {
		// Completed (ForceComplete) while being added: its unwatch may
		// have run before add; run it again.
		p.remove(op, keys)
		return true
	}
	if op.complete(true, false) {
		return true
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.done {
		return true
	}
	clock := p.clock
	if clock == nil {
		clock = realClock{}
	}
	op.stop = clock.AfterFunc(timeout, func() { op.complete(false, true) })
	return false
}

// Check tries to complete every operation watching key and returns how many
// it completed. Call it after anything that may let a watcher of key finish
// (an append, a moved high watermark or log start, a deleted partition).
func (p *Purgatory[K]) Check(key K) int {
	p.mu.Lock()
	set := p.watchers[key]
	if len(set) == 0 {
		p.mu.Unlock()
		return 0
	}
	ops := make([]*Op, 0, len(set))
	for op := range set {
		ops = append(ops, op)
	}
	p.mu.Unlock()
	n := 0
	for _, op := range ops {
		if op.complete(true, false) {
			n++
		}
	}
	return n
}

// Watching returns how many operations watch key (completed ones never
// do).
func (p *Purgatory[K]) Watching(key K) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.watchers[key])
}

// Keys returns how many keys have watchers.
func (p *Purgatory[K]) Keys() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.watchers)
}

func (p *Purgatory[K]) add(op *Op, keys []K) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.watchers == nil {
		p.watchers = map[K]map[*Op]struct{}{}
	}
	for _, k := range keys {
		set := p.watchers[k]
		if set == nil {
			set = map[*Op]struct{}{}
			p.watchers[k] = set
		}
		set[op] = struct{}{}
	}
}

// remove takes op off the watch lists of keys, dropping lists left empty
// so that keys nobody watches cost nothing.
func (p *Purgatory[K]) remove(op *Op, keys []K) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		if set := p.watchers[k]; set != nil {
			delete(set, op)
			if len(set) == 0 {
				delete(p.watchers, k)
			}
		}
	}
}
