//go:build !linux

package netio

import (
	"errors"
	"log/slog"
)

var errUringNotLinux = errors.New("netio: io_uring exists only on Linux")

// UringSupported reports why the io_uring engine cannot run here: on this
// operating system, never.
func UringSupported() error { return errUringNotLinux }

// NewUringEngine fails: io_uring exists only on Linux.
func NewUringEngine(cfg Config, h Handler, logger *slog.Logger) (Engine, error) {
	return nil, errUringNotLinux
}

// UringWake returns an empty report: there is no ring to test.
func UringWake() WakeReport { return WakeReport{} }

// UringWakeMeasure returns an empty report: there is no ring to test.
func UringWakeMeasure() WakeReport { return WakeReport{} }
