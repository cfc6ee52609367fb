package main

import "github.com/sluice-io/sluice/netio"

// uringUsable reports why the io_uring engine cannot run here, or nil.
func uringUsable() error { return netio.UringSupported() }
