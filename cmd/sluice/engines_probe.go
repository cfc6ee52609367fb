package main

import "github.com/sluice-io/sluice/netio"

// uringUsable reports why the io_uring engine cannot run here, or nil.
func uringUsable() error { return netio.UringSupported() }

// uringWake runs the io_uring wake-up self-test and reports its figures and
// whether netio.engine=auto would choose io_uring.
func uringWake() (string, bool) {
	w := netio.UringWakeMeasure()
	return w.String(), w.Pass
}
