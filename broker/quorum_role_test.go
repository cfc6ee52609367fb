package broker

import (
	"testing"
	"time"
)

// A register round's phase waits a third of the lease before it is
// retried, between the voter's default (200ms) and 500ms, so a renewal
// that waits out one retry still ends within its lease.
func TestQuorumRetryTicks(t *testing.T) {
	for _, tc := range []struct {
		lease time.Duration
		want  int
	}{
		{2 * time.Second * 2 / 3, 44}, // the default controller.quorum.fetch.timeout.ms
		{300 * time.Millisecond, 20},
		{10 * time.Second, 50},
	} {
		if got := quorumRetryTicks(tc.lease); got != tc.want {
			t.Errorf("lease %v: %d ticks, want %d", tc.lease, got, tc.want)
		}
	}
}
