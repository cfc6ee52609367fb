// Command filesink is a sink connector plugin writing records to files
// exactly once: raw, json or ndjson lines (with key, headers and
// timestamp as configured), a temp file per partition renamed at commit
// to a name holding its offset range, and consumption resumed from those
// names after any crash. Unlike Kafka's FileStreamSink (connectors/
// filestream), a crash neither loses nor repeats a record.
package main

import "github.com/sluice-io/sluice/connect/sdk"

func main() { sdk.Serve(connector{}) }
