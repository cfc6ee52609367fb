package testkit

import (
	"testing"
	"time"
)

// Poll calls cond until it returns true or within has passed, and reports
// whether it did. It sleeps between calls, from 1 ms growing to 50 ms, so
// a condition that holds soon is seen soon and one that takes seconds
// (a broker process restarting, a group rebalancing) is not asked
// thousands of times. Inside a testing/synctest bubble the sleeps are the
// bubble's fake time.
func Poll(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
	}
}

// Eventually polls cond (see Poll) and fails t with "timed out after
// <within> waiting for <what>" if it does not hold within that time.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(within, cond) {
		t.Fatalf("timed out after %v waiting for %s", within, what)
	}
}

// EventuallyNil polls check (see Poll) until it returns nil, and fails t
// with the last error it returned if that does not happen within the
// time: check says what is still wrong, so the failure explains itself.
func EventuallyNil(t testing.TB, within time.Duration, check func() error) {
	t.Helper()
	var last error
	if !Poll(within, func() bool { last = check(); return last == nil }) {
		t.Fatalf("after %v: %v", within, last)
	}
}
