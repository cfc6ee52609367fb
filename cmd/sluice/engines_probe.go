package main

import "errors"

// uringUsable reports why the io_uring engine cannot run here, or nil.
func uringUsable() error { return errors.New("the io_uring engine is not built yet") }
