package main

import (
	"fmt"
	"io"
)

// runEngines reports which network engines this machine can run, one line
// per engine: "std: available" or "uring: unavailable: <why>". CI prints it,
// so a run that could not exercise io_uring says so.
func runEngines(stdout io.Writer) int {
	fmt.Fprintln(stdout, "std: available")
	if err := uringUsable(); err != nil {
		fmt.Fprintf(stdout, "uring: unavailable: %v\n", err)
	} else {
		fmt.Fprintln(stdout, "uring: available")
	}
	return 0
}
