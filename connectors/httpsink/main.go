// Command httpsink is a sink connector plugin that sends records to an
// HTTP endpoint: batched by count, bytes and linger, as a JSON array,
// NDJSON or one raw record per request, retried with jittered backoff on
// network errors, 408, 429 and 5xx (honouring Retry-After), with an
// idempotency key per batch and offsets committed only after a 2xx.
// Batches of one partition go one at a time, so order is kept.
package main

import "github.com/sluice-io/sluice/connect/sdk"

func main() { sdk.Serve(connector{}) }
