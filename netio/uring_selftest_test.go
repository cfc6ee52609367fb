//go:build linux

package netio

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// The self-test reports every ring mode, and the mode it chose is one that
// set up; a passing choice really is as fast as the test says.
func TestUringWakeSelfTest(t *testing.T) {
	if err := UringSupported(); err != nil {
		t.Skipf("io_uring unavailable: %v", err)
	}
	w := UringWake()
	t.Log(w.String())
	if len(w.Modes) != len(ringModes) {
		t.Fatalf("%d modes reported, want %d", len(w.Modes), len(ringModes))
	}
	if w.Poller <= 0 || w.Poller >= wakeDeadline {
		t.Errorf("poller median %v is not a measurement", w.Poller)
	}
	c := w.chosen()
	if c.Mode == "" || c.Err != nil {
		t.Fatalf("chosen mode %q: %+v", w.Chosen, c)
	}
	if w.RTTErr != nil {
		t.Errorf("round trips not measured: %v", w.RTTErr)
	}
	wakes := false
	for _, m := range w.Modes {
		if !m.passes(w.Poller) {
			continue
		}
		wakes = true
		if m.RTT <= 0 {
			t.Errorf("mode %s wakes up in time but has no round trip", m.Mode)
		}
		if c.passes(w.Poller) && m.RTT < c.RTT {
			t.Errorf("mode %s has a shorter round trip (%v) than the chosen %s (%v)", m.Mode, m.RTT, c.Mode, c.RTT)
		}
	}
	if want := wakes && rttAsGood(c.RTT, c.RTTStd); w.Pass != want {
		t.Errorf("Pass = %v, want %v (chosen mode %+v)", w.Pass, want, c)
	}
	if w.Pass && c.Median >= time.Millisecond {
		t.Errorf("chosen mode passes with median %v", c.Median)
	}
}

// The judgement itself: a mode passes only when fast in absolute terms, as
// fast as the poller within the slack, and never missed the deadline.
func TestModeWakePasses(t *testing.T) {
	poller := 40 * time.Microsecond
	for _, tc := range []struct {
		m    ModeWake
		want bool
	}{
		{ModeWake{Median: 60 * time.Microsecond}, true},
		{ModeWake{Median: 15 * time.Millisecond}, false},                    // the RCU-deferred eventfd
		{ModeWake{Median: 60 * time.Microsecond, Misses: 1}, false},         // one round never woke
		{ModeWake{Median: poller + wakeSlack + time.Microsecond}, false},    // slower than the poller
		{ModeWake{Median: 10 * time.Microsecond, Err: errTestSetup}, false}, // could not be set up
	} {
		if got := tc.m.passes(poller); got != tc.want {
			t.Errorf("%+v passes = %v, want %v", tc.m, got, tc.want)
		}
	}
}

var errTestSetup = errorString("setup failed")

type errorString string

func (e errorString) Error() string { return string(e) }

// The probe client runs as a child process (this test binary re-executed,
// see TestMain) and reports one round trip per engine it was given.
func TestProbeClientChild(t *testing.T) {
	if !probeChildOK.Load() {
		t.Fatal("TestMain did not call ProbeClientMain")
	}
	e := NewStdEngine(Config{}.withDefaults(), HandlerFunc(rttHandler), testLogger(t))
	defer e.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.Serve(ln) }()
	child, err := startProbeChild()
	if err != nil {
		t.Fatal(err)
	}
	defer child.close()
	for range 2 { // one child serves several engines in turn
		rtt, err := child.rtt(ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if rtt <= 0 || rtt > rttTimeout {
			t.Fatalf("child reported %v", rtt)
		}
		t.Logf("std round trip from a child process: %v", rtt)
	}
	if _, err := child.rtt("127.0.0.1:1"); err == nil {
		t.Errorf("a child that cannot connect reported success")
	}
	if _, err := child.rtt(ln.Addr().String()); err != nil {
		t.Errorf("the child stopped answering after an error: %v", err)
	}
}

// netio.uring.mode pins the ring mode: the engine runs in it without the
// self-test, auto then means io_uring, and a mode that does not exist is
// refused with the ones that do.
func TestPinnedRingMode(t *testing.T) {
	if err := UringSupported(); err != nil {
		t.Skip("io_uring unavailable:", err)
	}
	var names []string
	for _, m := range ringModes {
		names = append(names, m.name)
	}
	if !slices.Equal(names, RingModes) {
		t.Fatalf("RingModes %v, ring modes %v", RingModes, names)
	}
	for _, engine := range []string{EngineUring, EngineAuto} {
		e, name, err := NewEngine(Config{Engine: engine, UringMode: "coop"}, HandlerFunc(rttHandler), testLogger(t))
		if err != nil {
			t.Fatalf("engine %s, mode coop: %v", engine, err)
		}
		ue, ok := e.(*uringEngine)
		if name != EngineUring || !ok || ue.mode.name != "coop" {
			t.Errorf("engine %s, mode coop: got %s (%T)", engine, name, e)
		}
		e.Close()
	}
	_, _, err := NewEngine(Config{Engine: EngineUring, UringMode: "sideways"}, HandlerFunc(rttHandler), testLogger(t))
	if err == nil || !strings.Contains(err.Error(), `"sideways"`) || !strings.Contains(err.Error(), "defer-block") {
		t.Errorf("unknown mode: %v", err)
	}
}
