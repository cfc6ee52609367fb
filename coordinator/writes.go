package coordinator

// Group writes leave the group's lock for their append. An operation
// decides under e.mu what to write and queues it (enqueue); it then
// releases the lock with release, which appends the queue outside the lock
// (unless another goroutine already is) and waits for its own write. Each
// write's apply runs under e.mu once its append returned, so memory changes
// only after the log accepted the change (or, failing, is left as it was).
//
// The queue is what keeps the log in the order the group's operations were
// decided: a group's writes are appended one at a time, in queue order, by
// one goroutine at a time, and applied in that order. Reads (OffsetFetch,
// DescribeGroups) and operations that write nothing (a heartbeat that
// changes nothing) take the lock only briefly and never wait for an append
// that is not theirs to depend on.

// write is one queued append of a group's records.
type write struct {
	recs  []Record        // may be empty: a point in the order, to wait for
	apply func(err error) // under e.mu after the append; may be nil
	err   error           // the append's; read after done
	done  chan struct{}   // closed once applied
}

// enqueue queues recs for the group's partition. The caller holds e.mu and
// must then call release (or be inside one, as apply callbacks are).
func (c *Coordinator) enqueue(e *entry, recs []Record, apply func(error)) *write {
	w := &write{recs: recs, apply: apply, done: make(chan struct{})}
	e.queue = append(e.queue, w)
	return w
}

// release unlocks e.mu and returns once w (nil: nothing) is applied. If
// writes are queued and nobody is appending them, this goroutine does:
// each batch is taken under the lock, appended outside it, and applied
// under it, until the queue is empty.
func (c *Coordinator) release(e *entry, w *write) error {
	if e.writing || len(e.queue) == 0 {
		e.mu.Unlock()
		if w == nil {
			return nil
		}
		<-w.done
		return w.err
	}
	e.writing = true
	for len(e.queue) > 0 {
		batch := e.queue
		e.queue = nil
		e.mu.Unlock()
		for _, q := range batch {
			if len(q.recs) > 0 {
				q.err = c.log.Append(e.partition, q.recs)
			}
		}
		e.mu.Lock()
		for _, q := range batch {
			if q.apply != nil {
				q.apply(q.err)
			}
			if e.stateWrite == q {
				e.stateWrite = nil
			}
			if e.deleting == q {
				e.deleting = nil
			}
			close(q.done)
		}
	}
	e.writing = false
	e.mu.Unlock()
	if w == nil {
		return nil
	}
	<-w.done // applied above, or by the goroutine that was appending
	return w.err
}
