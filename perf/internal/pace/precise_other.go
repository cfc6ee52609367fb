//go:build !linux

package pace

import "time"

// precise falls back to Go's timer where nanosleep is not at hand.
func precise(d time.Duration) {
	if d > 0 {
		time.Sleep(d)
	}
}
