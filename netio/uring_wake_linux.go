//go:build linux

package netio

import (
	"errors"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// How a ring sleeps and is woken; see "Waiting and wake-ups" at the top of
// uring_linux.go.

// post queues m for the ring and wakes it if it is asleep waiting for
// its eventfd. Only the first such post writes the eventfd, so a burst
// costs one wake-up, and posts to a ring that is awake cost none: the ring
// drains its inbox before it goes to sleep again (see wait). A msgSent (a
// slot freed by a direct send) wakes the ring only if it waits for slots;
// otherwise it is handled at the next wake-up. needWake is read under mu
// so that it cannot be stale with respect to the ring's decision to sleep.
func (r *uRing) post(m ringMsg) {
	r.mu.Lock()
	r.inbox = append(r.inbox, m)
	wake := r.sleeping && (m.kind != msgSent || m.c.direct.needWake.Load())
	if wake {
		r.sleeping = false
	}
	r.mu.Unlock()
	if wake {
		r.wake()
	}
}

func (r *uRing) wake() {
	var one [8]byte
	*(*uint64)(unsafe.Pointer(&one[0])) = 1
	for {
		// Cannot block: the counter would need 2^64-2 pending wake-ups.
		if _, err := unix.Write(r.evfd, one[:]); err != unix.EINTR {
			break
		}
	}
}

// wait submits what was prepared, runs completion work, and, if that
// produced no completion and no message arrived, sleeps until the eventfd
// is signalled. It sleeps in Go's poller rather than in io_uring_enter:
// a goroutine blocked in a system call keeps its P until sysmon takes it
// back (20 µs or more), so the processor goroutines the ring just made
// runnable would wait behind it; a goroutine parked in the poller gives
// its P up at once.
//
// Setting sleeping under mu with the inbox seen empty is what makes
// skipping the eventfd write in post safe: a post either lands before the
// check (and is drained) or sees sleeping and writes the eventfd. A
// completion arriving after the check signals the eventfd too, whose
// counter keeps the signal until it is read.
func (r *uRing) wait() {
	r.mu.Lock()
	busy := len(r.inbox) > 0
	r.sleeping = !busy
	r.mu.Unlock()
	r.enter()
	if busy || r.ring.CQReady() > 0 {
		r.mu.Lock()
		r.sleeping = false
		r.mu.Unlock()
		return
	}
	var buf [8]byte
	// A deadline is set only by the wake-up self-test, which bounds its
	// wait with it.
	if _, err := r.evf.Read(buf[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		r.e.log.Error("reading the ring's eventfd failed", "ring", r.idx, "err", err)
		time.Sleep(time.Millisecond) // do not spin on a persistent error
	}
	r.mu.Lock()
	r.sleeping = false
	r.mu.Unlock()
	// Deferred task work (what signalled the eventfd) posts its
	// completions only when this thread asks for events.
	r.enter()
}

// enter submits the prepared entries and runs pending completion work
// without waiting.
func (r *uRing) enter() {
	n, err := r.ring.SubmitAndGetEvents()
	r.submissions.Add(int64(n))
	if err != nil && !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.EAGAIN) {
		r.e.log.Error("io_uring_enter failed", "ring", r.idx, "err", err)
		time.Sleep(time.Millisecond) // do not spin on a persistent error
	}
}
