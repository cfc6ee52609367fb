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
// wake-up through Go's poller (what the std engine waits on) is measured
// beside it as the yardstick. Every mode that wakes up as fast then serves
// sequential requests through a whole engine (engine_rtt.go), and the one
// with the shortest round trip is chosen.

// ringMode is one way to set a ring up and wait on it.
type ringMode struct {
	name  string
	flags uint32
	// block: the ring goroutine waits inside io_uring_enter, woken by the
	// kernel directly, instead of on the registered eventfd through Go's
	// poller; see waitBlocking.
	block bool
}

// ringModes in order of preference, which breaks ties: DEFER_TASKRUN
// batches completion work into the ring's own enter calls and never
// interrupts the thread; COOP_TASKRUN runs it at the thread's next kernel
// transition, signalling the eventfd inline; no flags is what kernels
// before 5.19 accept.
var ringModes = []ringMode{
	{"defer", giouring.SetupSingleIssuer | giouring.SetupDeferTaskrun, false},
	{"defer-block", giouring.SetupSingleIssuer | giouring.SetupDeferTaskrun, true},
	{"coop", giouring.SetupSingleIssuer | giouring.SetupCoopTaskrun | giouring.SetupTaskrunFlag, false},
	{"plain", 0, false},
}

var wakeOnce = sync.OnceValue(keptOrMeasuredWake)

// UringWake runs the wake-up self-test once per process (the kernel does
// not change under a running process), or takes the result kept for this
// boot (wake_cache_linux.go), and returns it. It must only be called where
// UringSupported returned nil.
func UringWake() WakeReport { return wakeOnce() }

func runWakeSelfTest() WakeReport {
	w := WakeReport{Poller: pollerWake()}
	for _, m := range ringModes {
		mw := ModeWake{Mode: m.name}
		if m.block && runtime.GOMAXPROCS(0) < 2 {
			// A ring blocked in the kernel holds its P: with only one,
			// the processors would wait for sysmon to take it back.
			mw.Err = errors.New("needs GOMAXPROCS >= 2")
		} else {
			mw.Median, mw.Misses, mw.Err = ringWake(m)
		}
		w.Modes = append(w.Modes, mw)
	}
	// Each mode that wakes up as fast as the poller serves sequential
	// requests in rounds with a std engine, each engine alone in its turn
	// (engine_rtt.go says why); the mode with the shortest round trip wins
	// and is judged against the std figure. Without figures (no loopback)
	// the first such mode is taken on its wake-up alone.
	cfg := Config{}.withDefaults()
	discard := slog.New(slog.DiscardHandler)
	starts := []func() (Engine, error){func() (Engine, error) {
		return NewStdEngine(cfg, HandlerFunc(rttHandler), discard), nil
	}}
	var candidates []int // indexes into w.Modes, in the order of starts[1:]
	for i, m := range ringModes {
		if !w.Modes[i].passes(w.Poller) {
			continue
		}
		candidates = append(candidates, i)
		starts = append(starts, func() (Engine, error) {
			e, err := newUringEngine(cfg, HandlerFunc(rttHandler), discard, m)
			if err != nil {
				return nil, fmt.Errorf("starting an engine: %w", err)
			}
			return e, nil
		})
	}
	var rtts []time.Duration
	var startErrs []error
	if len(candidates) > 0 {
		rtts, startErrs, w.RTTErr = engineRTTs(starts...)
	}
	wakes := false
	for k, i := range candidates {
		mw := &w.Modes[i]
		if w.RTTErr == nil {
			if startErrs[k+1] != nil {
				mw.Err = startErrs[k+1]
				continue
			}
			mw.RTT, mw.RTTStd = rtts[k+1], rtts[0]
		}
		if !wakes || mw.RTT < w.chosen().RTT {
			w.Chosen, wakes = ringModes[i].name, true
		}
	}
	if !wakes {
		// Nothing wakes up in time: forced io_uring gets the fastest wake-up.
		for _, mw := range w.Modes {
			if mw.Err == nil && mw.Median > 0 && (w.Chosen == "" || mw.Median < w.chosen().Median) {
				w.Chosen = mw.Mode
			}
		}
		return w
	}
	c := w.chosen()
	w.Pass = w.RTTErr != nil || rttAsGood(c.RTT, c.RTTStd)
	return w
}

// modeNamed returns the ring mode called name.
func modeNamed(name string) (ringMode, bool) {
	for _, m := range ringModes {
		if m.name == name {
			return m, true
		}
	}
	return ringMode{}, false
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

// ringWake sets up a ring in mode m as the engine does and measures the
// median wake-up latency of a socket receive completion through the ring's
// own wait path.
func ringWake(m ringMode) (med time.Duration, misses int, err error) {
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
		e := &uringEngine{cfg: Config{}.withDefaults(), log: slog.New(slog.DiscardHandler), mode: m}
		r := newURing(e, -1)
		if err := r.setup(m); err != nil {
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

// Self-test operation ids (the connection-id part of user_data).
const (
	testRecvID  = 1
	testGuardID = 2 // and up, one per round
)

// wakeRounds runs the self-test's round trips on a freshly set-up ring. A
// TIMEOUT armed beside each receive bounds the wait: timer completions
// wake a ring at once in every mode, so a ring that does not hear of the
// receive wakes at the deadline and the round counts as a miss.
func (r *uRing) wakeRounds() (time.Duration, int, error) {
	sv, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, 0, err
	}
	defer unix.Close(sv[0])
	defer unix.Close(sv[1])
	buf := make([]byte, 8)
	r.tick = syscall.NsecToTimespec(wakeDeadline.Nanoseconds())
	lat := make([]time.Duration, 0, wakeRounds)
	misses := 0
	recvUD := userData(testRecvID, opRecv)
	for round := range wakeRounds {
		// A guard id per round: the previous round's cancelled guard
		// completes during this one.
		guardUD := userData(testGuardID+uint64(round), opTick)
		s := r.sqe()
		s.PrepareRecv(sv[0], uintptr(unsafe.Pointer(&buf[0])), uint32(len(buf)), 0)
		s.UserData = recvUD
		g := r.sqe()
		g.PrepareTimeout(&r.tick, 0, 0)
		g.Addr = uint64(uintptr(unsafe.Pointer(&r.tick))) // see armTick
		g.UserData = guardUD
		r.enter() // arm both: the socket is empty, so the receive parks on its poll
		r.drainEventfd()
		sent := writeLater(sv[1])
		var res int32
		got, expired := false, false
		for !got && !expired {
			r.wait()
			seen := r.takeCQEs()
			res, got = seen[recvUD]
			g, ok := seen[guardUD]
			expired = ok && g == -int32(unix.ETIME)
		}
		t1 := time.Now()
		t0 := <-sent
		if !got {
			// Not woken by the receive: collect it by blocking in the
			// kernel, which the eventfd path does not govern.
			misses++
			lat = append(lat, wakeDeadline)
			if _, err := r.ring.SubmitAndWait(1); err != nil {
				return 0, misses, fmt.Errorf("the test receive never completed: %w", err)
			}
			if res, got = r.takeCQEs()[recvUD]; !got {
				return 0, misses, errors.New("the test receive never completed")
			}
		} else {
			lat = append(lat, t1.Sub(t0))
			if !expired {
				r.cancel(guardUD) // its completion is taken with the next round's
			}
		}
		if res != 1 {
			return 0, misses, fmt.Errorf("the test receive returned %d", res)
		}
	}
	return median(lat), misses, nil
}

// takeCQEs consumes the completions available and returns their results
// by user_data.
func (r *uRing) takeCQEs() map[uint64]int32 {
	seen := make(map[uint64]int32)
	for r.ring.CQReady() > 0 {
		n := int(r.ring.PeekBatchCQE(r.cqes))
		for i := range n {
			seen[r.cqes[i].UserData] = r.cqes[i].Res
		}
		r.ring.CQAdvance(uint32(n))
	}
	return seen
}

// drainEventfd empties the eventfd's counter without blocking, so a round
// starts from a quiet ring.
func (r *uRing) drainEventfd() {
	var b [8]byte
	_, _ = unix.Read(r.evfd, b[:])
}
