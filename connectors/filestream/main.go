// Command filestream is the plugin for Kafka's quickstart connectors,
// FileStreamSource and FileStreamSink, with Kafka's class names, aliases
// and configs: a source that appends each line of a file to a topic, and a
// sink that appends each record's value to a file as a line. make build
// puts it in bin/plugins, where a worker finds it by default.
package main

import "github.com/sluice-io/sluice/connect/sdk"

func main() {
	sdk.Serve(sourceConnector{}, sinkConnector{})
}
