// Command filetail is the file tail source plugin for log aggregation:
// it tails the files matching globs into a topic, one record per line (or
// multiline event), following rotation (rename and create, copytruncate)
// and truncation, with the config names of Vector's file source. make
// build puts it in bin/plugins, where a worker finds it by default.
package main

import "github.com/sluice-io/sluice/connect/sdk"

func main() {
	sdk.Serve(connector{})
}
