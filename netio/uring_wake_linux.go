//go:build linux

package netio

import (
	"errors"
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
	if r.block {
		r.waitBlocking()
		return
	}
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
	if _, err := r.evf.Read(buf[:]); err != nil {
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

// waitBlocking is wait for rings in a blocking mode: it sleeps inside
// io_uring_enter until a completion arrives, so the kernel wakes this
// thread directly. Waiting through the poller instead costs a hand-off per
// wake-up (netpoller thread, then the P to this locked thread), which on a
// small VM is most of an idle request's round trip. The price is that the
// P stays with this goroutine while it sleeps; the engine runs one ring
// fewer than GOMAXPROCS so goroutines it made runnable find a free P. Posts
// write the eventfd, on which a multishot poll (armWakePoll) completes.
func (r *uRing) waitBlocking() {
	r.mu.Lock()
	busy := len(r.inbox) > 0
	r.sleeping = !busy
	r.mu.Unlock()
	if busy {
		r.enter()
	} else {
		n, err := r.ring.SubmitAndWait(1)
		r.submissions.Add(int64(n))
		if err != nil && !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.ETIME) {
			r.e.log.Error("io_uring_enter failed", "ring", r.idx, "err", err)
			time.Sleep(time.Millisecond) // do not spin on a persistent error
		}
	}
	r.mu.Lock()
	r.sleeping = false
	r.mu.Unlock()
}

// armWakePoll arms a multishot poll for input on the eventfd, so that a
// post completes it and wakes a ring blocked in waitBlocking.
func (r *uRing) armWakePoll() {
	s := r.sqe()
	s.PreparePollMultishot(r.evfd, unix.POLLIN)
	s.UserData = userData(0, opWake)
	r.pending++
}

// completeWakePoll resets the eventfd after a wake-up and re-arms the poll
// if the kernel ended it.
func (r *uRing) completeWakePoll(more bool) {
	r.drainEventfd()
	if !more && !r.exiting {
		r.armWakePoll()
	}
}
