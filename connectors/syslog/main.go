// Command syslog is the syslog source plugin: it listens on UDP, TCP and
// TLS, takes RFC 5424 and RFC 3164 messages (told apart per message) in
// RFC 6587 octet-counted or LF-terminated frames (told apart per frame),
// and writes each as a record whose value is a JSON-like map of the
// message's parts. A message that does not parse is kept raw, with a
// parse_error. Its class is sluice.connect.SyslogSource; Confluent's
// io.confluent.connect.syslog.SyslogSourceConnector is an alias, and the
// listener keys are Confluent's.
//
// Delivery is at most once, as syslog's is: nothing upstream can be
// re-read, so what the plugin had received but the worker had not yet
// written when it crashed is lost. That window is bounded by
// syslog.queue.max.size messages plus the batches the worker holds.
package main

import "github.com/sluice-io/sluice/connect/sdk"

func main() {
	sdk.Serve(connector{})
}
