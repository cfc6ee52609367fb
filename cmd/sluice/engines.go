package main

import (
	"fmt"
	"io"
)

// runEngines reports which network engines this machine can run and which
// one netio.engine=auto picks, one line each:
//
//	std: available
//	uring: available; wake-up self-test: Go poller 10µs, defer 14.8ms, defer-block 20µs (round trip 30µs, std 21µs), …; rings use defer-block (pass)
//	auto: uring
//
// CI prints it, so a run that could not exercise io_uring says so, and a
// kernel on which rings wake up slowly shows its figures.
func runEngines(stdout io.Writer) int {
	fmt.Fprintln(stdout, "std: available")
	auto := "std"
	if err := uringUsable(); err != nil {
		fmt.Fprintf(stdout, "uring: unavailable: %v\n", err)
	} else {
		report, pass := uringWake()
		fmt.Fprintf(stdout, "uring: available; %s\n", report)
		if pass {
			auto = "uring"
		}
	}
	fmt.Fprintf(stdout, "auto: %s\n", auto)
	return 0
}
