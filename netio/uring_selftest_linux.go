//go:build linux

package netio

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// The wake-up self-test. Whether an idle ring hears about a socket
// completion at once depends on the kernel build, not only on its version:
// on some kernels a DEFER_TASKRUN ring's registered eventfd is written only
// after an RCU grace period when the completion comes from a socket's
// wake-up (about 15 ms on a 2-vCPU HZ=250 VM), so every request that reaches
// an idle ring waits that long. No flag or version check predicts it, so
// before the first ring starts the engine measures it: for each ring mode
// it arms a receive on a Unix socket pair (the same poll-driven wake-up path
// as TCP; NOP or TIMEOUT would signal inline and pass falsely), writes one
// byte from another goroutine and times how long the ring, waiting exactly
// as in production (uRing.wait), takes to see the completion. The same
// round trip through Go's poller (what the std engine waits on) is
// measured beside it as the yardstick.

// ringMode is one way to set a ring up.
type ringMode struct {
	name  string
	flags uint32
}

// ringModes in order of preference: DEFER_TASKRUN batches completion work
// into the ring's own enter calls and never interrupts the thread;
// COOP_TASKRUN runs it at the thread's next kernel transition, signalling
// the eventfd inline; no flags is what kernels before 5.19 accept.
var ringModes = []ringMode{
	{"defer", giouring.SetupSingleIssuer | giouring.SetupDeferTaskrun},
	{"coop", giouring.SetupSingleIssuer | giouring.SetupCoopTaskrun | giouring.SetupTaskrunFlag},
	{"plain", 0},
}

var wakeOnce = sync.OnceValue(runWakeSelfTest)

// UringWake runs the wake-up self-test once per process (the kernel does
// not change under a running process) and returns its result. It must only
// be called where UringSupported returned nil.
func UringWake() WakeReport { return wakeOnce() }

func runWakeSelfTest() WakeReport {
	w := WakeReport{Poller: pollerWake()}
	best := -1
	wakes := false
	for _, m := range ringModes {
		mw := ModeWake{Mode: m.name}
		mw.Median, mw.Misses, mw.Err = ringWake(m.flags)
		w.Modes = append(w.Modes, mw)
		if mw.passes(w.Poller) && !wakes {
			w.Chosen, wakes = m.name, true
		}
		if mw.Err == nil && (best < 0 || mw.Median < w.Modes[best].Median) {
			best = len(w.Modes) - 1
		}
	}
	if !wakes && best >= 0 {
		w.Chosen = w.Modes[best].Mode
	}
	if w.Chosen == "" {
		return w
	}
	w.RTTUring, w.RTTStd, w.RTTErr = compareRTT(modeFlags(w.Chosen))
	// Where the round trip could not be measured (no loopback), the
	// wake-up alone decides.
	w.Pass = wakes && (w.RTTErr != nil || rttAsGood(w.RTTUring, w.RTTStd))
	return w
}

// compareRTT measures the round trip through a std engine and a ring
// engine whose rings use flags.
func compareRTT(flags uint32) (uring, std time.Duration, err error) {
	cfg := Config{}.withDefaults()
	discard := slog.New(slog.DiscardHandler)
	if std, err = engineRTT(NewStdEngine(cfg, HandlerFunc(rttHandler), discard)); err != nil {
		return 0, 0, fmt.Errorf("std engine: %w", err)
	}
	e, err := newUringEngine(cfg, HandlerFunc(rttHandler), discard, flags)
	if err != nil {
		return 0, 0, err
	}
	if uring, err = engineRTT(e); err != nil {
		return 0, 0, fmt.Errorf("uring engine: %w", err)
	}
	return uring, std, nil
}

// modeFlags returns the setup flags of the ring mode named name.
func modeFlags(name string) uint32 {
	for _, m := range ringModes {
		if m.name == name {
			return m.flags
		}
	}
	return 0
}

// pollerWake measures the median time from a write on one end of a Unix
// socket pair to the wake-up of a goroutine reading the other end through
// Go's poller.
func pollerWake() time.Duration {
	sv, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	rf := os.NewFile(uintptr(sv[0]), "wake-test-read")
	defer rf.Close()
	defer unix.Close(sv[1])
	conn, err := net.FileConn(rf) // a dup, registered with the poller
	if err != nil {
		return 0
	}
	defer conn.Close()
	lat := make([]time.Duration, 0, wakeRounds)
	var buf [1]byte
	for range wakeRounds {
		sent := writeLater(sv[1])
		_ = conn.SetReadDeadline(time.Now().Add(wakeDeadline))
		_, err := conn.Read(buf[:])
		t1 := time.Now()
		t0 := <-sent
		if err != nil {
			lat = append(lat, wakeDeadline)
			continue
		}
		lat = append(lat, t1.Sub(t0))
	}
	return median(lat)
}

// writeLater writes one byte to fd after a millisecond, long enough for the
// reader to be asleep, and sends the time it wrote.
func writeLater(fd int) <-chan time.Time {
	sent := make(chan time.Time, 1)
	go func() {
		time.Sleep(time.Millisecond)
		t0 := time.Now()
		_, _ = unix.Write(fd, []byte{1})
		sent <- t0
	}()
	return sent
}

// ringWake sets up a ring with flags as the engine does and measures the
// median wake-up latency of a socket receive completion through the ring's
// own wait path.
func ringWake(flags uint32) (med time.Duration, misses int, err error) {
	type result struct {
		med    time.Duration
		misses int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		// Locked, and never unlocked: the ring is bound to this thread
		// (SINGLE_ISSUER), which dies with the goroutine.
		runtime.LockOSThread()
		e := &uringEngine{cfg: Config{}.withDefaults(), log: slog.New(slog.DiscardHandler)}
		r := newURing(e, -1)
		if err := r.setup(flags); err != nil {
			done <- result{err: err}
			return
		}
		defer r.teardown()
		med, misses, err := r.wakeRounds()
		done <- result{med, misses, err}
	}()
	res := <-done
	return res.med, res.misses, res.err
}

// wakeRounds runs the self-test's round trips on a freshly set-up ring.
func (r *uRing) wakeRounds() (time.Duration, int, error) {
	sv, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, 0, err
	}
	defer unix.Close(sv[0])
	defer unix.Close(sv[1])
	buf := make([]byte, 8)
	lat := make([]time.Duration, 0, wakeRounds)
	misses := 0
	for range wakeRounds {
		s := r.sqe()
		s.PrepareRecv(sv[0], uintptr(unsafe.Pointer(&buf[0])), uint32(len(buf)), 0)
		s.UserData = userData(1, opRecv)
		r.enter() // arm it: the socket is empty, so it parks on the socket's poll
		r.drainEventfd()
		sent := writeLater(sv[1])
		deadline := time.Now().Add(wakeDeadline)
		_ = r.evf.SetReadDeadline(deadline)
		var res int32
		got := false
		for !got && time.Now().Before(deadline) {
			r.wait()
			res, got = r.takeCQE(userData(1, opRecv))
		}
		t1 := time.Now()
		t0 := <-sent
		if !got {
			// The ring was not woken in time: count a miss and collect
			// the completion by blocking in the kernel, which the
			// eventfd path does not govern.
			misses++
			lat = append(lat, wakeDeadline)
			ts := syscall.NsecToTimespec(time.Second.Nanoseconds())
			if _, err := r.ring.WaitCQETimeout(&ts); err != nil {
				return 0, misses, fmt.Errorf("the test receive never completed: %w", err)
			}
			res, got = r.takeCQE(userData(1, opRecv))
			if !got {
				return 0, misses, errors.New("the test receive never completed")
			}
		} else {
			lat = append(lat, t1.Sub(t0))
		}
		if res != 1 {
			return 0, misses, fmt.Errorf("the test receive returned %d", res)
		}
	}
	_ = r.evf.SetReadDeadline(time.Time{})
	return median(lat), misses, nil
}

// takeCQE consumes the completions available and reports the result of the
// one tagged ud, if it was among them.
func (r *uRing) takeCQE(ud uint64) (res int32, ok bool) {
	for r.ring.CQReady() > 0 {
		n := int(r.ring.PeekBatchCQE(r.cqes))
		for i := range n {
			if r.cqes[i].UserData == ud {
				res, ok = r.cqes[i].Res, true
			}
		}
		r.ring.CQAdvance(uint32(n))
	}
	return res, ok
}

// drainEventfd empties the eventfd's counter without blocking, so a round
// starts from a quiet ring.
func (r *uRing) drainEventfd() {
	var b [8]byte
	_, _ = unix.Read(r.evfd, b[:])
}
